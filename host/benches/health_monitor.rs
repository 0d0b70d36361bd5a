//! Cost of health monitoring at scale (issue 4, "Health" and "Metrics"): what the
//! monitor adds to every poll and what `/metrics` costs with many connectors.
//!
//! For `--connectors` (default 1,000) registered connectors of 10 orgs:
//! 1. `observe` of a successful poll (with one upstream response carrying rate-limit
//!    headers), round-robin over the connectors, single thread: ns per call;
//! 2. the same from 2 threads at once (the scheduler's workers): calls/s;
//! 3. `hold_until` (asked before every poll): ns per call;
//! 4. `tick` (the worker's once-a-second pass over every connector): ms per pass;
//! 5. `render_prometheus` of every connector, and of one org: ms and bytes.
//!
//! `cargo bench -p portcullis --bench health_monitor [-- --connectors N]`. Prints one
//! line per figure; nothing is asserted (figures go to BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis::health::{HealthMonitor, Observation, UpstreamResponse};

fn args() -> usize {
    let mut it = std::env::args().skip(1);
    let mut n = 1_000;
    while let Some(a) = it.next() {
        if a == "--connectors"
            && let Some(v) = it.next().and_then(|v| v.parse().ok())
        {
            n = v;
        }
    }
    n
}

fn obs(i: usize) -> Observation {
    let mut r = UpstreamResponse::status(200, Instant::now());
    r.rate_limit_limit = Some(5_000);
    r.rate_limit_remaining = Some(4_000);
    r.rate_limit_reset = Some(Duration::from_secs(60));
    Observation::PollSucceeded {
        events: (i % 7) as u64,
        duplicates: (i % 3) as u64,
        latency: Duration::from_micros(500 + (i % 1000) as u64),
        upstream: vec![r],
    }
}

fn main() {
    let n = args();
    let m = Arc::new(HealthMonitor::default());
    let keys: Vec<(String, String)> = (0..n)
        .map(|i| (format!("org-{}", i % 10), format!("con_{i:08}")))
        .collect();
    for (o, c) in &keys {
        m.register(o, c, "rest-generic", true, None);
    }
    // Warm up: every connector has history, windows and a latency reservoir.
    for i in 0..(n * 20) {
        let (o, c) = &keys[i % n];
        m.observe(o, c, obs(i));
    }
    m.take_events();

    let calls = 2_000_000usize.max(n * 100);
    let started = Instant::now();
    for i in 0..calls {
        let (o, c) = &keys[i % n];
        m.observe(o, c, obs(i));
    }
    let per = started.elapsed().as_nanos() as f64 / calls as f64;
    println!("observe (1 thread, {n} connectors): {per:.0} ns/call");

    let threads = 2;
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (m, keys) = (&m, &keys);
            s.spawn(move || {
                for i in 0..calls / threads {
                    let (o, c) = &keys[(i * threads + t) % n];
                    m.observe(o, c, obs(i));
                }
            });
        }
    });
    let rate = calls as f64 / started.elapsed().as_secs_f64();
    println!("observe ({threads} threads): {rate:.0} calls/s");

    let started = Instant::now();
    for i in 0..calls {
        let (o, c) = &keys[i % n];
        black_box(m.hold_until(o, c));
    }
    let per = started.elapsed().as_nanos() as f64 / calls as f64;
    println!("hold_until: {per:.0} ns/call");

    let passes = 50;
    let started = Instant::now();
    for _ in 0..passes {
        m.tick();
    }
    let per = started.elapsed().as_secs_f64() * 1000.0 / passes as f64;
    println!("tick over {n} connectors: {per:.2} ms/pass");

    let renders = 20;
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..renders {
        bytes = black_box(m.render_prometheus(None)).len();
    }
    let per = started.elapsed().as_secs_f64() * 1000.0 / renders as f64;
    println!("render_prometheus, {n} connectors: {per:.2} ms, {bytes} bytes");
    let started = Instant::now();
    for _ in 0..renders {
        bytes = black_box(m.render_prometheus(Some("org-3"))).len();
    }
    let per = started.elapsed().as_secs_f64() * 1000.0 / renders as f64;
    println!(
        "render_prometheus, one org of {}: {per:.2} ms, {bytes} bytes",
        n / 10
    );
}
