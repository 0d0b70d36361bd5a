//! `portcullis serve`: configuration, startup (store, runtime, admin token, bundled
//! plugins), the HTTP listener and graceful shutdown.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Deserialize;

use crate::api::{AppState, router};
use crate::broker::BrokerConfig;
use crate::broker::ip_policy::IpPolicy;
use crate::ingest::Ingest;
use crate::ingest::delivery::{Pipeline, PipelineConfig};
use crate::ingest::event_store::{EventStore, Retention};
use crate::ingest::scheduler::{ConnectorScheduler, SchedulerConfig};
use crate::management::ManagementService;
use crate::management::model::{Principal, Role};
use crate::runtime::{Runtime, RuntimeConfig, RuntimeLimits};
use crate::store::{KvStore, SledStore};

/// `portcullis.toml`. Every key has a default; unknown keys are an error naming the key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory (sled store, precompiled components).
    pub data_dir: PathBuf,
    /// Bundled plugins installed at startup.
    pub plugin_dir: PathBuf,
    /// Let plugins reach loopback/private networks (tests, demos, on-prem upstreams).
    pub allow_private_networks: bool,
    /// Sandbox limits.
    pub limits: LimitsConfig,
    /// The embedded store (`[store]`: `cache_mb`).
    pub store: StoreConfig,
    /// The credential vault (`[vault]`: `master_key_file`, `expiry_warning_days`).
    pub vault: crate::vault::VaultConfig,
    /// Ingestion (`[ingest]`).
    pub ingest: IngestConfig,
    /// The embedded event store (`[events]`).
    pub events: EventsConfig,
    /// Health thresholds, upstream backoff and the crash-loop policy (`[health]`).
    pub health: crate::health::HealthConfig,
    /// Syslog listeners (`[[syslog.listeners]]`, see `ingest::syslog::config`).
    pub syslog: crate::ingest::syslog::config::SyslogConfig,
}

/// `[store]`: the embedded sled store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Page cache in MiB (sled's own default is 1 GiB; most of a busy server's memory).
    pub cache_mb: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_mb: crate::store::DEFAULT_CACHE_BYTES / (1024 * 1024),
        }
    }
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Multiplies every connector's schedule (`0.01` polls a `PT1M` connector every
    /// 600 ms: demos, tests, benchmarks).
    pub schedule_scale: f64,
    /// Event ids remembered per connector for dedup.
    pub dedup_window: u64,
    /// Batches in the sinks at once (all connectors); beyond it polling pauses.
    pub max_inflight_batches: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            schedule_scale: 1.0,
            dedup_window: 10_000,
            max_inflight_batches: 32,
        }
    }
}

/// `[events]`: retention of the embedded event store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Events ingested longer ago are removed (0: no age limit).
    pub retention_days: u64,
    /// Oldest events are removed beyond this many bytes of events (0: no size limit).
    pub max_bytes: u64,
    /// Seconds between retention passes.
    pub retention_interval_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            retention_days: 30,
            max_bytes: 1 << 30,
            retention_interval_secs: 60,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Wall-clock deadline of one plugin call.
    pub call_timeout_secs: u64,
    /// Memory cap per plugin instance.
    pub memory_mib: usize,
    /// HTTP requests per plugin call.
    pub max_requests_per_call: u32,
    /// Largest HTTP response a plugin receives.
    pub max_response_mib: u64,
    /// Concurrent plugin instances.
    pub max_instances: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            call_timeout_secs: 30,
            memory_mib: 64,
            max_requests_per_call: 100,
            max_response_mib: 16,
            max_instances: 64,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            plugin_dir: PathBuf::from("target/plugins"),
            allow_private_networks: false,
            limits: LimitsConfig::default(),
            store: StoreConfig::default(),
            vault: crate::vault::VaultConfig::default(),
            ingest: IngestConfig::default(),
            events: EventsConfig::default(),
            health: crate::health::HealthConfig::default(),
            syslog: Default::default(),
        }
    }
}

/// Startup failures.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Config file unreadable or invalid.
    #[error("config {path}: {message}")]
    Config {
        /// File.
        path: String,
        /// What is wrong (names the key).
        message: String,
    },
    /// Anything else at startup.
    #[error("{0}")]
    Startup(String),
}

impl ServerConfig {
    /// Read a TOML config file.
    pub fn load(path: &Path) -> Result<Self, ServerError> {
        let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ServerError::Config {
            path: path.display().to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })
    }

    fn runtime_config(&self) -> Result<RuntimeConfig, ServerError> {
        let l = &self.limits;
        if l.call_timeout_secs == 0 || l.memory_mib == 0 || l.max_instances == 0 {
            return Err(ServerError::Config {
                path: "limits".into(),
                message: "call_timeout_secs, memory_mib and max_instances must be positive".into(),
            });
        }
        Ok(RuntimeConfig {
            limits: RuntimeLimits {
                call_timeout: Duration::from_secs(l.call_timeout_secs),
                memory_bytes: l.memory_mib * 1024 * 1024,
                max_requests_per_call: l.max_requests_per_call,
                ..RuntimeLimits::default()
            },
            broker: BrokerConfig {
                ip_policy: IpPolicy {
                    allow_private_networks: self.allow_private_networks,
                },
                max_response_bytes: l.max_response_mib * 1024 * 1024,
                ..BrokerConfig::default()
            },
            cache_dir: Some(self.data_dir.join("components")),
            allocation: crate::runtime::AllocationStrategy::Pooling {
                max_instances: l.max_instances,
            },
        })
    }
}

/// The principal startup acts as (bundled plugin installs).
fn system_principal() -> Principal {
    Principal {
        token_id: "system".into(),
        name: "startup".into(),
        org: None,
        role: Role::Admin,
    }
}

/// A started server: its state, address and the admin token if one was just created.
pub struct Started {
    /// The API state.
    pub state: AppState,
    /// The platform-admin token created at this start (print it once), if any.
    pub new_admin_token: Option<String>,
    /// Routes served beside the API (`serve --demo` adds its fault switch).
    pub extra_routes: Option<axum::Router>,
}

/// Open the store, build the runtime and service, make sure an admin token exists and
/// install the bundled plugins.
pub async fn start(
    config: &ServerConfig,
    preset_admin_token: Option<&str>,
) -> Result<Started, ServerError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|e| {
        ServerError::Startup(format!(
            "cannot create data dir {}: {e}",
            config.data_dir.display()
        ))
    })?;
    // The master key is checked before the store is opened: a wrong key changes nothing.
    let master = open_master_key(config)?;
    let store: Arc<dyn KvStore> = Arc::new(
        SledStore::open_with_cache(
            &config.data_dir.join("store"),
            config.store.cache_mb.max(8) * 1024 * 1024,
        )
        .map_err(|e| ServerError::Startup(e.to_string()))?,
    );
    let runtime =
        Runtime::new(config.runtime_config()?).map_err(|e| ServerError::Startup(e.to_string()))?;
    let vault = crate::vault::CredentialVault::open(
        store.clone(),
        &config.data_dir,
        master,
        runtime.broker().token_cache().clone(),
        config.vault.clone(),
    )
    .map_err(|e| ServerError::Startup(e.to_string()))?;
    let service = Arc::new(
        ManagementService::open(store.clone(), runtime, vault)
            .await
            .map_err(|e| ServerError::Startup(e.to_string()))?,
    );
    let new_admin_token = service
        .bootstrap_admin(preset_admin_token)
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    install_bundled(&service, &config.plugin_dir).await;
    config.health.validate().map_err(|e| ServerError::Config {
        path: "health".into(),
        message: e.to_string(),
    })?;
    service.configure_health(config.health.clone());
    crate::health::worker::spawn(Arc::downgrade(&service));
    let ingest = start_ingest(config, store, service.clone()).await?;
    let state = AppState::shared(service);
    let _ = state.0.ingest.set(ingest);
    state.0.ready.store(true, Ordering::Relaxed);
    Ok(Started {
        state,
        new_admin_token,
        extra_routes: None,
    })
}

/// The event store, the delivery pipeline and the scheduler (hooked into the service's
/// connector lifecycle), every enabled connector resumed from its cursor, and the
/// periodic retention pass.
async fn start_ingest(
    config: &ServerConfig,
    store: Arc<dyn KvStore>,
    service: Arc<ManagementService>,
) -> Result<Ingest, ServerError> {
    let ev = &config.events;
    let retention = Retention {
        max_age: (ev.retention_days > 0).then(|| Duration::from_secs(ev.retention_days * 86_400)),
        max_bytes: (ev.max_bytes > 0).then_some(ev.max_bytes),
    };
    let ing = &config.ingest;
    if !(ing.schedule_scale.is_finite() && ing.schedule_scale > 0.0) {
        return Err(ServerError::Config {
            path: "ingest.schedule_scale".into(),
            message: "must be a positive number".into(),
        });
    }
    let event_store = Arc::new(
        EventStore::open(store.clone(), retention)
            .map_err(|e| ServerError::Startup(e.to_string()))?,
    );
    let pipeline = Arc::new(Pipeline::new(
        store,
        event_store.clone(),
        PipelineConfig {
            dedup_window: ing.dedup_window.max(1),
            max_inflight_batches: ing.max_inflight_batches.max(1),
            ..PipelineConfig::default()
        },
    ));
    let push = crate::ingest::push::attach(
        &config.syslog,
        config.data_dir.join("sinks"),
        IpPolicy {
            allow_private_networks: config.allow_private_networks,
        },
        service.clone(),
        &pipeline,
    )
    .await
    .map_err(|e| ServerError::Startup(e.to_string()))?;
    let observer: Arc<dyn crate::ingest::observe::IngestObserver> = service.health().clone();
    pipeline.set_observer(observer);
    let scheduler = ConnectorScheduler::new(
        service,
        pipeline.clone(),
        SchedulerConfig {
            schedule_scale: ing.schedule_scale,
            ..SchedulerConfig::default()
        },
    );
    scheduler.attach();
    let resumed = scheduler.resume_all().await;
    tracing::info!(connectors = resumed, "ingestion started");
    let every = Duration::from_secs(ev.retention_interval_secs.max(1));
    let weak = Arc::downgrade(&event_store);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(es) = weak.upgrade() else { return };
            match tokio::task::spawn_blocking(move || es.prune()).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(removed = n, "event retention"),
                Ok(Err(e)) => tracing::error!(error = %e, "event retention failed"),
                _ => {}
            }
        }
    });
    Ok(Ingest {
        pipeline,
        scheduler,
        push,
    })
}

/// Find and check the master key (`$PORTCULLIS_MASTER_KEY`, `[vault] master_key_file`,
/// or `<data_dir>/master.key`, created on first start).
pub fn open_master_key(
    config: &ServerConfig,
) -> Result<crate::vault::master_key::MasterKey, ServerError> {
    use crate::vault::master_key;
    let env = std::env::var(master_key::ENV_VAR).ok();
    let resolved = master_key::resolve(
        config.vault.master_key_file.as_deref(),
        &config.data_dir,
        env.as_deref(),
    )
    .map_err(|e| ServerError::Startup(e.to_string()))?;
    if let Some(path) = &resolved.created {
        tracing::warn!(file = %path.display(), key_id = %resolved.master.id, "created a new vault master key (mode 0600); back it up: credentials cannot be decrypted without it");
    } else {
        tracing::info!(key_id = %resolved.master.id, source = %resolved.master.source, "vault master key loaded");
    }
    Ok(resolved.master)
}

async fn install_bundled(service: &ManagementService, dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "no bundled plugin directory; starting without bundled plugins");
            return;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    files.sort();
    for file in files {
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot read bundled plugin");
                continue;
            }
        };
        match service
            .install_plugin(&system_principal(), &bytes, true)
            .await
        {
            Ok((rec, true)) => {
                tracing::info!(plugin = %rec.id, version = %rec.version, "installed bundled plugin")
            }
            Ok((_, false)) => {}
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "bundled plugin not installed")
            }
        }
    }
}

/// Serve until `shutdown` resolves; then finish in-flight requests and flush the store.
pub async fn serve(
    config: &ServerConfig,
    started: Started,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Startup(format!("cannot listen on {}: {e}", config.listen)))?;
    serve_on(listener, started, shutdown).await
}

/// Serve on an already bound listener (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    started: Started,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let state = started.state.clone();
    let mut app = router(state.clone());
    if let Some(extra) = started.extra_routes {
        app = app.merge(extra);
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServerError::Startup(format!("server error: {e}")))?;
    if let Some(ingest) = state.ingest() {
        // In-flight polls end uncommitted; they are polled again after the restart.
        ingest.scheduler.shutdown().await;
    }
    state
        .service()
        .store()
        .flush()
        .map_err(|e| ServerError::Startup(format!("flushing the store: {e}")))?;
    tracing::info!("store flushed; bye");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
