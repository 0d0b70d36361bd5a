//! Helpers shared by the host-level end-to-end tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use portcullis::broker::BrokerConfig;
use portcullis::broker::credentials::{CredentialsFile, StaticCredentials};
use portcullis::broker::host_pattern::HostPattern;
use portcullis::broker::ip_policy::IpPolicy;
use portcullis::event::Event;
use portcullis::runtime::AllocationStrategy;
use portcullis::runtime::plugin_log::MemoryLogSink;
use portcullis::runtime::state_store::InMemoryStateStore;
use portcullis::{
    ConnectorEnv, ConnectorSandbox, LoadedPlugin, Runtime, RuntimeConfig, RuntimeLimits,
};
use serde_json::Value;

/// A runtime with default limits except those given.
pub fn runtime_with(allow_private: bool, limits: RuntimeLimits) -> Runtime {
    Runtime::new(RuntimeConfig {
        limits,
        broker: BrokerConfig {
            ip_policy: IpPolicy {
                allow_private_networks: allow_private,
            },
            ..BrokerConfig::default()
        },
        cache_dir: None,
        allocation: AllocationStrategy::Pooling { max_instances: 16 },
    })
    .unwrap()
}

pub fn runtime(allow_private: bool) -> Runtime {
    runtime_with(allow_private, RuntimeLimits::default())
}

pub async fn load(rt: &Runtime, path: &str) -> LoadedPlugin {
    let bytes = portcullis_e2e::read_artifact(path);
    rt.load(&bytes)
        .await
        .unwrap_or_else(|e| panic!("loading {path}: {e}"))
}

pub fn patterns(grants: &[&str]) -> Vec<HostPattern> {
    grants
        .iter()
        .map(|g| HostPattern::parse(g).unwrap())
        .collect()
}

/// Credentials from a credentials-file document.
pub fn credentials(doc: Value) -> StaticCredentials {
    CredentialsFile::parse(&doc.to_string()).unwrap()
}

pub struct Bound {
    pub sandbox: ConnectorSandbox,
    pub logs: Arc<MemoryLogSink>,
}

pub fn bind(plugin: &LoadedPlugin, id: &str, grants: &[&str], creds: StaticCredentials) -> Bound {
    let logs = MemoryLogSink::new();
    let env = ConnectorEnv {
        org_id: Some("org-e2e".into()),
        connector_id: id.into(),
        grants: patterns(grants),
        credentials: Arc::new(creds),
        state: Arc::new(InMemoryStateStore::new()),
        log_sink: logs.clone(),
        upstream: None,
    };
    Bound {
        sandbox: plugin.bind(env).unwrap(),
        logs,
    }
}

/// Poll while the plugin reports more (at most `max` batches).
pub async fn poll_follow(
    sandbox: &ConnectorSandbox,
    config: &Value,
    mut cursor: Option<String>,
    max: usize,
) -> (Vec<Event>, Option<String>, usize) {
    let mut events = Vec::new();
    let mut batches = 0;
    loop {
        let batch = sandbox
            .poll(config, cursor.as_deref())
            .await
            .unwrap_or_else(|e| panic!("poll {batches} failed: {e}"));
        batches += 1;
        events.extend(batch.events);
        if batch.cursor.is_some() {
            cursor = batch.cursor;
        }
        if !batch.more || batches >= max {
            return (events, cursor, batches);
        }
    }
}

pub fn short_limits(timeout: Duration, memory_mib: usize) -> RuntimeLimits {
    RuntimeLimits {
        call_timeout: timeout,
        memory_bytes: memory_mib * 1024 * 1024,
        ..RuntimeLimits::default()
    }
}

/// `"http://127.0.0.1:PORT"` → the host pattern with that exact port.
pub fn origin_pattern(base_url: &str) -> String {
    base_url.trim_end_matches('/').to_string()
}
