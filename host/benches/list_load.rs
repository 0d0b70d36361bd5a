//! Load benchmark of the management API's connector list (issue 3, "Benchmarks").
//!
//! 1. Starts the real server — this package's `portcullis serve`, built by `cargo bench`
//!    with the bench (release) profile — as a child process on a fresh data directory
//!    under `target/bench-list/`, with the bundled plugins of `target/plugins/`.
//! 2. Seeds `--orgs` organisations (default 100) × `--per-org` connectors (default 100)
//!    of the bundled `rest-generic` plugin through the REST API (one viewer token per
//!    org too), the way an admin would.
//! 3. Drives `GET /v1/orgs/{org}/connectors` (default page and the whole org with
//!    `?limit=`), and the GraphQL `connectors(org: ...)` query when the server answers
//!    `POST /graphql`, with `oha`: first at a fixed rate (`-q`, default 500 req/s) with
//!    latency correction (latency counted from when each request was due, so a server
//!    stall is not hidden by coordinated omission), then closed-loop at full speed for
//!    the maximum throughput. Requests are spread over the orgs: REST URLs are drawn
//!    uniformly (`--rand-regex-url`), GraphQL bodies come one per org from a file (`-Z`).
//!    All of it twice (`--phase`): against the server that has just been seeded ("live"),
//!    and after restarting it on the same store ("after restart": the same data, read back
//!    from disk by a fresh process).
//! 4. Reports p50/p90/p99/p99.9/max, throughput, non-2xx counts, the sled store's size on
//!    disk, the server's RSS (VmRSS/VmHWM from `/proc/<pid>/status`) after seeding, after a
//!    restart and after each load phase, its CPU time per request, and the machine load
//!    before, during and after.
//!
//! Run: `cargo xtask bench-list` (builds the plugins, then this bench), or after
//! `cargo xtask build-plugins`:
//! `cargo bench -p portcullis --bench list_load -- [--rate 500] [--duration 30] ...`
//! (`--help` lists the options). `oha` is installed with `cargo install oha --locked`
//! when it is not on the PATH.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

const USAGE: &str = "\
list_load: load benchmark of GET /v1/orgs/{org}/connectors (and GraphQL connectors(org:))

options (after `--`):
  --orgs N              organisations to seed (100)
  --per-org N           connectors per organisation (100)
  --rate R              fixed request rate of the latency runs, req/s (500)
  --duration S          seconds of each fixed-rate run (30)
  --max-duration S      seconds of each full-speed run (15)
  --connections C       oha connections (32)
  --seed-concurrency N  concurrent create calls while seeding (8)
  --only WHAT           rest | graphql | all (all)
  --phase WHAT          live | restarted | both (both): load the server that was just
                        seeded, and/or the same store after a server restart
  --server-bin PATH     run this `portcullis` binary instead of the one cargo built
                        (A/B comparisons of another build)
  --server-env K=V      set K=V in the server's environment (repeatable; experiments,
                        e.g. LD_PRELOAD of another allocator, PORTCULLIS_LOG)
  --out FILE            also write the markdown report to FILE
  --keep                keep the data directory afterwards
";

#[derive(Debug, Clone)]
struct Opts {
    orgs: usize,
    per_org: usize,
    rate: u32,
    duration: u64,
    max_duration: u64,
    connections: u32,
    seed_concurrency: usize,
    only: String,
    phase: String,
    server_env: Vec<(String, String)>,
    server_bin: Option<PathBuf>,
    out: Option<PathBuf>,
    keep: bool,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        orgs: 100,
        per_org: 100,
        rate: 500,
        duration: 30,
        max_duration: 15,
        connections: 32,
        seed_concurrency: 8,
        only: "all".into(),
        phase: "both".into(),
        server_env: Vec::new(),
        server_bin: None,
        out: None,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "--orgs" => o.orgs = val()?.parse()?,
            "--per-org" => o.per_org = val()?.parse()?,
            "--rate" => o.rate = val()?.parse()?,
            "--duration" => o.duration = val()?.parse()?,
            "--max-duration" => o.max_duration = val()?.parse()?,
            "--connections" => o.connections = val()?.parse()?,
            "--seed-concurrency" => o.seed_concurrency = val()?.parse()?,
            "--only" => o.only = val()?,
            "--phase" => o.phase = val()?,
            "--server-bin" => o.server_bin = Some(PathBuf::from(val()?)),
            "--server-env" => {
                let kv = val()?;
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--server-env {kv:?}: expected K=V"))?;
                o.server_env.push((k.to_string(), v.to_string()));
            }
            "--out" => o.out = Some(PathBuf::from(val()?)),
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if o.orgs == 0 || o.orgs > 1000 || o.per_org == 0 {
        bail!("--orgs must be 1-1000 and --per-org positive");
    }
    if !matches!(o.only.as_str(), "rest" | "graphql" | "all") {
        bail!("--only must be rest, graphql or all");
    }
    if !matches!(o.phase.as_str(), "live" | "restarted" | "both") {
        bail!("--phase must be live, restarted or both");
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn org_id(i: usize) -> String {
    format!("org-{i:03}")
}

// ----- the load tool ---------------------------------------------------------------------

/// `oha` from the PATH or cargo's bin dir; installed from crates.io when missing.
fn find_oha() -> Result<PathBuf> {
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|h| h.join("bin"));
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(cargo_bin.clone());
    for dir in candidates {
        let p = dir.join("oha");
        if p.is_file() {
            return Ok(p);
        }
    }
    eprintln!("list_load: oha not found; installing it with `cargo install oha --locked`");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["install", "oha", "--locked"])
        .status()
        .context("cannot run cargo install")?;
    if !status.success() {
        bail!("`cargo install oha --locked` failed ({status})");
    }
    let p = cargo_bin
        .map(|d| d.join("oha"))
        .filter(|p| p.is_file())
        .context("oha installed but not found in cargo's bin directory")?;
    Ok(p)
}

/// One oha run's figures (latencies in ms).
#[derive(Debug, Clone, Default)]
struct LoadResult {
    phase: String,
    label: String,
    requests: u64,
    rps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    non_2xx: u64,
    errors: u64,
    bytes_per_response: f64,
    server_cpu_ms: f64,
    tool_cpu_ms: f64,
}

/// CPU milliseconds per request from clock ticks.
fn per_request(ticks: u64, requests: u64) -> f64 {
    if requests == 0 {
        return f64::NAN;
    }
    ticks as f64 * 1000.0 / clk_tck() as f64 / requests as f64
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN) * 1000.0
}

/// Run oha with `args` (plus the JSON output flags) and read its summary.
fn oha(oha: &Path, label: &str, args: &[String], server_pid: u32) -> Result<LoadResult> {
    let cpu_before = cpu_ticks(server_pid)?;
    let tool_before = children_cpu_ticks()?;
    let out = Command::new(oha)
        .args(["--no-tui", "--output-format", "json"])
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run oha")?;
    let cpu_after = cpu_ticks(server_pid)?;
    let tool_after = children_cpu_ticks()?;
    if !out.status.success() {
        bail!("oha failed ({}) for {label}", out.status);
    }
    let doc: Value = serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "oha printed no JSON: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })?;
    let s = &doc["summary"];
    let p = &doc["latencyPercentiles"];
    let mut ok = 0u64;
    let mut non_2xx = 0u64;
    if let Some(codes) = doc["statusCodeDistribution"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            if code.starts_with('2') {
                ok += n;
            } else {
                non_2xx += n;
            }
        }
    }
    let errors = doc["errorDistribution"]
        .as_object()
        .map(|e| e.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let requests = ok + non_2xx;
    let total_bytes = s["totalData"].as_f64().unwrap_or(0.0);
    Ok(LoadResult {
        phase: String::new(),
        label: label.to_string(),
        requests,
        rps: s["requestsPerSec"].as_f64().unwrap_or(f64::NAN),
        p50: ms(&p["p50"]),
        p90: ms(&p["p90"]),
        p99: ms(&p["p99"]),
        p999: ms(&p["p99.9"]),
        max: ms(&s["slowest"]),
        non_2xx,
        errors,
        bytes_per_response: if requests > 0 {
            total_bytes / requests as f64
        } else {
            0.0
        },
        server_cpu_ms: per_request(cpu_after - cpu_before, requests),
        tool_cpu_ms: per_request(tool_after - tool_before, requests),
    })
}

// ----- the server process ------------------------------------------------------------------

struct Server {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Start `portcullis serve` on `port` (the same port after a restart, so the load
    /// targets stay valid).
    fn start(
        o: &Opts,
        data_dir: &Path,
        plugin_dir: &Path,
        admin: &str,
        port: u16,
        log: PathBuf,
    ) -> Result<Self> {
        let log_file = std::fs::File::create(&log)?;
        let bin = o
            .server_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_portcullis")));
        let child = Command::new(bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--plugin-dir")
            .arg(plugin_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("PORTCULLIS_ADMIN_TOKEN", admin)
            .env_remove("PORTCULLIS_LOG")
            .envs(o.server_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .spawn()
            .context("cannot start portcullis serve")?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<Duration> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("the server was not ready after 120 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM (graceful shutdown flushes the store), then wait.
    fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    eprintln!("list_load: server exited with {status}");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("the server did not stop within 30 s of SIGTERM")
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// VmRSS / VmHWM / RssAnon / RssFile of a process, KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    anon: u64,
    file: u64,
}

fn mem(pid: u32) -> Result<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Ok(Mem {
        rss: field("VmRSS:"),
        hwm: field("VmHWM:"),
        anon: field("RssAnon:"),
        file: field("RssFile:"),
    })
}

/// utime + stime of a process, clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    stat_ticks(&pid.to_string(), 14)
}

/// CPU time of the children this process has waited for (cutime + cstime), clock ticks:
/// the load tool's CPU, read around each oha run.
fn children_cpu_ticks() -> Result<u64> {
    stat_ticks("self", 16)
}

/// Fields `first` and `first + 1` (1-based, as proc(5) numbers them) of
/// `/proc/<pid>/stat`, added.
fn stat_ticks(pid: &str, first: usize) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces: fields count from after its ')'.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3.
    let get = |n: usize| -> u64 { f.get(n - 3).and_then(|v| v.parse().ok()).unwrap_or(0) };
    Ok(get(first) + get(first + 1))
}

fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// (allocated bytes as `du` counts them, apparent bytes) of a directory tree.
fn dir_usage(path: &Path) -> Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let mut alloc = 0;
    let mut apparent = 0;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            let m = e.metadata()?;
            if m.is_dir() {
                stack.push(e.path());
            } else {
                alloc += m.blocks() * 512;
                apparent += m.len();
            }
        }
    }
    Ok((alloc, apparent))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Load average of the last minute.
fn load1() -> f64 {
    loadavg()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

// ----- seeding through the API ----------------------------------------------------------------

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> Result<(reqwest::StatusCode, Value)> {
    let mut req = client.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&b)?);
    }
    let resp = req.send().await.with_context(|| url.clone())?;
    let status = resp.status();
    let bytes = resp.bytes().await?;
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok((status, v))
}

fn connector_body(org: &str, i: usize) -> Value {
    let host = format!("https://siem-{org}.example.com");
    json!({
        "name": format!("{org} alerts {i:03}"),
        "plugin": "rest-generic",
        "config": {
            "base_url": host,
            "path": format!("/api/v2/alerts/{i}"),
            "id": "/id",
            "credential": "api"
        },
        "credentials": {"api": format!("{org}-key")},
        "grants": [host],
        "schedule": if i.is_multiple_of(2) { "PT5M" } else { "PT1H" }
    })
}

struct Seeded {
    elapsed: Duration,
    connectors: usize,
}

async fn seed(client: &reqwest::Client, base: &str, admin: &str, o: &Opts) -> Result<Seeded> {
    let started = Instant::now();
    for i in 0..o.orgs {
        let org = org_id(i);
        let (st, v) = call(
            client,
            reqwest::Method::POST,
            format!("{base}/v1/orgs"),
            admin,
            Some(json!({"id": org, "name": format!("Organisation {i}")})),
        )
        .await?;
        if st != reqwest::StatusCode::CREATED {
            bail!("creating {org}: {st} {v}");
        }
        let (st, v) = call(
            client,
            reqwest::Method::POST,
            format!("{base}/v1/orgs/{org}/tokens"),
            admin,
            Some(json!({"name": "soc-viewer", "role": "viewer"})),
        )
        .await?;
        if st != reqwest::StatusCode::CREATED {
            bail!("creating a token of {org}: {st} {v}");
        }
        // Connectors bind `{org}-key`; bindings must name an existing credential.
        let (st, v) = call(
            client,
            reqwest::Method::PUT,
            format!("{base}/v1/orgs/{org}/credentials/{org}-key"),
            admin,
            Some(json!({
                "kind": "bearer",
                "token": format!("bench-token-{org}"),
                "hosts": [format!("https://siem-{org}.example.com")]
            })),
        )
        .await?;
        if st != reqwest::StatusCode::CREATED {
            bail!("creating the credential of {org}: {st} {v}");
        }
    }
    let jobs: Vec<(usize, usize)> = (0..o.orgs)
        .flat_map(|org| (0..o.per_org).map(move |i| (org, i)))
        .collect();
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..o.seed_concurrency.max(1) {
        let (client, base, admin) = (client.clone(), base.to_string(), admin.to_string());
        let (jobs, next, done) = (jobs.clone(), next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(org, i)) = jobs.get(n) else {
                    return Ok::<_, anyhow::Error>(());
                };
                let org = org_id(org);
                let (st, v) = call(
                    &client,
                    reqwest::Method::POST,
                    format!("{base}/v1/orgs/{org}/connectors"),
                    &admin,
                    Some(connector_body(&org, i)),
                )
                .await?;
                if st != reqwest::StatusCode::CREATED {
                    bail!("creating connector {i} of {org}: {st} {v}");
                }
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % 1000 == 0 {
                    eprintln!("list_load: seeded {d}/{}", jobs.len());
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(Seeded {
        elapsed: started.elapsed(),
        connectors: jobs.len(),
    })
}

/// Checks that the listing answers what was seeded; returns the response sizes of a default
/// page and of a whole org.
async fn check_listing(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    o: &Opts,
) -> Result<(usize, usize)> {
    let org = org_id(o.orgs / 2);
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/orgs/{org}/connectors?limit=37");
        if let Some(c) = &cursor {
            url.push_str(&format!(
                "&cursor={}",
                percent_encoding::utf8_percent_encode(c, percent_encoding::NON_ALPHANUMERIC)
            ));
        }
        let (st, v) = call(client, reqwest::Method::GET, url, admin, None).await?;
        if st != reqwest::StatusCode::OK {
            bail!("listing {org}: {st} {v}");
        }
        seen += v["items"].as_array().map_or(0, Vec::len);
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    if seen != o.per_org {
        bail!(
            "{org} lists {seen} connectors over its pages, {} seeded",
            o.per_org
        );
    }
    let size = |url: String| {
        let client = client.clone();
        let admin = admin.to_string();
        async move {
            let r = client.get(url).bearer_auth(admin).send().await?;
            anyhow::Ok(r.bytes().await?.len())
        }
    };
    let page = size(format!("{base}/v1/orgs/{org}/connectors")).await?;
    let whole = size(format!(
        "{base}/v1/orgs/{org}/connectors?limit={}",
        o.per_org.min(500)
    ))
    .await?;
    Ok((page, whole))
}

/// What a REST list item holds, as GraphQL fields.
const GQL_FIELDS: &str = "id org name pluginId pluginVersion config \
    credentials { slot credential } grants schedule enabled status \
    health { state reasons since } revision createdAt createdBy updatedAt updatedBy";

/// A GraphQL variant of the list: page size (`None`: the default page) and whether each
/// connector also resolves its nested `plugin` (the catalogue view).
#[derive(Debug, Clone, Copy)]
struct GqlVariant {
    first: Option<usize>,
    nested_plugin: bool,
}

impl GqlVariant {
    fn label(&self) -> String {
        let page = match self.first {
            None => "default page: 50".to_string(),
            Some(n) => format!("first: {n}, whole org"),
        };
        let nested = if self.nested_plugin {
            " + nested `plugin { id version category }`"
        } else {
            ""
        };
        format!("GraphQL `connectors(org:)` ({page}{nested})")
    }

    fn query(&self, org: &str) -> String {
        let first = self
            .first
            .map(|n| format!(", first: {n}"))
            .unwrap_or_default();
        let plugin = if self.nested_plugin {
            " plugin { id version category }"
        } else {
            ""
        };
        format!(
            "{{ connectors(org: \"{org}\"{first}) {{ edges {{ cursor node {{ {GQL_FIELDS}{plugin} }} }} \
             pageInfo {{ hasNextPage endCursor }} }} }}"
        )
    }
}

/// Whether the server answers `POST /graphql`; when it does, every variant must list the
/// seeded connectors without errors (oha counts a 200 with `errors` as a success).
async fn graphql_available(
    client: &reqwest::Client,
    base: &str,
    admin: &str,
    variants: &[GqlVariant],
    o: &Opts,
) -> Result<bool> {
    let org = org_id(0);
    for v in variants {
        let (st, doc) = call(
            client,
            reqwest::Method::POST,
            format!("{base}/graphql"),
            admin,
            Some(json!({ "query": v.query(&org) })),
        )
        .await?;
        if st == reqwest::StatusCode::NOT_FOUND || st == reqwest::StatusCode::METHOD_NOT_ALLOWED {
            return Ok(false);
        }
        if !st.is_success() || doc.get("errors").is_some_and(|e| !e.is_null()) {
            bail!("the GraphQL query {} failed: {st} {doc}", v.query(&org));
        }
        let n = doc["data"]["connectors"]["edges"]
            .as_array()
            .map_or(0, Vec::len);
        let want = v.first.unwrap_or(50).min(o.per_org);
        if n != want {
            bail!(
                "the GraphQL query {} listed {n} connectors, not {want}",
                v.query(&org)
            );
        }
    }
    Ok(true)
}

// ----- main ---------------------------------------------------------------------------------

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn fmt_row(r: &LoadResult) -> String {
    format!(
        "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.0} B | {:.2} ms | {:.2} ms |",
        r.phase,
        r.label,
        r.requests,
        r.rps,
        r.p50,
        r.p90,
        r.p99,
        r.p999,
        r.max,
        r.non_2xx + r.errors,
        r.bytes_per_response,
        r.server_cpu_ms,
        r.tool_cpu_ms
    )
}

/// Everything the report needs besides the load results.
struct Figures {
    oha_version: String,
    load_start: String,
    load_end: String,
    load_during: Vec<f64>,
    seeded: Seeded,
    page_bytes: usize,
    whole_bytes: usize,
    store_seeded: (u64, u64),
    store_end: u64,
    data_seeded: u64,
    startup: Duration,
    restart: Option<Duration>,
    /// (when, memory)
    mem: Vec<(&'static str, Mem)>,
    graphql: bool,
    /// Bundled plugins the server installed (ids).
    plugins: Vec<String>,
}

/// The requests of each run: (label, oha arguments naming them). The rate and duration
/// flags are added per run.
fn targets(
    o: &Opts,
    base: &str,
    auth: &str,
    gql: &[GqlVariant],
    work: &Path,
) -> Result<Vec<(String, Vec<String>)>> {
    let whole = o.per_org.min(500);
    let mut targets = Vec::new();
    if o.only != "graphql" {
        // oha's `--rand-regex-url` draws each URL from a regex: a uniformly random org per
        // request.
        let orgs = org_regex(o.orgs);
        for (label, query) in [
            ("default page: 50".to_string(), String::new()),
            (
                format!("limit={whole}, whole org"),
                format!("\\?limit={whole}"),
            ),
        ] {
            targets.push((
                format!("REST `GET /v1/orgs/{{org}}/connectors` ({label})"),
                vec![
                    "-H".into(),
                    auth.to_string(),
                    "--rand-regex-url".into(),
                    format!("{}/v1/orgs/{orgs}/connectors{query}", regex_escape(base)),
                ],
            ));
        }
    }
    for (k, v) in gql.iter().enumerate() {
        // One request body per org, one per line: oha's `-Z` sends them in turn.
        let bodies = work.join(format!("graphql-{k}.jsonl"));
        let mut lines = String::new();
        for i in 0..o.orgs {
            lines.push_str(&serde_json::to_string(
                &json!({ "query": v.query(&org_id(i)) }),
            )?);
            lines.push('\n');
        }
        std::fs::write(&bodies, lines)?;
        targets.push((
            v.label(),
            vec![
                "-m".into(),
                "POST".into(),
                "-H".into(),
                auth.to_string(),
                "-T".into(),
                "application/json".into(),
                "-Z".into(),
                bodies.display().to_string(),
                format!("{base}/graphql"),
            ],
        ));
    }
    Ok(targets)
}

/// Each target: a warm-up (not reported), the fixed-rate run, the full-speed run.
fn run_targets(
    o: &Opts,
    oha_bin: &Path,
    phase: &str,
    targets: &[(String, Vec<String>)],
    pid: u32,
    load_during: &mut Vec<f64>,
) -> Result<Vec<LoadResult>> {
    let rate = o.rate.to_string();
    let mut results = Vec::new();
    for (label, request) in targets {
        let run = |extra: &[String]| {
            let mut a: Vec<String> = vec!["-w".into(), "-c".into(), o.connections.to_string()];
            a.extend(extra.iter().cloned());
            a.extend(request.iter().cloned());
            a
        };
        oha(oha_bin, "warm-up", &run(&["-z".into(), "3s".into()]), pid)?;
        for (name, extra) in [
            (
                format!("{label} @ {rate} req/s"),
                vec![
                    "-z".to_string(),
                    format!("{}s", o.duration),
                    "-q".into(),
                    rate.clone(),
                    "--latency-correction".into(),
                ],
            ),
            (
                format!("{label} @ max"),
                vec!["-z".to_string(), format!("{}s", o.max_duration)],
            ),
        ] {
            let mut r = oha(oha_bin, &name, &run(&extra), pid)?;
            r.phase = phase.to_string();
            load_during.push(load1());
            eprintln!("list_load: {}", fmt_row(&r));
            results.push(r);
        }
    }
    Ok(results)
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let root = workspace_root();
    let plugin_dir = root.join("target/plugins");
    if !plugin_dir.join("rest-generic.wasm").is_file() {
        bail!(
            "{} is missing: run `cargo xtask build-plugins` first (or `cargo xtask bench-list`)",
            plugin_dir.join("rest-generic.wasm").display()
        );
    }
    let oha_bin = find_oha()?;
    let oha_version = Command::new(&oha_bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();

    let work = root
        .join("target/bench-list")
        .join(format!("run-{}", std::process::id()));
    let data_dir = work.join("data");
    std::fs::create_dir_all(&work)?;
    let admin = format!("bench-admin-{:016x}", std::process::id() as u64 * 7919);
    let load_start = loadavg();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    let port = free_port()?;
    let mut server = Server::start(
        &o,
        &data_dir,
        &plugin_dir,
        &admin,
        port,
        work.join("server.log"),
    )?;
    let startup = rt.block_on(server.wait_ready(&client))?;
    let mut mems = vec![(
        "started, empty (bundled plugins loaded)",
        mem(server.pid())?,
    )];
    eprintln!(
        "list_load: server pid {} ready in {:.1} s at {}; seeding {} orgs x {} connectors",
        server.pid(),
        startup.as_secs_f64(),
        server.base,
        o.orgs,
        o.per_org
    );
    let seeded = rt.block_on(seed(&client, &server.base, &admin, &o))?;
    eprintln!(
        "list_load: seeded {} connectors in {:.1} s",
        seeded.connectors,
        seeded.elapsed.as_secs_f64()
    );
    let (page_bytes, whole_bytes) =
        rt.block_on(check_listing(&client, &server.base, &admin, &o))?;
    let whole = o.per_org.min(500);
    let gql_variants = [
        GqlVariant {
            first: None,
            nested_plugin: false,
        },
        GqlVariant {
            first: Some(whole),
            nested_plugin: false,
        },
        GqlVariant {
            first: Some(whole),
            nested_plugin: true,
        },
    ];
    let graphql = o.only != "rest"
        && rt.block_on(graphql_available(
            &client,
            &server.base,
            &admin,
            &gql_variants,
            &o,
        ))?;
    if o.only == "graphql" && !graphql {
        bail!("--only graphql, but the server does not answer POST /graphql");
    }
    // Let sled's periodic flush (200 ms) write everything out before measuring disk use.
    std::thread::sleep(Duration::from_secs(2));
    mems.push(("after seeding", mem(server.pid())?));
    let store_seeded = dir_usage(&data_dir.join("store"))?;
    let (data_seeded, _) = dir_usage(&data_dir)?;

    let auth = format!("Authorization: Bearer {admin}");
    let targets = targets(
        &o,
        &server.base,
        &auth,
        if graphql { &gql_variants } else { &[] },
        &work,
    )?;
    let mut results = Vec::new();
    let mut load_during = Vec::new();
    if o.phase != "restarted" {
        let phase = "live (just seeded)";
        results.extend(run_targets(
            &o,
            &oha_bin,
            phase,
            &targets,
            server.pid(),
            &mut load_during,
        )?);
        mems.push(("after the load, live", mem(server.pid())?));
    }
    let mut restart = None;
    if o.phase != "live" {
        server.stop()?;
        server = Server::start(
            &o,
            &data_dir,
            &plugin_dir,
            &admin,
            port,
            work.join("server-restarted.log"),
        )?;
        restart = Some(rt.block_on(server.wait_ready(&client))?);
        mems.push(("restarted on the seeded store", mem(server.pid())?));
        results.extend(run_targets(
            &o,
            &oha_bin,
            "after restart",
            &targets,
            server.pid(),
            &mut load_during,
        )?);
        mems.push(("after the load, restarted", mem(server.pid())?));
    }
    let load_end = loadavg();
    server.stop()?;
    let (store_end, _) = dir_usage(&data_dir.join("store"))?;

    let rep = report(
        &o,
        &root,
        &results,
        &Figures {
            oha_version,
            load_start,
            load_end,
            load_during,
            seeded,
            page_bytes,
            whole_bytes,
            store_seeded,
            store_end,
            data_seeded,
            startup,
            restart,
            mem: mems,
            graphql,
            plugins: bundled_plugins(&plugin_dir),
        },
    )?;
    println!("\n{rep}");
    if let Some(out) = &o.out {
        std::fs::File::create(out)?.write_all(rep.as_bytes())?;
    }
    if !o.keep {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        eprintln!("list_load: kept {}", work.display());
    }
    Ok(())
}

fn report(o: &Opts, root: &Path, results: &[LoadResult], f: &Figures) -> Result<String> {
    use std::fmt::Write as _;
    let mib_bytes = |b: u64| b as f64 / 1048576.0;
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_default();
    let ncpu = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut rep = String::new();
    writeln!(
        rep,
        "Machine: {ncpu} CPU ({cpu}); load average (1/5/15 min) before {}, after {}; \
         1-min load after each run: {}.",
        f.load_start,
        f.load_end,
        f.load_during
            .iter()
            .map(|l| format!("{l:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(rep, "Code: {}.", git_describe(root))?;
    if let Some(bin) = &o.server_bin {
        writeln!(
            rep,
            "Server binary: `{}` (not the one cargo built).",
            bin.display()
        )?;
    }
    if !o.server_env.is_empty() {
        let env: Vec<String> = o
            .server_env
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        writeln!(rep, "Server environment: {}.", env.join(", "))?;
    }
    writeln!(
        rep,
        "Load tool: {}, {} connections; fixed-rate runs {} s at {} req/s with \
         `--latency-correction`, full-speed runs {} s; each after a 3 s warm-up.",
        f.oha_version, o.connections, o.duration, o.rate, o.max_duration
    )?;
    writeln!(
        rep,
        "Data: {} orgs × {} connectors = {} connectors of `rest-generic` (+ {} viewer \
         tokens), seeded through `POST /v1/orgs/{{org}}/connectors` in {:.1} s ({:.0} \
         creates/s, {} concurrent).",
        o.orgs,
        o.per_org,
        f.seeded.connectors,
        o.orgs,
        f.seeded.elapsed.as_secs_f64(),
        f.seeded.connectors as f64 / f.seeded.elapsed.as_secs_f64(),
        o.seed_concurrency
    )?;
    writeln!(
        rep,
        "Bundled plugins installed: {} ({}).",
        f.plugins.len(),
        f.plugins.join(", ")
    )?;
    writeln!(
        rep,
        "Response sizes: REST default page {} B, whole org {} B.",
        f.page_bytes, f.whole_bytes
    )?;
    writeln!(rep)?;
    writeln!(
        rep,
        "| phase | run | requests | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | \
         non-2xx/errors | bytes/resp | server CPU/req | oha CPU/req |"
    )?;
    writeln!(
        rep,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )?;
    for r in results {
        writeln!(rep, "{}", fmt_row(r))?;
    }
    writeln!(rep)?;
    writeln!(rep, "| figure | value |")?;
    writeln!(rep, "| --- | --- |")?;
    writeln!(
        rep,
        "| store on disk (`du` of the sled dir) after seeding | {:.1} MiB ({:.1} MiB apparent) |",
        mib_bytes(f.store_seeded.0),
        mib_bytes(f.store_seeded.1)
    )?;
    writeln!(
        rep,
        "| store on disk at the end (after the load and shutdown) | {:.1} MiB |",
        mib_bytes(f.store_end)
    )?;
    writeln!(
        rep,
        "| whole data dir after seeding (store + precompiled components) | {:.1} MiB |",
        mib_bytes(f.data_seeded)
    )?;
    for (when, m) in &f.mem {
        writeln!(
            rep,
            "| server RSS, {when} | {:.1} MiB (anon {:.1}, file {:.1}; peak VmHWM {:.1}) |",
            mib(m.rss),
            mib(m.anon),
            mib(m.file),
            mib(m.hwm)
        )?;
    }
    writeln!(
        rep,
        "| server start to ready: empty store | {:.2} s |",
        f.startup.as_secs_f64()
    )?;
    if let Some(r) = f.restart {
        writeln!(
            rep,
            "| server start to ready: seeded store | {:.2} s |",
            r.as_secs_f64()
        )?;
    }
    if !f.graphql && o.only != "rest" {
        writeln!(rep)?;
        writeln!(
            rep,
            "GraphQL: the server does not answer `POST /graphql` yet; not measured."
        )?;
    }
    Ok(rep)
}

/// `s` with the regex metacharacters escaped for oha's `--rand-regex-url`, which already
/// takes `.` literally (an escaped dot would turn into a backslash and a random character).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A regex matching exactly the ids of `n` orgs (org-000, org-001, ...), each equally likely.
fn org_regex(n: usize) -> String {
    // A character class per digit when `n` is a multiple of 100 (or of 10 below 100);
    // otherwise an alternation of every id.
    if n.is_multiple_of(100) && n <= 1000 {
        format!("org-[0-{}][0-9][0-9]", n / 100 - 1)
    } else if n.is_multiple_of(10) && n <= 100 {
        format!("org-0[0-{}][0-9]", n / 10 - 1)
    } else {
        let ids: Vec<String> = (0..n).map(org_id).collect();
        format!("org-({})", ids.join("|").replace("org-", ""))
    }
}

/// Ids of the bundled plugins in `dir` (`<id>.wasm`).
fn bundled_plugins(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The commit measured, and whether the work tree differed from it.
fn git_describe(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "host",
    ])
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("commit {head} with uncommitted changes under host/")
    } else {
        format!("commit {head}")
    }
}
