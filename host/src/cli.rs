//! `portcullis plugin inspect|call`: run a plugin in exactly the sandbox and broker the
//! server uses, from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use portcullis::broker::BrokerConfig;
use portcullis::broker::credentials::{CredentialSource, CredentialsFile, NoCredentials};
use portcullis::broker::host_pattern::HostPattern;
use portcullis::broker::ip_policy::IpPolicy;
use portcullis::runtime::plugin_log::TracingLogSink;
use portcullis::runtime::state_store::InMemoryStateStore;
use portcullis::{ConnectorEnv, LoadedPlugin, Runtime, RuntimeConfig, RuntimeLimits};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Sandboxed WebAssembly host for security data-source connectors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the management server (REST API) on the embedded sled store.
    Serve {
        /// TOML configuration file (every key has a default).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Listen address (overrides the config).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Bundled plugin directory (overrides the config).
        #[arg(long)]
        plugin_dir: Option<PathBuf>,
        /// Let plugins reach private networks (overrides the config).
        #[arg(long)]
        allow_private_network: bool,
        /// The seed story, live: start twelve local upstream simulators, create the `demo`
        /// org with their credentials and connectors, keep them publishing, and serve a
        /// fault switch at `POST /demo/sources/{source}/fault` (implies
        /// --allow-private-network: the simulators are on loopback).
        #[arg(long)]
        demo: bool,
    },
    /// Work with plugin components.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// The credential vault of a data directory (server stopped).
    Vault {
        #[command(subcommand)]
        command: VaultCommand,
    },
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Re-wrap every organisation's data key under a new master key (no credential is
    /// re-entered). Without --new-key-file a fresh key replaces the current key file; with
    /// it, that file's key (created, mode 0600, if missing) is used: point
    /// `[vault] master_key_file` at it before the next start. A running server rotates
    /// online with `POST /v1/vault/rotate-master-key`.
    RotateMasterKey {
        /// TOML configuration file (for `data_dir` and `[vault] master_key_file`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the config).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Key file to rotate to.
        #[arg(long)]
        new_key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Upload a component to a running server (`POST /v1/plugins`).
    Install {
        /// The component (.wasm).
        file: PathBuf,
        /// Server base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        server: String,
        /// Platform-admin API token (or $PORTCULLIS_TOKEN).
        #[arg(long, env = "PORTCULLIS_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Inspect every component in a directory (default: the bundled plugins in
    /// `target/plugins`) and print the catalogue as a JSON array.
    List {
        /// Directory of `.wasm` components.
        #[arg(default_value = "target/plugins")]
        dir: PathBuf,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Print what a plugin is and what it asks for, as JSON.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// Call one export of a plugin in the sandbox; prints one JSON document.
    Call {
        /// The component (.wasm).
        file: PathBuf,
        /// The export to call.
        op: Op,
        /// Connector configuration (JSON file). Default: `{}`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Credentials file: `{"<slot>": {"kind": ..., "hosts": [...], ...}}`.
        #[arg(long)]
        credentials: Option<PathBuf>,
        /// Grant a host pattern (repeatable). Default: every host the plugin declares.
        #[arg(long = "grant", value_name = "HOSTPATTERN")]
        grants: Vec<String>,
        /// Cursor for `poll`.
        #[arg(long)]
        cursor: Option<String>,
        /// Input for `normalize`: one record per line.
        #[arg(long)]
        input: Option<PathBuf>,
        /// `poll`: repeat while the plugin reports more.
        #[arg(long)]
        follow: bool,
        /// `poll --follow`: stop after this many batches.
        #[arg(long, default_value_t = 1000)]
        max_batches: u32,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

#[derive(clap::Args)]
struct RuntimeArgs {
    /// Allow requests to loopback, private and link-local addresses (local simulators).
    #[arg(long)]
    allow_private_network: bool,
    /// Wall-clock deadline of one plugin call, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Memory cap per plugin instance, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// Where precompiled components are cached (default: $PORTCULLIS_CACHE_DIR or
    /// ~/.cache/portcullis/components).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Do not use the precompiled-component cache.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Op {
    Describe,
    Validate,
    Test,
    Poll,
    Normalize,
}

/// A failure to report: one line on stderr, and optionally a JSON document on stdout.
struct Failure {
    reason: String,
    output: Option<serde_json::Value>,
}

pub fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,portcullis::plugin=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(Ok(serde_json::Value::Null)) => ExitCode::SUCCESS,
        Ok(Ok(doc)) => {
            println!("{}", pretty(&doc));
            ExitCode::SUCCESS
        }
        Ok(Err(failure)) => {
            if let Some(doc) = failure.output {
                println!("{}", pretty(&doc));
            }
            eprintln!("error: {}", one_line(&failure.reason));
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PORTCULLIS_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("portcullis").join("components"))
}

fn build_runtime(args: &RuntimeArgs) -> Result<Runtime> {
    if args.timeout_secs == 0 {
        bail!("--timeout-secs must be at least 1");
    }
    if args.memory_mib == 0 || args.memory_mib > 4096 {
        bail!("--memory-mib must be between 1 and 4096");
    }
    let limits = RuntimeLimits {
        call_timeout: Duration::from_secs(args.timeout_secs),
        memory_bytes: args.memory_mib * 1024 * 1024,
        ..RuntimeLimits::default()
    };
    let config = RuntimeConfig {
        limits,
        broker: BrokerConfig {
            ip_policy: IpPolicy {
                allow_private_networks: args.allow_private_network,
            },
            ..BrokerConfig::default()
        },
        cache_dir: if args.no_cache {
            None
        } else {
            args.cache_dir.clone().or_else(default_cache_dir)
        },
        ..RuntimeConfig::default()
    };
    Runtime::new(config).map_err(|e| anyhow!(e))
}

async fn load(runtime: &Runtime, file: &Path) -> Result<LoadedPlugin> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    runtime
        .load(&bytes)
        .await
        .map_err(|e| anyhow!("{}: {e}", file.display()))
}

fn read_json(path: &Path, what: &str) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {what} file {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{what} file {} is not valid JSON: {e} (line {}, column {})",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

fn inspect_doc(plugin: &LoadedPlugin) -> serde_json::Value {
    let info = plugin.info();
    let m = &info.manifest;
    json!({
        "id": m.id,
        "name": m.name,
        "version": m.version,
        "api_version": info.api_version,
        "category": m.category,
        "description": m.description,
        "hosts": m.hosts,
        "credential_slots": m.credential_slots,
        "accepts_push": m.accepts_push,
        "config_schema": m.config_schema,
        "imports": info.imports,
        "sha256": info.sha256,
        "size": info.size,
    })
}

async fn serve(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    plugin_dir: Option<PathBuf>,
    allow_private_network: bool,
    demo: bool,
) -> Result<()> {
    use portcullis::server::{ServerConfig, serve, shutdown_signal, start};
    let mut cfg = match &config {
        Some(p) => ServerConfig::load(p)?,
        None => ServerConfig::default(),
    };
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    if let Some(l) = listen {
        cfg.listen = l;
    }
    if let Some(p) = plugin_dir {
        cfg.plugin_dir = p;
    }
    if allow_private_network || demo {
        cfg.allow_private_networks = true;
    }
    let preset = std::env::var("PORTCULLIS_ADMIN_TOKEN").ok();
    let mut started = start(&cfg, preset.as_deref()).await?;
    if let Some(token) = &started.new_admin_token {
        println!("Platform admin token (shown once, stored only as a hash): {token}");
    }
    // Kept alive while serving: dropping it stops the simulators.
    let mut _demo = None;
    if demo {
        let d = portcullis::demo::start(&started.state, portcullis::demo::DemoOptions::default())
            .await
            .context("starting the demo")?;
        started.extra_routes = Some(portcullis::demo::routes(
            started.state.clone(),
            d.world.clone(),
        ));
        let base = format!("http://{}", cfg.listen);
        println!(
            "Demo: org `{}` with 12 connectors against local simulators.",
            portcullis::demo::DEMO_ORG
        );
        println!("  Admin panel:     {base}/  (sign in with the operator token)");
        println!("  Operator token:  {}", d.operator_token);
        println!("  Viewer token:    {}", d.viewer_token);
        println!(
            "  Events:          curl -H 'Authorization: Bearer <operator token>' {base}/v1/orgs/demo/events"
        );
        println!(
            "  Break the SIEM:  curl -X POST -H 'Authorization: Bearer <operator token>' -H 'content-type: application/json' -d '{{\"fault\":\"duplicate-flood\"}}' {base}/demo/sources/threathawk/fault"
        );
        println!("  Sources:         {}", d.world.sources().join(", "));
        _demo = Some(d);
    }
    println!(
        "Portcullis listening on http://{} (data dir {})",
        cfg.listen,
        cfg.data_dir.display()
    );
    serve(&cfg, started, shutdown_signal()).await?;
    Ok(())
}

async fn install_remote(file: &Path, server: &str, token: &str) -> Result<serde_json::Value> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let url = format!("{}/v1/plugins", server.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .map_err(|e| anyhow!("cannot reach {url}: {e}"))?;
    let status = resp.status();
    let text = resp
        .bytes()
        .await
        .map_err(|e| anyhow!("reading the answer of {url}: {e}"))?;
    let body: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| anyhow!("{url} answered {status} with a body that is not JSON: {e}"))?;
    if !status.is_success() {
        bail!(
            "{url} answered {status}: {}",
            body.get("detail")
                .and_then(|d| d.as_str())
                .unwrap_or("(no detail)")
        );
    }
    Ok(body)
}

/// `portcullis vault rotate-master-key`: offline, on the data directory of a stopped
/// server (sled allows one process).
async fn rotate_master_key(
    config: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    new_key_file: Option<PathBuf>,
) -> Result<serde_json::Value> {
    use portcullis::server::{ServerConfig, open_master_key};
    let mut cfg = match &config {
        Some(p) => ServerConfig::load(p)?,
        None => ServerConfig::default(),
    };
    if let Some(d) = data_dir {
        cfg.data_dir = d;
    }
    let master = open_master_key(&cfg)?;
    let store = portcullis::store::SledStore::open(&cfg.data_dir.join("store")).map_err(|e| {
        anyhow!("{e} (is the server running? rotate online with POST /v1/vault/rotate-master-key)")
    })?;
    let store: Arc<dyn portcullis::store::KvStore> = Arc::new(store);
    let vault = portcullis::vault::CredentialVault::open(
        store.clone(),
        &cfg.data_dir,
        master,
        Arc::new(portcullis::broker::oauth::OAuthTokenCache::new()),
        cfg.vault.clone(),
    )?;
    let report = vault
        .rotate_master_key_with_file(new_key_file.as_deref())
        .await?;
    store.flush()?;
    Ok(serde_json::to_value(report)?)
}

async fn run(cli: Cli) -> Result<Result<serde_json::Value, Failure>> {
    match cli.command {
        Command::Vault {
            command:
                VaultCommand::RotateMasterKey {
                    config,
                    data_dir,
                    new_key_file,
                },
        } => Ok(Ok(rotate_master_key(config, data_dir, new_key_file).await?)),
        Command::Serve {
            config,
            data_dir,
            listen,
            plugin_dir,
            allow_private_network,
            demo,
        } => {
            serve(
                config,
                data_dir,
                listen,
                plugin_dir,
                allow_private_network,
                demo,
            )
            .await?;
            Ok(Ok(serde_json::Value::Null))
        }
        Command::Plugin {
            command:
                PluginCommand::Install {
                    file,
                    server,
                    token,
                },
        } => Ok(Ok(install_remote(&file, &server, &token).await?)),
        Command::Plugin {
            command: PluginCommand::List { dir, runtime },
        } => {
            let rt = build_runtime(&runtime)?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .with_context(|| {
                    format!(
                        "cannot read plugin directory {} (build the bundled plugins with `cargo xtask build-plugins`)",
                        dir.display()
                    )
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .collect();
            files.sort();
            let mut catalogue = Vec::new();
            let mut refused = Vec::new();
            for file in files {
                match load(&rt, &file).await {
                    Ok(plugin) => {
                        let mut doc = inspect_doc(&plugin);
                        doc["file"] = json!(file.display().to_string());
                        catalogue.push(doc);
                    }
                    Err(e) => refused.push(format!("{e:#}")),
                }
            }
            if refused.is_empty() {
                Ok(Ok(json!(catalogue)))
            } else {
                Ok(Err(Failure {
                    reason: format!(
                        "{} component(s) refused: {}",
                        refused.len(),
                        refused.join("; ")
                    ),
                    output: Some(json!(catalogue)),
                }))
            }
        }
        Command::Plugin {
            command: PluginCommand::Inspect { file, runtime },
        } => {
            let rt = build_runtime(&runtime)?;
            let plugin = load(&rt, &file).await?;
            Ok(Ok(inspect_doc(&plugin)))
        }
        Command::Plugin {
            command:
                PluginCommand::Call {
                    file,
                    op,
                    config,
                    credentials,
                    grants,
                    cursor,
                    input,
                    follow,
                    max_batches,
                    runtime,
                },
        } => {
            let rt = build_runtime(&runtime)?;
            let plugin = load(&rt, &file).await?;
            let manifest = plugin.manifest().clone();
            let config = match &config {
                Some(p) => read_json(p, "config")?,
                None => json!({}),
            };
            let grants = if grants.is_empty() {
                manifest.host_patterns()
            } else {
                grants
                    .iter()
                    .map(|g| HostPattern::parse(g).map_err(|e| anyhow!("--grant: {e}")))
                    .collect::<Result<Vec<_>>>()?
            };
            let credentials: Arc<dyn CredentialSource> = match &credentials {
                Some(p) => {
                    let creds = CredentialsFile::load(p).map_err(|e| anyhow!("{e}"))?;
                    for slot in creds.bound_slots() {
                        if manifest.slot(&slot).is_none() {
                            bail!(
                                "credentials file binds slot {slot:?}, which plugin {} does not declare (declared: {})",
                                manifest.id,
                                manifest
                                    .credential_slots
                                    .iter()
                                    .map(|s| s.name.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                    }
                    Arc::new(creds)
                }
                None => Arc::new(NoCredentials),
            };
            let env = ConnectorEnv {
                org_id: None,
                connector_id: format!("cli:{}", manifest.id),
                grants,
                credentials,
                state: Arc::new(InMemoryStateStore::new()),
                log_sink: Arc::new(TracingLogSink),
                upstream: None,
            };
            let sandbox = plugin.bind(env).map_err(|e| anyhow!("--grant: {e}"))?;
            call(
                &sandbox,
                op,
                &config,
                cursor,
                input.as_deref(),
                follow,
                max_batches,
            )
            .await
        }
    }
}

async fn call(
    sandbox: &portcullis::ConnectorSandbox,
    op: Op,
    config: &serde_json::Value,
    cursor: Option<String>,
    input: Option<&Path>,
    follow: bool,
    max_batches: u32,
) -> Result<Result<serde_json::Value, Failure>> {
    Ok(match op {
        Op::Describe => match sandbox.describe().await {
            Ok(m) => Ok(serde_json::to_value(m)?),
            Err(e) => Err(Failure {
                reason: format!("describe failed: {e}"),
                output: None,
            }),
        },
        Op::Validate => match sandbox.validate_config(config).await {
            Ok(errors) if errors.is_empty() => Ok(json!({"ok": true, "errors": []})),
            Ok(errors) => Err(Failure {
                reason: format!(
                    "configuration invalid: {}",
                    errors
                        .iter()
                        .map(|e| format!(
                            "{}: {}",
                            if e.path.is_empty() { "/" } else { &e.path },
                            e.message
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                output: Some(json!({"ok": false, "errors": errors})),
            }),
            Err(e) => Err(Failure {
                reason: format!("validate failed: {e}"),
                output: None,
            }),
        },
        Op::Test => match sandbox.test_connection(config).await {
            Ok(report) if report.ok => Ok(serde_json::to_value(report)?),
            Ok(report) => {
                let failed: Vec<String> = report
                    .stages
                    .iter()
                    .filter(|s| !s.ok)
                    .map(|s| format!("{}: {}", s.name, s.message))
                    .collect();
                Err(Failure {
                    reason: format!("connection test failed: {}", failed.join("; ")),
                    output: Some(serde_json::to_value(report)?),
                })
            }
            Err(e) => Err(Failure {
                reason: format!("test failed: {e}"),
                output: None,
            }),
        },
        Op::Poll => {
            let mut events = Vec::new();
            let mut cursor = cursor;
            let mut more = false;
            let mut batches = 0u32;
            loop {
                match sandbox.poll(config, cursor.as_deref()).await {
                    Ok(batch) => {
                        batches += 1;
                        events.extend(batch.events);
                        if batch.cursor.is_some() {
                            cursor = batch.cursor;
                        }
                        more = batch.more;
                    }
                    Err(e) => {
                        let doc = json!({"events": events, "cursor": cursor, "more": more, "batches": batches, "error": {"code": e.code(), "message": e.to_string()}});
                        break Err(Failure {
                            reason: format!("poll failed after {batches} batch(es): {e}"),
                            output: if batches > 0 { Some(doc) } else { None },
                        });
                    }
                }
                if !(follow && more) || batches >= max_batches {
                    break Ok(
                        json!({"events": events, "cursor": cursor, "more": more, "batches": batches}),
                    );
                }
            }
        }
        Op::Normalize => {
            let path = input
                .ok_or_else(|| anyhow!("normalize needs --input FILE (one record per line)"))?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read input file {}", path.display()))?;
            let lines: Vec<(usize, String)> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(|(i, l)| (i + 1, l.to_string()))
                .collect();
            let inputs: Vec<String> = lines.iter().map(|(_, l)| l.clone()).collect();
            let results = sandbox.normalize(config, &inputs).await;
            let mut events = Vec::new();
            let mut errors = Vec::new();
            for ((line, _), r) in lines.iter().zip(results) {
                match r {
                    Ok(evs) => events.extend(evs),
                    Err(e) => errors.push(json!({"line": line, "message": e.to_string()})),
                }
            }
            let doc = json!({"events": events, "errors": errors});
            if errors.is_empty() {
                Ok(doc)
            } else {
                Err(Failure {
                    reason: format!("{} of {} input line(s) failed", errors.len(), lines.len()),
                    output: Some(doc),
                })
            }
        }
    })
}
