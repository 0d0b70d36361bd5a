//! Runtime benchmarks: each Portcullis operation measured next to bare wasmtime (or a
//! direct reqwest call) doing the same thing on the same component in the same run.
//!
//! Run with `cargo bench -p portcullis-e2e --bench runtime`; results go in BENCHMARKS.md.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::broker::credentials::NoCredentials;
use portcullis::broker::host_pattern::HostPattern;
use portcullis::broker::ip_policy::IpPolicy;
use portcullis::broker::{BrokerConfig, EgressContext, Method, OutboundRequest, RequestBudget};
use portcullis::capability_granter::CapabilityGranter;
use portcullis::manifest::{Category, Manifest};
use portcullis::runtime::bindings::latest as wit;
use portcullis::runtime::component_cache::ComponentCache;
use portcullis::{ConnectorEnv, Runtime, RuntimeConfig};
use portcullis_e2e::artifacts::NOOP;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// Host state of the bare-wasmtime baseline: WASI with an empty context and trivial
/// implementations of the Portcullis imports.
struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

use wit::portcullis::connector::{clock, http, log, state, types};
impl types::Host for Bare {}
impl http::Host for Bare {
    async fn send(
        &mut self,
        _req: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        Ok(Err(http::HttpError::Denied("bare".into())))
    }
}
impl log::Host for Bare {
    fn log(&mut self, _: log::Level, _: String, _: Vec<(String, String)>) -> wasmtime::Result<()> {
        Ok(())
    }
}
static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
impl clock::Host for Bare {
    fn now(&mut self) -> wasmtime::Result<String> {
        Ok(String::new())
    }
    fn now_unix_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(0)
    }
    fn monotonic_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64)
    }
}
impl state::Host for Bare {
    fn get(&mut self, _: String) -> wasmtime::Result<Option<Vec<u8>>> {
        Ok(None)
    }
    fn set(&mut self, _: String, _: Vec<u8>) -> wasmtime::Result<Result<(), String>> {
        Ok(Ok(()))
    }
    fn delete(&mut self, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

fn bare_engine() -> Engine {
    let mut cfg = wasmtime::Config::new();
    cfg.wasm_component_model(true);
    cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(
        wasmtime::PoolingAllocationConfig::default(),
    ));
    Engine::new(&cfg).unwrap()
}

fn bare_store(engine: &Engine) -> Store<Bare> {
    Store::new(
        engine,
        Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    )
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = std::fs::read(NOOP).unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache_dir.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    eprintln!("portcullis pooling allocator: {}", runtime.is_pooling());
    let plugin = rt.block_on(runtime.load(&bytes)).unwrap();
    let sandbox = plugin.bind(ConnectorEnv::isolated("bench")).unwrap();
    let config = serde_json::json!({});

    // Bare wasmtime on the same component.
    let engine = bare_engine();
    let component = Component::new(&engine, &bytes).unwrap();
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    wit::Connector::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    let pre = wit::ConnectorPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();

    // 1. Load from the precompiled cache.
    {
        let cache = ComponentCache::open(cache_dir.path(), runtime.engine()).unwrap();
        let sha = plugin.info().sha256.clone();
        cache
            .load_or_compile(runtime.engine(), &bytes, &sha)
            .unwrap();
        let artifact_path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            artifact_path.path(),
            engine.precompile_component(&bytes).unwrap(),
        )
        .unwrap();
        let mut g = c.benchmark_group("load_cached");
        g.bench_function("portcullis", |b| {
            b.iter(|| cache.load(runtime.engine(), &sha).unwrap())
        });
        g.bench_function("bare_wasmtime", |b| {
            b.iter(|| {
                let art = std::fs::read(artifact_path.path()).unwrap();
                // SAFETY: the artifact was produced by `engine.precompile_component` above.
                #[allow(unsafe_code)]
                unsafe {
                    Component::deserialize(&engine, &art).unwrap()
                }
            })
        });
        g.finish();
    }

    // 2. Instantiate (pooled, InstancePre).
    {
        let mut g = c.benchmark_group("instantiate");
        g.bench_function("portcullis", |b| {
            b.to_async(&rt)
                .iter(|| async { sandbox.instantiate_only().await.unwrap() })
        });
        g.bench_function("bare_wasmtime", |b| {
            b.to_async(&rt).iter(|| async {
                let mut store = bare_store(&engine);
                pre.instantiate_async(&mut store).await.unwrap();
            })
        });
        g.finish();
    }

    // 3. Instantiate + a no-op export call (`poll` returning an empty batch).
    {
        let mut g = c.benchmark_group("instantiate_and_call_noop");
        g.bench_function("portcullis", |b| {
            b.to_async(&rt)
                .iter(|| async { sandbox.poll(&config, None).await.unwrap() })
        });
        g.bench_function("bare_wasmtime", |b| {
            b.to_async(&rt).iter(|| async {
                let mut store = bare_store(&engine);
                let inst = pre.instantiate_async(&mut store).await.unwrap();
                inst.portcullis_connector_plugin()
                    .call_poll(&mut store, "{}", None)
                    .await
                    .unwrap()
                    .unwrap()
            })
        });
        g.finish();
    }

    // 4. One guest→host import call (clock.monotonic-ms), amortised over N calls made
    //    inside one export call, minus the same export call with N = 0.
    {
        let mut g = c.benchmark_group("host_import_call");
        g.bench_function("portcullis", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let sandbox = sandbox.clone();
                let config = config.clone();
                async move {
                    let zero = ["0".to_string()];
                    let n = [iters.to_string()];
                    let t0 = Instant::now();
                    sandbox.normalize(&config, &zero).await;
                    let base = t0.elapsed();
                    let t1 = Instant::now();
                    let r = sandbox.normalize(&config, &n).await;
                    assert!(r[0].is_ok());
                    t1.elapsed().saturating_sub(base)
                }
            })
        });
        g.bench_function("bare_wasmtime", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let pre = pre.clone();
                let engine = engine.clone();
                async move {
                    let run = |n: String| {
                        let pre = pre.clone();
                        let engine = engine.clone();
                        async move {
                            let t = Instant::now();
                            let mut store = bare_store(&engine);
                            let inst = pre.instantiate_async(&mut store).await.unwrap();
                            inst.portcullis_connector_plugin()
                                .call_normalize(&mut store, "{}", &n)
                                .await
                                .unwrap()
                                .unwrap();
                            t.elapsed()
                        }
                    };
                    let base = run("0".into()).await;
                    run(iters.to_string()).await.saturating_sub(base)
                }
            })
        });
        g.finish();
    }

    // 5. Broker overhead vs a direct reqwest call to the same loopback server.
    {
        let (url, _server) = rt.block_on(async {
            let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let handle = tokio::spawn(async move { axum::serve(listener, app).await });
            (format!("http://{addr}/ok"), handle)
        });
        let broker = portcullis::broker::HttpBroker::new(BrokerConfig {
            ip_policy: IpPolicy {
                allow_private_networks: true,
            },
            ..BrokerConfig::default()
        })
        .unwrap();
        let manifest = Manifest {
            id: "bench".into(),
            name: "bench".into(),
            version: "1.0.0".into(),
            category: Category::CustomApi,
            description: String::new(),
            config_schema: serde_json::json!({}),
            hosts: vec!["http://127.0.0.1:*".into()],
            credential_slots: vec![],
            accepts_push: false,
        };
        let granter = CapabilityGranter::new(
            &manifest,
            &[HostPattern::parse("http://127.0.0.1:*").unwrap()],
        )
        .unwrap();
        let direct = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut g = c.benchmark_group("http_request");
        g.bench_function("portcullis_broker", |b| {
            b.to_async(&rt).iter(|| async {
                let budget = RequestBudget::new(10);
                let ctx = EgressContext {
                    granter: &granter,
                    credentials: &NoCredentials,
                    deadline: Instant::now() + Duration::from_secs(10),
                    budget: &budget,
                    upstream: None,
                };
                let r = broker
                    .send(
                        &ctx,
                        OutboundRequest {
                            method: Method::Get,
                            url: url.clone(),
                            headers: vec![],
                            body: None,
                            credential: None,
                            timeout: None,
                        },
                    )
                    .await
                    .unwrap();
                assert_eq!(r.status, 200);
            })
        });
        g.bench_function("direct_reqwest", |b| {
            b.to_async(&rt).iter(|| async {
                let r = direct.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = runtime;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(runtime);
