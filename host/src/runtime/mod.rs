//! The sandbox: one wasmtime engine per host, components compiled once (and cached on
//! disk), instances from a pooling allocator through `InstancePre`, and one fresh `Store`
//! per plugin call with a wall-clock deadline (epoch interruption), a memory cap, a
//! request budget and a log rate limit.

pub mod bindings;
pub mod component_cache;
mod host_state;
pub mod inspect;
pub mod plugin_log;
pub mod state_store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use crate::broker::credentials::{CredentialSource, NoCredentials};
use crate::broker::host_pattern::HostPattern;
use crate::broker::{BrokerConfig, BrokerSetupError, HttpBroker};
use crate::capability_granter::{CapabilityGranter, GrantError};
use crate::config_schema::{ConfigSchema, FieldError};
use crate::event::{Event, EventError};
use crate::manifest::{Manifest, ManifestError};
use bindings::latest as wit;
pub use component_cache::CacheOutcome;
use component_cache::ComponentCache;
pub use host_state::HostState;
use host_state::{CallScope, DeadlineExceeded, MemoryLimitExceeded};
pub use inspect::WasmLayer;
use plugin_log::{PluginLogSink, TracingLogSink};
use state_store::{ConnectorStateStore, InMemoryStateStore};

/// Per-call limits.
#[derive(Debug, Clone)]
pub struct RuntimeLimits {
    /// Wall-clock deadline of one call (default 30 s).
    pub call_timeout: Duration,
    /// Linear-memory cap per instance (default 64 MiB).
    pub memory_bytes: usize,
    /// Table elements cap.
    pub table_elements: usize,
    /// HTTP requests per call, redirects and token refreshes included (default 100).
    pub max_requests_per_call: u32,
    /// Log lines a call may emit at once (token-bucket burst).
    pub log_burst: u32,
    /// Sustained log lines per second.
    pub log_lines_per_sec: u32,
    /// Longest log line kept.
    pub max_log_line_bytes: usize,
    /// Bytes of stdout+stderr kept per call.
    pub max_output_bytes: usize,
    /// Total bytes of a connector's state space.
    pub state_max_bytes: usize,
    /// Largest single state value.
    pub state_max_value_bytes: usize,
    /// Largest cursor a plugin may return.
    pub max_cursor_bytes: usize,
}

impl Default for RuntimeLimits {
    fn default() -> Self {
        RuntimeLimits {
            call_timeout: Duration::from_secs(30),
            memory_bytes: 64 * 1024 * 1024,
            table_elements: 100_000,
            max_requests_per_call: 100,
            log_burst: 100,
            log_lines_per_sec: 20,
            max_log_line_bytes: 4096,
            max_output_bytes: 64 * 1024,
            state_max_bytes: 1024 * 1024,
            state_max_value_bytes: 256 * 1024,
            max_cursor_bytes: 64 * 1024,
        }
    }
}

/// How instances are allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocationStrategy {
    /// Pooling allocator; falls back to on-demand if the pool cannot be reserved.
    Pooling {
        /// Concurrent instances the pool holds.
        max_instances: u32,
    },
    /// On-demand allocation.
    OnDemand,
}

/// Host-wide runtime configuration.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Per-call limits.
    pub limits: RuntimeLimits,
    /// Broker policy and limits.
    pub broker: BrokerConfig,
    /// Where precompiled components are cached (`None`: compile in memory only).
    pub cache_dir: Option<PathBuf>,
    /// Instance allocation.
    pub allocation: AllocationStrategy,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: RuntimeLimits::default(),
            broker: BrokerConfig::default(),
            cache_dir: None,
            allocation: AllocationStrategy::Pooling { max_instances: 64 },
        }
    }
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime engine setup failed.
    #[error("cannot create the WebAssembly engine: {0}")]
    Engine(String),
    /// Linker setup failed.
    #[error("cannot link host functions: {0}")]
    Linker(String),
    /// Cache directory unusable.
    #[error(transparent)]
    Cache(#[from] component_cache::CacheError),
    /// Broker setup failed.
    #[error(transparent)]
    Broker(#[from] BrokerSetupError),
}

/// A component was refused at load.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Empty input.
    #[error("the file is empty")]
    Empty,
    /// Not wasm at all.
    #[error(
        "not a WebAssembly component (no `\\0asm` header); expected a component built for wasm32-wasip2"
    )]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component; build the plugin for the wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
    )]
    CoreModule,
    /// Does not parse / validate / compile.
    #[error("invalid or truncated component: {0}")]
    Invalid(String),
    /// Wrong or missing connector world.
    #[error(transparent)]
    ApiVersion(#[from] inspect::ApiVersionError),
    /// Imports the host does not provide.
    #[error("component imports what this host does not provide: {}", .0.join(", "))]
    UnknownImports(Vec<String>),
    /// Linking failed for another reason (e.g. a type mismatch).
    #[error("component cannot be linked against the host: {0}")]
    Link(String),
    /// `describe` failed.
    #[error("describe() failed: {0}")]
    Describe(Box<CallError>),
    /// The manifest is invalid.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
}

/// What a loaded plugin is.
#[derive(Debug, Clone, Serialize)]
pub struct PluginInfo {
    /// The manifest from `describe`.
    pub manifest: Manifest,
    /// WIT API version the plugin was built against.
    pub api_version: String,
    /// sha256 of the component bytes (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
    /// Every import of the component.
    pub imports: Vec<String>,
    /// Whether the precompiled artifact came from the cache.
    #[serde(skip)]
    pub cache: CacheOutcome,
}

/// A plugin call failed. Errors the plugin *returned* are kept apart from traps and limits.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The plugin returned an error value.
    #[error("{0}")]
    Plugin(PluginError),
    /// The call ran past its deadline.
    #[error("plugin exceeded its deadline of {0:?}")]
    Timeout(Duration),
    /// The plugin grew memory past the cap.
    #[error("plugin exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The cap.
        limit: usize,
    },
    /// The plugin trapped (panic, unreachable, stack overflow, ...).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// Could not instantiate (pool exhausted, ...).
    #[error("cannot instantiate plugin: {0}")]
    Instantiate(String),
    /// The plugin returned something the host cannot accept (bad event, oversized cursor).
    #[error("plugin returned invalid output: {0}")]
    BadOutput(String),
}

impl CallError {
    /// Short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Plugin(p) => p.kind_code(),
            CallError::Timeout(_) => "timeout",
            CallError::MemoryLimit { .. } => "memory-limit",
            CallError::Trap(_) => "trap",
            CallError::Instantiate(_) => "instantiate",
            CallError::BadOutput(_) => "bad-output",
        }
    }
}

/// An error value a plugin returned (the WIT `error` variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PluginError {
    /// Invalid configuration.
    #[error("invalid configuration: {}", fields.iter().map(|f| format!("{}: {}", if f.path.is_empty() { "/" } else { &f.path }, f.message)).collect::<Vec<_>>().join("; "))]
    Config {
        /// Field errors.
        fields: Vec<FieldError>,
    },
    /// Authentication failed.
    #[error("authentication failed: {message}")]
    Auth {
        /// Message.
        message: String,
    },
    /// Upstream error.
    #[error("upstream error{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Upstream {
        /// HTTP status.
        status: Option<u16>,
        /// Message.
        message: String,
    },
    /// Rate limited.
    #[error("rate limited{}: {message}", retry_after_secs.map(|s| format!(" (retry after {s} s)")).unwrap_or_default())]
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: Option<u64>,
        /// Message.
        message: String,
    },
    /// Unparseable upstream data.
    #[error("parse error: {message}")]
    Parse {
        /// Message.
        message: String,
    },
    /// Anything else.
    #[error("{message}")]
    Other {
        /// Message.
        message: String,
    },
}

impl PluginError {
    fn kind_code(&self) -> &'static str {
        match self {
            PluginError::Config { .. } => "config",
            PluginError::Auth { .. } => "auth",
            PluginError::Upstream { .. } => "upstream",
            PluginError::RateLimited { .. } => "rate-limited",
            PluginError::Parse { .. } => "parse",
            PluginError::Other { .. } => "other",
        }
    }
}

impl From<wit::portcullis::connector::types::Error> for PluginError {
    fn from(e: wit::portcullis::connector::types::Error) -> Self {
        use wit::portcullis::connector::types::Error as E;
        match e {
            E::Config(fields) => PluginError::Config {
                fields: fields
                    .into_iter()
                    .map(|f| FieldError {
                        path: f.path,
                        message: f.message,
                    })
                    .collect(),
            },
            E::Auth(message) => PluginError::Auth { message },
            E::Upstream(u) => PluginError::Upstream {
                status: u.status,
                message: u.message,
            },
            E::RateLimited(r) => PluginError::RateLimited {
                retry_after_secs: r.retry_after_secs,
                message: r.message,
            },
            E::Parse(message) => PluginError::Parse { message },
            E::Other(message) => PluginError::Other { message },
        }
    }
}

/// Who a call runs for and what it may use.
#[derive(Clone)]
pub struct ConnectorEnv {
    /// Organisation id (`None` for CLI runs).
    pub org_id: Option<String>,
    /// Connector id (events carry it as their source).
    pub connector_id: String,
    /// Host patterns the operator granted.
    pub grants: Vec<HostPattern>,
    /// Credentials by slot.
    pub credentials: Arc<dyn CredentialSource>,
    /// The connector's private state space.
    pub state: Arc<dyn ConnectorStateStore>,
    /// Where plugin log lines go.
    pub log_sink: Arc<dyn PluginLogSink>,
    /// Where the broker records every upstream response's status and rate-limit headers
    /// (health reads them; `None`: not recorded).
    pub upstream: Option<Arc<crate::health::UpstreamRecorder>>,
}

impl std::fmt::Debug for ConnectorEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorEnv")
            .field("org_id", &self.org_id)
            .field("connector_id", &self.connector_id)
            .field("grants", &self.grants)
            .field("credential_slots", &self.credentials.bound_slots())
            .finish_non_exhaustive()
    }
}

impl ConnectorEnv {
    /// An environment with no grants, no credentials, in-memory state and tracing logs.
    pub fn isolated(connector_id: impl Into<String>) -> Self {
        ConnectorEnv {
            org_id: None,
            connector_id: connector_id.into(),
            grants: Vec::new(),
            credentials: Arc::new(NoCredentials),
            state: Arc::new(InMemoryStateStore::new()),
            log_sink: Arc::new(TracingLogSink),
            upstream: None,
        }
    }
}

/// A connector bound to a plugin: env plus the granter derived from manifest ∩ grants.
pub(crate) struct BoundConnector {
    pub(crate) env: ConnectorEnv,
    pub(crate) plugin_id: String,
    pub(crate) granter: CapabilityGranter,
    pub(crate) broker: HttpBroker,
}

struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Epoch tick period; deadlines are checked (and guests yield) at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(5);

struct RuntimeInner {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<ComponentCache>,
    compiled: parking_lot::Mutex<HashMap<String, Component>>,
    limits: RuntimeLimits,
    broker: HttpBroker,
    pooling: bool,
    slots: Option<Arc<tokio::sync::Semaphore>>,
    _ticker: EpochTicker,
}

/// The plugin runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("pooling", &self.inner.pooling)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

fn engine_config(limits: &RuntimeLimits) -> wasmtime::Config {
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true);
    cfg.epoch_interruption(true);
    cfg.max_wasm_stack(1024 * 1024);
    let _ = limits;
    cfg
}

fn pooling_config(max_instances: u32, limits: &RuntimeLimits) -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(max_instances)
        .total_core_instances(max_instances * 16)
        .total_memories(max_instances * 4)
        .total_tables(max_instances * 16)
        .total_stacks(max_instances)
        .max_core_instances_per_component(32)
        .max_memories_per_component(8)
        .max_tables_per_component(32)
        .max_memory_size(limits.memory_bytes)
        .table_elements(limits.table_elements)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20);
    pool
}

impl Runtime {
    /// Build a runtime: engine (pooling, with on-demand fallback), linker with the host
    /// imports and WASI 0.2 under an empty context, epoch ticker, broker, cache.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let limits = config.limits.clone();
        let (engine, pooling, max_instances) = match config.allocation {
            AllocationStrategy::Pooling { max_instances } => {
                let mut cfg = engine_config(&limits);
                cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
                    pooling_config(max_instances, &limits),
                ));
                match Engine::new(&cfg) {
                    Ok(e) => (e, true, Some(max_instances)),
                    Err(err) => {
                        tracing::warn!(error = %err, "pooling allocator unavailable (could not reserve the pool); falling back to on-demand allocation");
                        let e = Engine::new(&engine_config(&limits))
                            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
                        (e, false, None)
                    }
                }
            }
            AllocationStrategy::OnDemand => (
                Engine::new(&engine_config(&limits))
                    .map_err(|e| RuntimeError::Engine(e.to_string()))?,
                false,
                None,
            ),
        };
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::Linker(e.to_string()))?;
        wit::Connector::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError::Linker(e.to_string()))?;

        let stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("portcullis-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| RuntimeError::Engine(format!("cannot start epoch ticker: {e}")))?;
        }
        let cache = match &config.cache_dir {
            Some(dir) => Some(ComponentCache::open(dir, &engine)?),
            None => None,
        };
        let broker = HttpBroker::new(config.broker.clone())?;
        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                compiled: parking_lot::Mutex::new(HashMap::new()),
                limits,
                broker,
                pooling,
                slots: max_instances.map(|n| Arc::new(tokio::sync::Semaphore::new(n as usize))),
                _ticker: EpochTicker { stop },
            }),
        })
    }

    /// Whether the pooling allocator is in use.
    pub fn is_pooling(&self) -> bool {
        self.inner.pooling
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The broker all plugins' requests go through.
    pub fn broker(&self) -> &HttpBroker {
        &self.inner.broker
    }

    /// The per-call limits.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.inner.limits
    }

    /// Compile (or load from cache) a component, without checking it is a connector.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, String, CacheOutcome), LoadError> {
        if bytes.is_empty() {
            return Err(LoadError::Empty);
        }
        match inspect::wasm_layer(bytes) {
            None => return Err(LoadError::NotWasm),
            Some(WasmLayer::CoreModule) => return Err(LoadError::CoreModule),
            Some(WasmLayer::Component) => {}
        }
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        if let Some(c) = self.inner.compiled.lock().get(&sha256) {
            return Ok((c.clone(), sha256, CacheOutcome::Hit));
        }
        let (component, outcome) = match &self.inner.cache {
            Some(cache) => cache.load_or_compile(&self.inner.engine, bytes, &sha256),
            None => Component::new(&self.inner.engine, bytes).map(|c| (c, CacheOutcome::Compiled)),
        }
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))?;
        self.inner
            .compiled
            .lock()
            .insert(sha256.clone(), component.clone());
        Ok((component, sha256, outcome))
    }

    /// Validate, compile (cached), link and describe a plugin.
    pub async fn load(&self, bytes: &[u8]) -> Result<LoadedPlugin, LoadError> {
        let (component, sha256, cache) = self.compile(bytes)?;
        let engine = &self.inner.engine;
        let api_version = inspect::api_version(&component, engine)?;
        let imports = inspect::imports(&component, engine);
        let unknown = inspect::unsupported_imports(&imports, &api_version);
        if !unknown.is_empty() {
            return Err(LoadError::UnknownImports(unknown));
        }
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = wit::ConnectorPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut plugin = LoadedPlugin {
            runtime: self.clone(),
            pre,
            info: Arc::new(PluginInfo {
                manifest: placeholder_manifest(),
                api_version,
                sha256,
                size: bytes.len(),
                imports,
                cache,
            }),
        };
        let manifest = plugin
            .describe_raw()
            .await
            .map_err(|e| LoadError::Describe(Box::new(e)))?;
        let manifest = Manifest::from_plugin(manifest)?;
        plugin.info = Arc::new(PluginInfo {
            manifest,
            ..(*plugin.info).clone()
        });
        Ok(plugin)
    }
}

fn placeholder_manifest() -> Manifest {
    Manifest {
        id: String::new(),
        name: String::new(),
        version: String::new(),
        category: crate::manifest::Category::CustomApi,
        description: String::new(),
        config_schema: serde_json::Value::Null,
        hosts: Vec::new(),
        credential_slots: Vec::new(),
        accepts_push: false,
    }
}

/// A plugin ready to run: compiled, linked (`InstancePre`), described.
#[derive(Clone)]
pub struct LoadedPlugin {
    runtime: Runtime,
    pre: wit::ConnectorPre<HostState>,
    info: Arc<PluginInfo>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.info.manifest.id)
            .field("version", &self.info.manifest.version)
            .field("sha256", &self.info.sha256)
            .finish_non_exhaustive()
    }
}

impl LoadedPlugin {
    /// What the plugin is.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.info.manifest
    }

    async fn describe_raw(&self) -> Result<wit::portcullis::connector::types::Manifest, CallError> {
        let mut env = ConnectorEnv::isolated("describe");
        env.log_sink = Arc::new(TracingLogSink);
        let bound = Arc::new(BoundConnector {
            env,
            plugin_id: "(loading)".into(),
            granter: CapabilityGranter::new(&placeholder_manifest(), &[])
                .map_err(|e| CallError::Instantiate(e.to_string()))?,
            broker: self.runtime.inner.broker.clone(),
        });
        let sandbox = ConnectorSandbox {
            plugin: self.clone(),
            bound,
        };
        sandbox
            .with_instance(|store, inst| {
                Box::pin(async move {
                    inst.portcullis_connector_plugin()
                        .call_describe(store)
                        .await
                })
            })
            .await
    }

    /// Bind this plugin to a connector environment (checks grants against the manifest).
    pub fn bind(&self, env: ConnectorEnv) -> Result<ConnectorSandbox, GrantError> {
        let granter = CapabilityGranter::new(&self.info.manifest, &env.grants)?;
        Ok(ConnectorSandbox {
            plugin: self.clone(),
            bound: Arc::new(BoundConnector {
                plugin_id: self.info.manifest.id.clone(),
                env,
                granter,
                broker: self.runtime.inner.broker.clone(),
            }),
        })
    }
}

/// One stage of a connection test.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct TestStage {
    /// `auth`, `sample`, or plugin-specific.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// Detail.
    pub message: String,
    /// Duration as measured by the plugin.
    pub latency_ms: Option<u64>,
}

/// Result of `test-connection`, with the host-measured latency.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TestReport {
    /// Every stage passed.
    pub ok: bool,
    /// Wall-clock time of the whole call, measured by the host.
    pub latency_ms: u64,
    /// Stages.
    pub stages: Vec<TestStage>,
    /// Up to 3 sample events.
    pub sample: Vec<Event>,
}

/// One step of pull ingestion.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    /// Events.
    pub events: Vec<Event>,
    /// Next cursor.
    pub cursor: Option<String>,
    /// More ready now.
    pub more: bool,
}

/// A plugin bound to one connector: what the rest of the host calls.
#[derive(Clone)]
pub struct ConnectorSandbox {
    plugin: LoadedPlugin,
    bound: Arc<BoundConnector>,
}

impl std::fmt::Debug for ConnectorSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorSandbox")
            .field("plugin", &self.plugin)
            .field("connector", &self.bound.env.connector_id)
            .finish_non_exhaustive()
    }
}

type InstanceFuture<'a, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = wasmtime::Result<R>> + Send + 'a>>;

impl ConnectorSandbox {
    /// The plugin.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// The connector environment.
    pub fn env(&self) -> &ConnectorEnv {
        &self.bound.env
    }

    fn new_store(&self, deadline: Instant) -> Store<HostState> {
        let rt = &self.plugin.runtime.inner;
        let scope = Arc::new(CallScope::new(
            self.bound.clone(),
            rt.limits.clone(),
            deadline,
        ));
        let mut store = Store::new(&rt.engine, HostState::new(scope));
        store.limiter(|s| &mut s.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_ctx| {
            if Instant::now() >= deadline {
                Err(DeadlineExceeded.into())
            } else {
                // Let other tasks run on this worker, then check again next tick.
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// Instantiate in a fresh store and run `f` under the call's deadline.
    async fn with_instance<R, F>(&self, f: F) -> Result<R, CallError>
    where
        R: Send,
        F: for<'a> FnOnce(&'a mut Store<HostState>, &'a wit::Connector) -> InstanceFuture<'a, R>
            + Send,
    {
        let rt = &self.plugin.runtime.inner;
        let _permit = match &rt.slots {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| CallError::Instantiate("runtime shutting down".into()))?,
            ),
            None => None,
        };
        let timeout = rt.limits.call_timeout;
        let deadline = Instant::now() + timeout;
        let mut store = self.new_store(deadline);
        let span = tracing::debug_span!(
            "plugin_call",
            org = self.bound.env.org_id.as_deref().unwrap_or("-"),
            connector = %self.bound.env.connector_id,
            plugin = %self.bound.plugin_id,
        );
        let outcome = {
            let fut = async {
                let inst = self.plugin.pre.instantiate_async(&mut store).await?;
                f(&mut store, &inst).await
            };
            // Belt and braces: epoch interruption stops running guest code; this bound
            // also covers time spent in host calls.
            tracing::Instrument::instrument(
                tokio::time::timeout(timeout + Duration::from_secs(2), fut),
                span,
            )
            .await
        };
        let scope = store.data().scope.clone();
        let memory_exceeded = store.data().limiter.memory_exceeded;
        drop(store);
        scope.flush_suppressed();
        match outcome {
            Err(_) => Err(CallError::Timeout(timeout)),
            Ok(Ok(r)) => Ok(r),
            Ok(Err(err)) => Err(classify_trap(
                err,
                memory_exceeded,
                rt.limits.memory_bytes,
                deadline,
                timeout,
            )),
        }
    }

    /// `validate-config`: the declared JSON Schema first, then the plugin's own checks.
    /// Returns every field error (empty = valid).
    pub async fn validate_config(
        &self,
        config: &serde_json::Value,
    ) -> Result<Vec<FieldError>, CallError> {
        let schema = ConfigSchema::compile(&self.plugin.info.manifest.config_schema)
            .map_err(|e| CallError::BadOutput(e.to_string()))?;
        let mut errors = schema.validate(config);
        if !errors.is_empty() {
            return Ok(errors);
        }
        let text = config.to_string();
        let r = self
            .with_instance(|store, inst| {
                Box::pin(async move {
                    inst.portcullis_connector_plugin()
                        .call_validate_config(store, &text)
                        .await
                })
            })
            .await?;
        match r {
            Ok(()) => Ok(errors),
            Err(e) => match PluginError::from(e) {
                PluginError::Config { fields } => {
                    errors.extend(fields);
                    if errors.is_empty() {
                        errors.push(FieldError {
                            path: String::new(),
                            message: "configuration rejected by the plugin".into(),
                        });
                    }
                    Ok(errors)
                }
                other => Err(CallError::Plugin(other)),
            },
        }
    }

    /// `test-connection`, with the host measuring total latency.
    pub async fn test_connection(
        &self,
        config: &serde_json::Value,
    ) -> Result<TestReport, CallError> {
        let text = config.to_string();
        let started = Instant::now();
        let r = self
            .with_instance(|store, inst| {
                Box::pin(async move {
                    inst.portcullis_connector_plugin()
                        .call_test_connection(store, &text)
                        .await
                })
            })
            .await?;
        let latency_ms = started.elapsed().as_millis() as u64;
        let source = self.bound.env.connector_id.clone();
        match r {
            Ok(report) => {
                let stages: Vec<TestStage> = report
                    .stages
                    .into_iter()
                    .map(|s| TestStage {
                        name: s.name,
                        ok: s.ok,
                        message: s.message,
                        latency_ms: s.latency_ms,
                    })
                    .collect();
                let sample = report
                    .sample
                    .into_iter()
                    .take(3)
                    .map(|e| Event::from_plugin(e, &source))
                    .collect::<Result<Vec<_>, EventError>>()
                    .map_err(|e| CallError::BadOutput(e.to_string()))?;
                Ok(TestReport {
                    ok: !stages.is_empty() && stages.iter().all(|s| s.ok),
                    latency_ms,
                    stages,
                    sample,
                })
            }
            Err(e) => {
                let err = PluginError::from(e);
                let stage = match &err {
                    PluginError::Auth { .. } => "auth",
                    PluginError::Config { .. } => "config",
                    _ => "connection",
                };
                Ok(TestReport {
                    ok: false,
                    latency_ms,
                    stages: vec![TestStage {
                        name: stage.into(),
                        ok: false,
                        message: err.to_string(),
                        latency_ms: Some(latency_ms),
                    }],
                    sample: Vec::new(),
                })
            }
        }
    }

    /// One `poll` step.
    pub async fn poll(
        &self,
        config: &serde_json::Value,
        cursor: Option<&str>,
    ) -> Result<Batch, CallError> {
        let text = config.to_string();
        let cursor = cursor.map(str::to_string);
        let r = self
            .with_instance(|store, inst| {
                Box::pin(async move {
                    inst.portcullis_connector_plugin()
                        .call_poll(store, &text, cursor.as_deref())
                        .await
                })
            })
            .await?;
        let batch = r.map_err(|e| CallError::Plugin(e.into()))?;
        if let Some(c) = &batch.cursor
            && c.len() > self.plugin.runtime.inner.limits.max_cursor_bytes
        {
            return Err(CallError::BadOutput(format!(
                "cursor of {} bytes exceeds the {} byte limit",
                c.len(),
                self.plugin.runtime.inner.limits.max_cursor_bytes
            )));
        }
        let source = &self.bound.env.connector_id;
        let events = batch
            .events
            .into_iter()
            .map(|e| Event::from_plugin(e, source))
            .collect::<Result<Vec<_>, EventError>>()
            .map_err(|e| CallError::BadOutput(e.to_string()))?;
        Ok(Batch {
            events,
            cursor: batch.cursor,
            more: batch.more,
        })
    }

    /// `normalize` each input in one instance; a failing input does not stop the others
    /// (after a trap, a fresh instance serves the rest).
    pub async fn normalize(
        &self,
        config: &serde_json::Value,
        inputs: &[String],
    ) -> Vec<Result<Vec<Event>, CallError>> {
        let text = config.to_string();
        let mut results: Vec<Result<Vec<Event>, CallError>> = Vec::with_capacity(inputs.len());
        while results.len() < inputs.len() {
            let start = results.len();
            let remaining: Vec<String> = inputs[start..].to_vec();
            let text = text.clone();
            let outcome = self
                .with_instance(|store, inst| {
                    Box::pin(async move {
                        let mut out = Vec::new();
                        for input in &remaining {
                            match inst
                                .portcullis_connector_plugin()
                                .call_normalize(&mut *store, &text, input)
                                .await
                            {
                                Ok(r) => out.push(Ok(r)),
                                Err(trap) => {
                                    out.push(Err(trap));
                                    break;
                                }
                            }
                        }
                        Ok(out)
                    })
                })
                .await;
            match outcome {
                Err(call_err) => {
                    // Instantiation failed or the whole call timed out: the rest fail alike.
                    while results.len() < inputs.len() {
                        results.push(Err(call_err.clone()));
                    }
                }
                Ok(per_input) => {
                    for r in per_input {
                        results.push(match r {
                            Ok(Ok(events)) => events
                                .into_iter()
                                .map(|e| Event::from_plugin(e, &self.bound.env.connector_id))
                                .collect::<Result<Vec<_>, EventError>>()
                                .map_err(|e| CallError::BadOutput(e.to_string())),
                            Ok(Err(e)) => Err(CallError::Plugin(e.into())),
                            Err(trap) => Err(CallError::Trap(trap_message(&trap))),
                        });
                    }
                }
            }
        }
        results
    }

    /// Instantiate in a fresh store and drop it: the fixed cost of every call (benchmarks).
    #[doc(hidden)]
    pub async fn instantiate_only(&self) -> Result<(), CallError> {
        self.with_instance(|_store, _inst| Box::pin(async { Ok(()) }))
            .await
    }

    /// `describe` through this connector's sandbox.
    pub async fn describe(&self) -> Result<Manifest, CallError> {
        let m = self
            .with_instance(|store, inst| {
                Box::pin(async move {
                    inst.portcullis_connector_plugin()
                        .call_describe(store)
                        .await
                })
            })
            .await?;
        Manifest::from_plugin(m).map_err(|e| CallError::BadOutput(e.to_string()))
    }
}

fn trap_message(err: &wasmtime::Error) -> String {
    let mut msg = match err.downcast_ref::<wasmtime::Trap>() {
        Some(t) => t.to_string(),
        None => err.to_string(),
    };
    // Keep the first line of the guest backtrace (function names help plugin authors).
    let full = format!("{err:?}");
    if let Some(line) = full.lines().map(str::trim).find(|l| l.starts_with("0:"))
        && !msg.contains(line)
    {
        msg = format!("{msg} ({line})");
    }
    msg.chars().take(500).collect()
}

fn classify_trap(
    err: wasmtime::Error,
    memory_exceeded: bool,
    memory_limit: usize,
    deadline: Instant,
    timeout: Duration,
) -> CallError {
    if err.downcast_ref::<DeadlineExceeded>().is_some() || Instant::now() >= deadline {
        return CallError::Timeout(timeout);
    }
    if memory_exceeded || err.downcast_ref::<MemoryLimitExceeded>().is_some() {
        return CallError::MemoryLimit {
            limit: memory_limit,
        };
    }
    if err.downcast_ref::<wasmtime::Trap>().is_none() && format!("{err:#}").contains("instantiat") {
        return CallError::Instantiate(format!("{err:#}"));
    }
    CallError::Trap(trap_message(&err))
}
