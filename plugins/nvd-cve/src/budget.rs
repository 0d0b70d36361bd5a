//! The rolling request budget the plugin enforces on itself, kept in the connector's
//! `state` space so it holds across calls: NVD allows 5 requests per rolling 30 s
//! without a key and 50 with one, and answers clients over the limit with 403 (a
//! firewall block) rather than a 429 with `Retry-After`. The WIT has no way to
//! advertise a budget to the host, so the plugin counts its own requests and answers
//! `rate-limited` with the seconds until the next one is allowed.

use std::cell::RefCell;
use std::collections::HashMap;

use portcullis_sdk::prelude::*;
use portcullis_sdk::warnings::Warnings;
use serde::{Deserialize, Serialize};

use crate::config::RateLimit;

/// The `state` key holding the budget.
pub const STATE_KEY: &str = "nvd-cve/request-budget";

/// A small key-value space: the host's `state` import, or a map in tests.
pub trait KeyValue {
    /// The bytes stored under `key`.
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores `value` under `key`; `Err` when the host refuses.
    fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), String>;
}

/// An in-memory [`KeyValue`] (native tests).
#[derive(Debug, Default)]
pub struct MemoryKeyValue(RefCell<HashMap<String, Vec<u8>>>);

impl KeyValue for MemoryKeyValue {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) -> std::result::Result<(), String> {
        self.0.borrow_mut().insert(key.to_string(), value.to_vec());
        Ok(())
    }
}

/// What is stored under [`STATE_KEY`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetState {
    /// Unix milliseconds of the requests sent inside the current window, oldest first.
    pub sent: Vec<u64>,
    /// Unix milliseconds until which no request is sent (after NVD throttled us).
    pub blocked_until: Option<u64>,
}

fn load(store: &dyn KeyValue, w: &mut Warnings) -> BudgetState {
    match store.get(STATE_KEY) {
        None => BudgetState::default(),
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            w.add(format!(
                "stored request budget unreadable ({e}); starting afresh"
            ));
            BudgetState::default()
        }),
    }
}

fn save(store: &dyn KeyValue, state: &BudgetState) -> Result<()> {
    let bytes = serde_json::to_vec(state)
        .map_err(|e| Error::other(format!("cannot serialise the request budget: {e}")))?;
    store
        .set(STATE_KEY, &bytes)
        .map_err(|e| Error::other(format!("the host refused to store the request budget: {e}")))
}

fn secs_until(now_ms: u64, at_ms: u64) -> u64 {
    at_ms.saturating_sub(now_ms).div_ceil(1000).max(1)
}

/// Takes one request from the budget, or answers `rate-limited` with the seconds
/// until one is available. Call it right before each request.
pub fn acquire(
    limit: &RateLimit,
    store: &dyn KeyValue,
    now_ms: u64,
    w: &mut Warnings,
) -> Result<()> {
    let mut state = load(store, w);
    let window_ms = u64::from(limit.window_secs) * 1000;
    if let Some(until) = state.blocked_until {
        if until > now_ms {
            return Err(Error::rate_limited(
                Some(secs_until(now_ms, until)),
                "NVD throttled this connector (HTTP 403); waiting before the next request",
            ));
        }
        state.blocked_until = None;
    }
    state
        .sent
        .retain(|t| t.saturating_add(window_ms) > now_ms && *t <= now_ms);
    state.sent.sort_unstable();
    let allowed = usize::try_from(limit.requests).unwrap_or(usize::MAX);
    if state.sent.len() >= allowed {
        // With k requests in the window, the next is allowed once the oldest
        // k - limit + 1 have left it.
        let free_at = state
            .sent
            .get(state.sent.len() - allowed)
            .map_or(now_ms, |t| t.saturating_add(window_ms));
        return Err(Error::rate_limited(
            Some(secs_until(now_ms, free_at)),
            format!(
                "request budget spent: {} requests per rolling {} s (plugin-side limit for NVD)",
                limit.requests, limit.window_secs
            ),
        ));
    }
    state.sent.push(now_ms);
    save(store, &state)
}

/// Records that NVD throttled us: no request for `secs` seconds.
pub fn block(store: &dyn KeyValue, now_ms: u64, secs: u64, w: &mut Warnings) -> Result<()> {
    let mut state = load(store, w);
    let until = now_ms.saturating_add(secs.saturating_mul(1000));
    state.blocked_until = Some(state.blocked_until.map_or(until, |u| u.max(until)));
    save(store, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: RateLimit = RateLimit {
        requests: 3,
        window_secs: 30,
        throttle_backoff_secs: 60,
    };

    fn retry_after(r: Result<()>) -> Option<u64> {
        match r {
            Err(Error::RateLimited {
                retry_after_secs, ..
            }) => retry_after_secs,
            other => panic!("expected rate-limited, got {other:?}"),
        }
    }

    #[test]
    fn rolling_window() {
        let kv = MemoryKeyValue::default();
        let mut w = Warnings::default();
        let t0 = 1_000_000u64;
        for i in 0..3 {
            assert!(acquire(&LIMIT, &kv, t0 + i * 1000, &mut w).is_ok());
        }
        // Fourth at t0+5 s: the first request leaves the window at t0+30 s.
        assert_eq!(
            retry_after(acquire(&LIMIT, &kv, t0 + 5000, &mut w)),
            Some(25)
        );
        // A refused request does not count.
        assert_eq!(
            retry_after(acquire(&LIMIT, &kv, t0 + 29_500, &mut w)),
            Some(1)
        );
        assert!(acquire(&LIMIT, &kv, t0 + 30_000, &mut w).is_ok());
        assert_eq!(
            retry_after(acquire(&LIMIT, &kv, t0 + 30_000, &mut w)),
            Some(1)
        );
        assert!(acquire(&LIMIT, &kv, t0 + 31_000, &mut w).is_ok());
        let state: BudgetState =
            serde_json::from_slice(&kv.get(STATE_KEY).unwrap_or_default()).unwrap_or_default();
        assert_eq!(state.sent, [t0 + 2000, t0 + 30_000, t0 + 31_000]);
        assert!(w.is_empty());
    }

    #[test]
    fn lowered_limit_waits_for_enough_expiries() {
        let kv = MemoryKeyValue::default();
        let mut w = Warnings::default();
        let big = RateLimit {
            requests: 5,
            ..LIMIT
        };
        for i in 0..5 {
            assert!(acquire(&big, &kv, i * 1000, &mut w).is_ok());
        }
        // Now only 2 allowed: four of the five must leave, the fourth (3 s) at 33 s.
        let small = RateLimit {
            requests: 2,
            ..LIMIT
        };
        assert_eq!(retry_after(acquire(&small, &kv, 10_000, &mut w)), Some(23));
    }

    #[test]
    fn throttle_block() {
        let kv = MemoryKeyValue::default();
        let mut w = Warnings::default();
        assert!(acquire(&LIMIT, &kv, 0, &mut w).is_ok());
        assert!(block(&kv, 1000, 60, &mut w).is_ok());
        assert_eq!(retry_after(acquire(&LIMIT, &kv, 1000, &mut w)), Some(60));
        assert_eq!(retry_after(acquire(&LIMIT, &kv, 60_500, &mut w)), Some(1));
        assert!(acquire(&LIMIT, &kv, 61_000, &mut w).is_ok());
    }

    #[test]
    fn unreadable_state_starts_afresh() {
        let kv = MemoryKeyValue::default();
        assert!(kv.set(STATE_KEY, b"{not json").is_ok());
        let mut w = Warnings::default();
        assert!(acquire(&LIMIT, &kv, 0, &mut w).is_ok());
        assert_eq!(w.entries().len(), 1);
    }
}
