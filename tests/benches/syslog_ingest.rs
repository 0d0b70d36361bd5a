//! Syslog ingestion end to end: RFC 5424 messages carrying CEF over TCP (octet counting)
//! into the real host's syslog receiver, through the `cef-leef` plugin's `normalize` in
//! the sandbox, dedup and the delivery pipeline, into the embedded sled event store.
//!
//! The host runs in this process (as `portcullis serve` does: `server::start`), with one
//! enabled `cef-leef` connector and a TCP listener routing to it. `--clients` connections
//! each send `--messages / --clients` distinct messages as fast as the receiver reads
//! them (TCP backpressure paces them); the clock stops when the event store holds every
//! event. Prints events/s, CPU seconds (user+system of the whole process, senders
//! included) and peak RSS.
//!
//! `cargo bench -p portcullis-e2e --bench syslog_ingest -- [--messages N] [--clients C]
//! [--batch B]`. Figures go in BENCHMARKS.md.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use portcullis::server::{ServerConfig, start};
use portcullis_e2e::artifacts::CEF_LEEF;
use serde_json::json;
use tokio::io::AsyncWriteExt;

const ADMIN: &str = "bench-admin-token";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `(user + system CPU seconds, peak RSS MiB)` of this process.
fn usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the `)`.
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    (cpu, hwm / 1024.0)
}

fn message(n: usize) -> String {
    let cef = format!(
        "CEF:0|Acme|Firewall|4.2|100|Blocked connection|5|rt=1739145600000 src=10.{}.{}.{} spt={} dst=192.0.2.10 dpt=443 proto=TCP act=blocked suser=user{} cs1Label=rule cs1=deny-inbound-{} msg=connection blocked by policy",
        (n >> 16) & 255,
        (n >> 8) & 255,
        n & 255,
        1024 + n % 60000,
        n % 500,
        n % 40
    );
    let m = format!(
        "<134>1 2025-02-10T00:{:02}:{:02}.{:03}Z fw-{:02}.corp.example CEF - ID{} [origin@32473 ip=\"10.0.0.{}\"] {cef}",
        (n / 60) % 60,
        n % 60,
        n % 1000,
        n % 16,
        n % 100,
        n % 250 + 1
    );
    format!("{} {m}", m.len())
}

fn main() {
    let total = arg("--messages", 100_000);
    let clients = arg("--clients", 8).max(1);
    let batch = arg("--batch", 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(total, clients, batch));
}

async fn run(total: usize, clients: usize, batch: usize) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("bundled");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(CEF_LEEF, plugins.join("cef-leef.wasm")).unwrap();
    let config = ServerConfig {
        data_dir: dir.path().join("data"),
        plugin_dir: plugins,
        ..ServerConfig::default()
    };
    let state = start(&config, Some(ADMIN)).await.unwrap().state;
    let svc = state.service();
    let admin = svc.authenticate(ADMIN).unwrap();
    svc.create_org(&admin, "bench", "Bench").await.unwrap();
    let input: portcullis::management::ConnectorInput = serde_json::from_value(json!({
        "name": "firewalls", "plugin": "cef-leef", "config": {}, "enabled": true
    }))
    .unwrap();
    let rec = svc.create_connector(&admin, "bench", input).await.unwrap();
    let ingest = state.ingest().unwrap();
    let cfg: portcullis::ingest::syslog::config::SyslogConfig = toml::from_str(&format!(
        "batch_max = {batch}\n[[listeners]]\nbind = \"127.0.0.1:0\"\nprotocol = \"tcp\"\nconnector = \"bench/{}\"\n",
        rec.id
    ))
    .unwrap();
    let receiver = portcullis::ingest::syslog::start(&cfg, &ingest.push)
        .await
        .unwrap();
    let addr = receiver.listeners()[0].addr;
    let es = ingest.pipeline.event_store().clone();
    let before = es.stats().events;

    let per = total / clients;
    let total = per * clients;
    let payloads: Vec<Vec<u8>> = (0..clients)
        .map(|c| {
            (c * per..(c + 1) * per)
                .map(message)
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    let bytes: usize = payloads.iter().map(Vec::len).sum();
    let (cpu0, _) = usage();
    let started = Instant::now();
    let mut senders = Vec::new();
    for p in payloads {
        senders.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            for chunk in p.chunks(64 * 1024) {
                s.write_all(chunk).await.unwrap();
            }
            s.shutdown().await.unwrap();
        }));
    }
    for s in senders {
        s.await.unwrap();
    }
    let sent = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while es.stats().events - before < total as u64 {
        assert!(
            Instant::now() < deadline,
            "timed out: {:?}",
            receiver.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let (cpu1, rss) = usage();
    let stats = receiver.stats();
    assert_eq!(stats.malformed, 0);
    println!(
        "syslog_ingest: {total} messages ({:.1} MiB) over {clients} TCP connections, normalize batches of up to {batch}",
        bytes as f64 / 1048576.0
    );
    println!("  all sent after        {:.2} s", sent.as_secs_f64());
    println!("  all stored after      {:.2} s", elapsed.as_secs_f64());
    println!(
        "  events/s end to end   {:.0}",
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  CPU (user+sys)        {:.2} s ({:.0} % of one core)",
        cpu1 - cpu0,
        (cpu1 - cpu0) / elapsed.as_secs_f64() * 100.0
    );
    println!("  peak RSS              {rss:.0} MiB");
    println!("  receiver              {stats:?}");
    println!(
        "  store size on disk    {:.1} MiB",
        svc.store().size_on_disk().unwrap_or(0) as f64 / 1048576.0
    );
}
