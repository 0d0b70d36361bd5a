//! `[health]` section of the server configuration: thresholds of the health state
//! machine, upstream backoff and the crash-loop policy. Every key has a default.

use std::time::Duration;

use serde::Deserialize;

/// Thresholds and timings of health monitoring (`[health]` in `portcullis.toml`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Consecutive failed polls before a healthy connector turns `degraded`.
    pub degrade_after_failures: u32,
    /// Consecutive failed polls before it turns `failing`.
    pub fail_after_failures: u32,
    /// Consecutive successful polls before a degraded/failing connector is `healthy` again.
    pub recover_after_successes: u32,
    /// First backoff after a 5xx, timeout or trap (doubles per consecutive failure).
    pub backoff_base_secs: f64,
    /// Longest backoff.
    pub backoff_max_secs: f64,
    /// Wait after a 401/403 before trying again (doubles, up to `auth_retry_max_secs`).
    pub auth_retry_secs: f64,
    /// Longest wait after repeated 401/403.
    pub auth_retry_max_secs: f64,
    /// Hold after a 429 that names neither `Retry-After` nor `X-RateLimit-Reset`.
    pub rate_limit_default_secs: f64,
    /// Longest hold a `Retry-After`/`X-RateLimit-Reset` may impose.
    pub rate_limit_max_secs: f64,
    /// Sliding window for the duplicate ratio and the parse-error rate.
    pub window_secs: f64,
    /// Share of duplicates (duplicates / (new + duplicates)) that means a flood.
    pub duplicate_flood_ratio: f64,
    /// Fewer events than this in the window never count as a flood.
    pub duplicate_min_events: u64,
    /// Duplicates per poll not counted: the overlap of inclusive incremental windows
    /// (an API asked for records `since` the newest one seen serves that one again).
    pub duplicate_overlap_allowance: u64,
    /// Share of failed parses (poll parse errors, malformed pushes) that degrades.
    pub parse_error_rate: f64,
    /// Fewer outcomes than this in the window never count.
    pub parse_min_samples: u64,
    /// `STALE` when no event arrived for this many times the connector's own cadence.
    pub stale_factor: f64,
    /// ... and at least this long.
    pub stale_min_secs: f64,
    /// Intervals between events observed before staleness is judged at all.
    pub stale_min_samples: u32,
    /// Period of the `test-connection` probe of enabled connectors (0: off).
    pub probe_interval_secs: f64,
    /// Failures within `crash_loop_window_secs` that trip the crash-loop policy.
    pub crash_loop_failures: u32,
    /// Window of the crash-loop count.
    pub crash_loop_window_secs: f64,
    /// Whether upstream failures (5xx, timeouts, auth) count towards a crash loop, not
    /// only plugin faults (traps, memory limit, deadline, invalid output).
    pub crash_loop_counts_upstream: bool,
    /// Transitions kept per connector in the health history.
    pub history_len: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            degrade_after_failures: 2,
            fail_after_failures: 5,
            recover_after_successes: 2,
            backoff_base_secs: 1.0,
            backoff_max_secs: 300.0,
            auth_retry_secs: 300.0,
            auth_retry_max_secs: 3600.0,
            rate_limit_default_secs: 60.0,
            rate_limit_max_secs: 3600.0,
            window_secs: 600.0,
            duplicate_flood_ratio: 0.5,
            duplicate_min_events: 20,
            duplicate_overlap_allowance: 1,
            parse_error_rate: 0.2,
            parse_min_samples: 3,
            stale_factor: 5.0,
            stale_min_secs: 300.0,
            stale_min_samples: 3,
            probe_interval_secs: 900.0,
            crash_loop_failures: 5,
            crash_loop_window_secs: 600.0,
            crash_loop_counts_upstream: false,
            history_len: 100,
        }
    }
}

/// A `[health]` value is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("health.{key}: {message}")]
pub struct HealthConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

pub(crate) fn secs(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::ZERO
    }
}

impl HealthConfig {
    /// Check ranges; the error names the key.
    pub fn validate(&self) -> Result<(), HealthConfigError> {
        let err = |key, message: &str| {
            Err(HealthConfigError {
                key,
                message: message.to_string(),
            })
        };
        if self.degrade_after_failures == 0 {
            return err("degrade_after_failures", "must be at least 1");
        }
        if self.fail_after_failures < self.degrade_after_failures {
            return err(
                "fail_after_failures",
                "must be at least degrade_after_failures",
            );
        }
        if self.recover_after_successes == 0 {
            return err("recover_after_successes", "must be at least 1");
        }
        for (key, v) in [
            ("backoff_base_secs", self.backoff_base_secs),
            ("backoff_max_secs", self.backoff_max_secs),
            ("auth_retry_secs", self.auth_retry_secs),
            ("auth_retry_max_secs", self.auth_retry_max_secs),
            ("rate_limit_default_secs", self.rate_limit_default_secs),
            ("rate_limit_max_secs", self.rate_limit_max_secs),
            ("window_secs", self.window_secs),
            ("stale_min_secs", self.stale_min_secs),
            ("crash_loop_window_secs", self.crash_loop_window_secs),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return err(key, "must be a positive number of seconds");
            }
        }
        if !(self.probe_interval_secs.is_finite() && self.probe_interval_secs >= 0.0) {
            return err("probe_interval_secs", "must be 0 (off) or positive");
        }
        for (key, v) in [
            ("duplicate_flood_ratio", self.duplicate_flood_ratio),
            ("parse_error_rate", self.parse_error_rate),
        ] {
            if !(v > 0.0 && v <= 1.0) {
                return err(key, "must be in (0, 1]");
            }
        }
        if !(self.stale_factor.is_finite() && self.stale_factor >= 1.0) {
            return err("stale_factor", "must be at least 1");
        }
        if self.crash_loop_failures == 0 {
            return err("crash_loop_failures", "must be at least 1");
        }
        if self.history_len == 0 || self.history_len > 10_000 {
            return err("history_len", "must be 1-10000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_keys_are_checked() {
        assert_eq!(HealthConfig::default().validate(), Ok(()));
        let c: HealthConfig = toml::from_str("duplicate_flood_ratio = 0.3\n").unwrap();
        assert_eq!(c.duplicate_flood_ratio, 0.3);
        assert_eq!(
            c.fail_after_failures,
            HealthConfig::default().fail_after_failures
        );
        let err = toml::from_str::<HealthConfig>("duplicate_ratio = 0.3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate_ratio"), "{err}");
        let bad = HealthConfig {
            fail_after_failures: 1,
            degrade_after_failures: 2,
            ..HealthConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "fail_after_failures");
        let bad = HealthConfig {
            duplicate_flood_ratio: 1.5,
            ..HealthConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "health.duplicate_flood_ratio: must be in (0, 1]"
        );
    }
}
