//! Ingestion load benchmark (issue 4): `cargo bench -p portcullis --bench ingest_load`.
//!
//! The real `portcullis serve` process polls N enabled `rest-generic` connectors (default
//! 1,000) against one loopback `PagedApi` simulator whose dataset keeps growing (a producer
//! appends records at a fixed rate; every connector ingests every record into its own
//! event stream), in two phases on one data directory:
//!
//! 1. every connector on `PT1M` (after a restart, so the first polls are the scheduler's
//!    startup spread, not the creation order);
//! 2. the same connectors on a faster schedule (`[ingest] schedule_scale`, default 1/60:
//!    every second), then N_disable connectors disabled one at a time.
//!
//! Measured: events/s end to end into the sled event store (from the store's ingestion
//! index, read after the server stopped: every stored event carries its ingestion time in
//! µs), server CPU (utime+stime from `/proc/<pid>/stat`) and RSS (VmRSS sampled every
//! second, VmHWM), polls per second over the first minute (jitter), and for every disable:
//! the call's duration and the time from the request to the connector's last stored event
//! (and whether any event was stored after the call returned — must be none).
//!
//! Options (`-- --name value`): `--connectors 1000`, `--pt1m-secs 150`, `--fast-secs 60`,
//! `--fast-scale 0.016667`, `--rate 2` (records/s during phase 1), `--fast-rate 5`,
//! `--disables 100`.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use portcullis::store::{KvStore, SledStore};

use portcullis_e2e::simulators::{PagedApi, PagedApiConfig};
use serde_json::{Value, json};

const ADMIN: &str = "bench-admin-token-0123456789";
const ORG: &str = "bench";

struct Opts {
    connectors: usize,
    pt1m_secs: u64,
    fast_secs: u64,
    fast_scale: f64,
    rate: u64,
    fast_rate: u64,
    disables: usize,
}

fn parse_args() -> Result<Opts> {
    let mut o = Opts {
        connectors: 1000,
        pt1m_secs: 150,
        fast_secs: 60,
        fast_scale: 1.0 / 60.0,
        rate: 2,
        fast_rate: 5,
        disables: 100,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = || -> Result<&String> { args.get(i + 1).context("missing value") };
        match args[i].as_str() {
            "--connectors" => o.connectors = v()?.parse()?,
            "--pt1m-secs" => o.pt1m_secs = v()?.parse()?,
            "--fast-secs" => o.fast_secs = v()?.parse()?,
            "--fast-scale" => o.fast_scale = v()?.parse()?,
            "--rate" => o.rate = v()?.parse()?,
            "--fast-rate" => o.fast_rate = v()?.parse()?,
            "--disables" => o.disables = v()?.parse()?,
            // `cargo bench` passes `--bench`.
            "--bench" => {
                i += 1;
                continue;
            }
            other => bail!("unknown option {other}"),
        }
        i += 2;
    }
    Ok(o)
}

struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    fn start(dir: &Path, port: u16, scale: f64) -> Result<Server> {
        let cfg = format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\nplugin_dir = {:?}\nallow_private_networks = true\n\n[ingest]\nschedule_scale = {scale}\n",
            dir.join("data"),
            dir.join("plugins"),
        );
        let file = dir.join("portcullis.toml");
        std::fs::write(&file, cfg)?;
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("serve")
            .arg("--config")
            .arg(&file)
            .env("PORTCULLIS_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) -> Result<()> {
        for _ in 0..2400 {
            if let Some(s) = self.child.try_wait()? {
                bail!("server exited: {s}");
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("server not ready")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) -> Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("server did not stop within 60 s of SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // utime, stime are fields 14 and 15; f[0] is field 3.
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

async fn post(client: &reqwest::Client, url: String, body: Option<Value>) -> Result<Value> {
    let mut req = client.post(url).bearer_auth(ADMIN);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await?;
    let status = r.status();
    let bytes = r.bytes().await?;
    if !status.is_success() {
        bail!("{status}: {}", String::from_utf8_lossy(&bytes));
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// What one phase measured while the server ran.
struct Phase {
    label: String,
    start_us: u64,
    end_us: u64,
    cpu_secs: f64,
    rss_max_kib: u64,
    hwm_kib: u64,
    polls_per_sec_first_min: Vec<usize>,
}

async fn run_phase(label: &str, server: &Server, api: &PagedApi, secs: u64) -> Result<Phase> {
    let pid = server.pid();
    let start_us = now_us();
    let cpu0 = cpu_ticks(pid);
    let mut rss_max = 0;
    let mut per_sec = Vec::new();
    let mut last = api.log().requests_to("/alerts").len();
    for s in 0..secs {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_max = rss_max.max(rss_kib(pid, "VmRSS:"));
        if s < 60 {
            let n = api.log().requests_to("/alerts").len();
            per_sec.push(n - last);
            last = n;
        } else if s == 60 {
            api.log().clear();
        }
    }
    let cpu = (cpu_ticks(pid) - cpu0) as f64 / clk_tck();
    Ok(Phase {
        label: label.to_string(),
        start_us,
        end_us: now_us(),
        cpu_secs: cpu,
        rss_max_kib: rss_max,
        hwm_kib: rss_kib(pid, "VmHWM:"),
        polls_per_sec_first_min: per_sec,
    })
}

/// Ingestion time (µs) and connector of every stored event, from the event store's
/// ingestion index (`evage/{seq} → "{bytes} ev/{org}/{time}/{connector}/{id}"`).
fn stored_events(dir: &Path) -> Result<Vec<(u64, String)>> {
    let store = SledStore::open(&dir.join("data").join("store"))?;
    let mut out = Vec::new();
    for (k, v) in store.scan_prefix("evage/")? {
        let seq: u64 = k.trim_start_matches("evage/").parse()?;
        let v = String::from_utf8_lossy(&v).into_owned();
        let connector = v
            .split_once(' ')
            .map(|(_, pk)| pk)
            .and_then(|pk| pk.split('/').nth(3))
            .unwrap_or("")
            .to_string();
        out.push((seq, connector));
    }
    Ok(out)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(p: &Phase, events: &[(u64, String)], skip_secs: u64) {
    let from = p.start_us + skip_secs * 1_000_000;
    let in_window = events
        .iter()
        .filter(|(t, _)| *t >= from && *t < p.end_us)
        .count();
    let secs = (p.end_us.saturating_sub(from)) as f64 / 1e6;
    let wall = (p.end_us - p.start_us) as f64 / 1e6;
    println!("## {}", p.label);
    println!(
        "events/s into the store (steady state, after the first {skip_secs} s): {:.0} ({} events in {:.0} s)",
        in_window as f64 / secs,
        in_window,
        secs
    );
    println!(
        "server CPU: {:.1} s over {:.0} s = {:.2} cores; RSS max {:.0} MiB, VmHWM {:.0} MiB",
        p.cpu_secs,
        wall,
        p.cpu_secs / wall,
        p.rss_max_kib as f64 / 1024.0,
        p.hwm_kib as f64 / 1024.0
    );
    let ps = &p.polls_per_sec_first_min;
    if !ps.is_empty() {
        let max = ps.iter().max().copied().unwrap_or(0);
        let total: usize = ps.iter().sum();
        println!(
            "polls in the first minute: {total}, max {max} in one second (mean {:.1}/s)",
            total as f64 / ps.len() as f64
        );
    }
}

fn main() -> Result<()> {
    let o = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(run(o))
}

async fn run(o: Opts) -> Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("portcullis-ingest-bench-")
        .tempdir()?;
    let dir = tmp.path().to_path_buf();
    std::fs::create_dir_all(dir.join("plugins"))?;
    std::fs::copy(
        portcullis_e2e::artifacts::REST_GENERIC,
        dir.join("plugins").join("rest-generic.wasm"),
    )?;
    let api = Arc::new(PagedApi::start(PagedApiConfig {
        records: Vec::new(),
        ..PagedApiConfig::default()
    })?);
    let base = api.base_url();
    let rate = Arc::new(AtomicU64::new(o.rate));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (api, rate, stop) = (api.clone(), rate.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut owed = 0.0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                owed += rate.load(Ordering::Relaxed) as f64 / 10.0;
                let n = owed.floor() as usize;
                owed -= n as f64;
                if n > 0 {
                    api.append_generated(n);
                }
            }
        })
    };
    let client = reqwest::Client::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();

    // Seed: the org and N enabled PT1M connectors.
    let mut server = Server::start(&dir, port, 1.0)?;
    server.wait_ready(&client).await?;
    post(
        &client,
        format!("{}/v1/orgs", server.base),
        Some(json!({"id": ORG, "name": "Bench"})),
    )
    .await?;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(o.connectors);
    for i in 0..o.connectors {
        let body = json!({
            "name": format!("feed {i}"),
            "plugin": "rest-generic",
            "config": {
                "base_url": base, "path": "/alerts", "records": "", "id": "/id",
                "time": "/created_at", "title": "/title",
                "pagination": {"type": "link-header"}, "page_size": 100,
                "page_size_param": "per_page", "kind": "alert",
                "observables": [{"kind": "ip", "pointer": "/src_ip"}],
                "window": {"param": "since", "initial": "2023-12-01T00:00:00Z"}
            },
            "grants": [base],
            "schedule": "PT1M",
            "enabled": true,
        });
        let rec = post(
            &client,
            format!("{}/v1/orgs/{ORG}/connectors", server.base),
            Some(body),
        )
        .await?;
        ids.push(rec["id"].as_str().context("connector id")?.to_string());
    }
    println!(
        "# ingest_load: {} connectors created in {:.1} s",
        o.connectors,
        started.elapsed().as_secs_f64()
    );
    server.stop()?;

    // Phase 1: PT1M after a restart.
    api.log().clear();
    let mut server = Server::start(&dir, port, 1.0)?;
    server.wait_ready(&client).await?;
    let p1 = run_phase(
        &format!("{} connectors on PT1M", o.connectors),
        &server,
        &api,
        o.pt1m_secs,
    )
    .await?;
    server.stop()?;

    // Phase 2: the faster schedule, then disables.
    rate.store(o.fast_rate, Ordering::Relaxed);
    api.log().clear();
    let mut server = Server::start(&dir, port, o.fast_scale)?;
    server.wait_ready(&client).await?;
    let p2 = run_phase(
        &format!(
            "{} connectors on PT1M × {:.4} = every {:.1} s",
            o.connectors,
            o.fast_scale,
            60.0 * o.fast_scale
        ),
        &server,
        &api,
        o.fast_secs,
    )
    .await?;
    let mut disables = Vec::new();
    for id in ids.iter().take(o.disables) {
        let t0 = now_us();
        post(
            &client,
            format!("{}/v1/orgs/{ORG}/connectors/{id}/disable", server.base),
            None,
        )
        .await?;
        let t1 = now_us();
        disables.push((id.clone(), t0, t1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop()?;
    stop.store(true, Ordering::Relaxed);
    producer.join().ok();

    let events = stored_events(&dir)?;
    println!(
        "# {} events stored, {} records served",
        events.len(),
        api.records().len()
    );
    report(&p1, &events, 60);
    report(&p2, &events, 10);

    let mut last: HashMap<&str, u64> = HashMap::new();
    for (t, c) in &events {
        let e = last.entry(c.as_str()).or_default();
        *e = (*e).max(*t);
    }
    let mut call_ms = Vec::new();
    let mut silence_ms = Vec::new();
    let mut after_return = 0;
    for (id, t0, t1) in &disables {
        call_ms.push((t1 - t0) as f64 / 1000.0);
        let l = last.get(id.as_str()).copied().unwrap_or(0);
        silence_ms.push(l.saturating_sub(*t0) as f64 / 1000.0);
        if l > *t1 {
            after_return += 1;
        }
    }
    call_ms.sort_by(f64::total_cmp);
    silence_ms.sort_by(f64::total_cmp);
    println!(
        "## disable ({} connectors, under the phase-2 load)",
        disables.len()
    );
    println!(
        "disable call: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&call_ms, 0.5),
        pct(&call_ms, 0.99),
        call_ms.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "request → last stored event of the connector: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; events stored after the call returned: {after_return}",
        pct(&silence_ms, 0.5),
        pct(&silence_ms, 0.99),
        silence_ms.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
