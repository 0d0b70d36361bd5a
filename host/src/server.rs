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
    let store: Arc<dyn KvStore> = Arc::new(
        SledStore::open(&config.data_dir.join("store"))
            .map_err(|e| ServerError::Startup(e.to_string()))?,
    );
    let runtime =
        Runtime::new(config.runtime_config()?).map_err(|e| ServerError::Startup(e.to_string()))?;
    let service = ManagementService::open(store, runtime)
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    let new_admin_token = service
        .bootstrap_admin(preset_admin_token)
        .await
        .map_err(|e| ServerError::Startup(e.to_string()))?;
    install_bundled(&service, &config.plugin_dir).await;
    let state = AppState::new(service);
    state.0.ready.store(true, Ordering::Relaxed);
    Ok(Started {
        state,
        new_admin_token,
    })
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
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServerError::Startup(format!("server error: {e}")))?;
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
