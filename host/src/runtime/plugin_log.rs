//! Plugin log lines: the `log` import and the guest's stdout/stderr, rate-limited per
//! call and delivered to a [`PluginLogSink`] tagged with org, connector and plugin ids.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

/// Severity of a plugin log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginLogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info
    Info,
    /// warn
    Warn,
    /// error
    Error,
}

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogOrigin {
    /// The `log` import.
    Plugin,
    /// Guest stdout.
    Stdout,
    /// Guest stderr.
    Stderr,
    /// The host, about the plugin (e.g. suppressed lines).
    Host,
}

/// One log line.
#[derive(Debug, Clone, Serialize)]
pub struct PluginLogRecord {
    /// Level.
    pub level: PluginLogLevel,
    /// Origin.
    pub origin: LogOrigin,
    /// Message (truncated to the host's cap).
    pub message: String,
    /// Structured fields.
    pub fields: Vec<(String, String)>,
    /// Organisation id, when known.
    pub org: Option<String>,
    /// Connector id.
    pub connector: String,
    /// Plugin id.
    pub plugin: String,
}

/// Receives plugin log lines.
pub trait PluginLogSink: Send + Sync {
    /// Deliver one line.
    fn record(&self, record: PluginLogRecord);
}

/// Emits plugin lines as `tracing` events with org, connector and plugin ids.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingLogSink;

impl PluginLogSink for TracingLogSink {
    fn record(&self, r: PluginLogRecord) {
        let fields = if r.fields.is_empty() {
            String::new()
        } else {
            r.fields
                .iter()
                .map(|(k, v)| format!("{k}={v:?}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let org = r.org.as_deref().unwrap_or("-");
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(
                    target: "portcullis::plugin",
                    org = org,
                    connector = %r.connector,
                    plugin = %r.plugin,
                    origin = ?r.origin,
                    fields = %fields,
                    "{}",
                    r.message
                )
            };
        }
        match r.level {
            PluginLogLevel::Trace => emit!(trace),
            PluginLogLevel::Debug => emit!(debug),
            PluginLogLevel::Info => emit!(info),
            PluginLogLevel::Warn => emit!(warn),
            PluginLogLevel::Error => emit!(error),
        }
    }
}

/// Keeps every line in memory (tests, the CLI's `--logs` output).
#[derive(Debug, Default)]
pub struct MemoryLogSink {
    lines: parking_lot::Mutex<Vec<PluginLogRecord>>,
}

impl MemoryLogSink {
    /// An empty sink.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }
    /// Everything recorded so far.
    pub fn lines(&self) -> Vec<PluginLogRecord> {
        self.lines.lock().clone()
    }
}

impl PluginLogSink for MemoryLogSink {
    fn record(&self, record: PluginLogRecord) {
        self.lines.lock().push(record);
    }
}

/// Token bucket limiting lines per call.
#[derive(Debug)]
pub(crate) struct LogRateLimiter {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
    pub(crate) dropped: u64,
}

impl LogRateLimiter {
    pub(crate) fn new(burst: u32, per_sec: u32) -> Self {
        LogRateLimiter {
            capacity: burst as f64,
            per_sec: per_sec as f64,
            tokens: burst as f64,
            last: Instant::now(),
            dropped: 0,
        }
    }

    pub(crate) fn admit(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

/// Cut `s` to at most `max` bytes on a char boundary, marking the cut.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_admits_burst_then_drops() {
        let mut l = LogRateLimiter::new(5, 0);
        let admitted = (0..100).filter(|_| l.admit()).count();
        assert_eq!(admitted, 5);
        assert_eq!(l.dropped, 95);
    }

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), "h…");
        assert_eq!(truncate("abc".into(), 10), "abc");
    }
}
