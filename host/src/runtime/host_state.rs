//! Per-call host state (`Store<HostState>`) and the host side of the WIT imports.
//!
//! Errors a guest can handle (`http-error`, `state.set` refusals) are returned as WIT
//! values; only host-side bugs or a broken guest become traps.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::latest::portcullis::connector::{clock, http, log, state, types};
use super::plugin_log::{LogOrigin, LogRateLimiter, PluginLogLevel, PluginLogRecord, truncate};
use super::{BoundConnector, RuntimeLimits};
use crate::broker::{self, BrokerError, EgressContext, OutboundRequest, RequestBudget};

/// Everything one plugin call may touch.
pub(crate) struct CallScope {
    pub(crate) connector: Arc<BoundConnector>,
    pub(crate) limits: RuntimeLimits,
    pub(crate) deadline: Instant,
    pub(crate) budget: RequestBudget,
    pub(crate) log_limiter: parking_lot::Mutex<LogRateLimiter>,
    pub(crate) output_bytes: std::sync::atomic::AtomicUsize,
}

impl CallScope {
    pub(crate) fn new(
        connector: Arc<BoundConnector>,
        limits: RuntimeLimits,
        deadline: Instant,
    ) -> Self {
        CallScope {
            budget: RequestBudget::new(limits.max_requests_per_call),
            log_limiter: parking_lot::Mutex::new(LogRateLimiter::new(
                limits.log_burst,
                limits.log_lines_per_sec,
            )),
            connector,
            limits,
            deadline,
            output_bytes: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Log a line from the guest if the rate limit admits it.
    pub(crate) fn log(
        &self,
        level: PluginLogLevel,
        origin: LogOrigin,
        message: String,
        fields: Vec<(String, String)>,
    ) {
        if !self.log_limiter.lock().admit() {
            return;
        }
        let max = self.limits.max_log_line_bytes;
        self.emit(PluginLogRecord {
            level,
            origin,
            message: truncate(message, max),
            fields: fields
                .into_iter()
                .take(16)
                .map(|(k, v)| (truncate(k, 64), truncate(v, 256)))
                .collect(),
            org: self.connector.env.org_id.clone(),
            connector: self.connector.env.connector_id.clone(),
            plugin: self.connector.plugin_id.clone(),
        });
    }

    pub(crate) fn emit(&self, record: PluginLogRecord) {
        self.connector.env.log_sink.record(record);
    }

    /// Report lines the rate limit dropped (once, at the end of the call).
    pub(crate) fn flush_suppressed(&self) {
        let dropped = std::mem::take(&mut self.log_limiter.lock().dropped);
        if dropped > 0 {
            self.emit(PluginLogRecord {
                level: PluginLogLevel::Warn,
                origin: LogOrigin::Host,
                message: format!("suppressed {dropped} plugin log lines (rate limit)"),
                fields: vec![("suppressed".into(), dropped.to_string())],
                org: self.connector.env.org_id.clone(),
                connector: self.connector.env.connector_id.clone(),
                plugin: self.connector.plugin_id.clone(),
            });
        }
    }
}

/// Memory and table caps of one call; records that a cap was hit.
pub(crate) struct SandboxLimiter {
    pub(crate) memory_limit: usize,
    pub(crate) table_elements: usize,
    pub(crate) memory_exceeded: bool,
}

/// Raised (as a trap) when a guest grows memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (requested {requested} bytes)")]
pub struct MemoryLimitExceeded {
    /// The cap.
    pub limit: usize,
    /// What the guest asked for.
    pub requested: usize,
}

/// Raised (as a trap) when the call's deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

impl wasmtime::ResourceLimiter for SandboxLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.memory_exceeded = true;
            return Err(MemoryLimitExceeded {
                limit: self.memory_limit,
                requested: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= self.table_elements)
    }
}

/// The data of one `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: SandboxLimiter,
    pub(crate) scope: Arc<CallScope>,
}

impl HostState {
    pub(crate) fn new(scope: Arc<CallScope>) -> Self {
        // No preopened directories, environment, arguments, sockets or name lookup: the
        // guest's only way out is the `http` import. stdout/stderr go to the plugin log.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(GuestOutput {
                scope: scope.clone(),
                origin: LogOrigin::Stdout,
            })
            .stderr(GuestOutput {
                scope: scope.clone(),
                origin: LogOrigin::Stderr,
            })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: SandboxLimiter {
                memory_limit: scope.limits.memory_bytes,
                table_elements: scope.limits.table_elements,
                memory_exceeded: false,
            },
            scope,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Guest stdout/stderr: split into lines and sent to the plugin log, capped per call.
struct GuestOutput {
    scope: Arc<CallScope>,
    origin: LogOrigin,
}

impl wasmtime_wasi::cli::IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(GuestOutputWriter {
            scope: self.scope.clone(),
            origin: self.origin,
            pending: Vec::new(),
        })
    }
}

struct GuestOutputWriter {
    scope: Arc<CallScope>,
    origin: LogOrigin,
    pending: Vec<u8>,
}

impl GuestOutputWriter {
    fn emit_line(&self, line: &[u8]) {
        let level = match self.origin {
            LogOrigin::Stderr => PluginLogLevel::Warn,
            _ => PluginLogLevel::Info,
        };
        let text = String::from_utf8_lossy(line)
            .trim_end_matches('\r')
            .to_string();
        if text.trim().is_empty() {
            return;
        }
        self.scope.log(level, self.origin, text, Vec::new());
    }
}

impl tokio::io::AsyncWrite for GuestOutputWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::sync::atomic::Ordering;
        let used = self
            .scope
            .output_bytes
            .fetch_add(buf.len(), Ordering::Relaxed);
        if used < self.scope.limits.max_output_bytes {
            let room = self.scope.limits.max_output_bytes - used;
            let take = &buf[..buf.len().min(room)];
            self.pending.extend_from_slice(take);
            while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                self.emit_line(&line[..line.len() - 1]);
            }
            if self.pending.len() > self.scope.limits.max_log_line_bytes {
                let line = std::mem::take(&mut self.pending);
                self.emit_line(&line);
            }
        }
        // Output past the cap is discarded, never an error: a chatty guest keeps running.
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit_line(&line);
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl Drop for GuestOutputWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit_line(&line);
        }
    }
}

impl types::Host for HostState {}

fn to_broker_method(m: http::Method) -> broker::Method {
    match m {
        http::Method::Get => broker::Method::Get,
        http::Method::Head => broker::Method::Head,
        http::Method::Post => broker::Method::Post,
        http::Method::Put => broker::Method::Put,
        http::Method::Patch => broker::Method::Patch,
        http::Method::Delete => broker::Method::Delete,
        http::Method::Options => broker::Method::Options,
    }
}

fn to_wit_error(e: BrokerError) -> http::HttpError {
    match e {
        BrokerError::Denied(m) => http::HttpError::Denied(m),
        BrokerError::InvalidRequest(m) => http::HttpError::InvalidRequest(m),
        BrokerError::Credential(m) => http::HttpError::Credential(m),
        BrokerError::Timeout => http::HttpError::Timeout,
        BrokerError::TooLarge(n) => http::HttpError::TooLarge(n),
        BrokerError::BudgetExhausted(n) => http::HttpError::BudgetExhausted(n),
        BrokerError::Transport(m) => http::HttpError::Transport(m),
    }
}

impl http::Host for HostState {
    async fn send(
        &mut self,
        req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let scope = self.scope.clone();
        let bound = &scope.connector;
        let ctx = EgressContext {
            granter: &bound.granter,
            credentials: bound.env.credentials.as_ref(),
            deadline: scope.deadline,
            budget: &scope.budget,
            upstream: bound.env.upstream.as_deref(),
        };
        let span = tracing::debug_span!(
            "http.send",
            org = bound.env.org_id.as_deref().unwrap_or("-"),
            connector = %bound.env.connector_id,
            plugin = %bound.plugin_id,
        );
        let outbound = OutboundRequest {
            method: to_broker_method(req.method),
            url: req.url,
            headers: req.headers,
            body: req.body,
            credential: req.credential,
            timeout: req.timeout_ms.map(|ms| Duration::from_millis(ms as u64)),
        };
        let result = tracing::Instrument::instrument(bound.broker.send(&ctx, outbound), span).await;
        if let Err(e) = &result {
            tracing::info!(
                org = bound.env.org_id.as_deref().unwrap_or("-"),
                connector = %bound.env.connector_id,
                plugin = %bound.plugin_id,
                error = %e,
                "plugin request refused or failed"
            );
        }
        Ok(result
            .map(|r| http::Response {
                status: r.status,
                headers: r.headers,
                body: r.body,
                url: r.url,
            })
            .map_err(to_wit_error))
    }
}

impl log::Host for HostState {
    fn log(
        &mut self,
        level: log::Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Trace => PluginLogLevel::Trace,
            log::Level::Debug => PluginLogLevel::Debug,
            log::Level::Info => PluginLogLevel::Info,
            log::Level::Warn => PluginLogLevel::Warn,
            log::Level::Error => PluginLogLevel::Error,
        };
        self.scope.log(level, LogOrigin::Plugin, message, fields);
        Ok(())
    }
}

static MONOTONIC_EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl clock::Host for HostState {
    fn now(&mut self) -> wasmtime::Result<String> {
        Ok(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    }

    fn now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(chrono::Utc::now().timestamp_millis().max(0) as u64)
    }

    fn monotonic_ms(&mut self) -> wasmtime::Result<u64> {
        let epoch = MONOTONIC_EPOCH.get_or_init(Instant::now);
        Ok(epoch.elapsed().as_millis() as u64)
    }
}

impl state::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(self.scope.connector.env.state.get(&key))
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        let limits = &self.scope.limits;
        if key.is_empty() || key.len() > 256 {
            return Ok(Err("state keys must be 1-256 bytes".into()));
        }
        if value.len() > limits.state_max_value_bytes {
            return Ok(Err(format!(
                "state values are limited to {} bytes",
                limits.state_max_value_bytes
            )));
        }
        let store = &self.scope.connector.env.state;
        let current = store.get(&key).map(|v| v.len() + key.len()).unwrap_or(0);
        let after = store.used_bytes().saturating_sub(current) + key.len() + value.len();
        if after > limits.state_max_bytes {
            return Ok(Err(format!(
                "state space of {} bytes is full",
                limits.state_max_bytes
            )));
        }
        Ok(store.set(&key, value))
    }

    fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        self.scope.connector.env.state.delete(&key);
        Ok(())
    }
}
