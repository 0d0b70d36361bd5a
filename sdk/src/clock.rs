//! Time as the host sees it (the `clock` import), plus a [`Clock`] trait so code that
//! measures or stamps time can run in native tests with [`crate::testing::ManualClock`].
//!
//! ```no_run
//! use portcullis_sdk::clock;
//!
//! let started = clock::monotonic_ms();
//! let now = clock::now();
//! println!("{now} after {} ms", clock::monotonic_ms() - started);
//! ```

use crate::__bindings::portcullis::connector::clock as wit;
use crate::time::Timestamp;

/// A source of wall-clock and monotonic time.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_unix_ms(&self) -> u64;

    /// A monotonic clock in milliseconds, for measuring durations.
    fn monotonic_ms(&self) -> u64;

    /// The current time as a [`Timestamp`] (saturating at the year 9999).
    fn now(&self) -> Timestamp {
        let ms = i64::try_from(self.now_unix_ms()).unwrap_or(i64::MAX);
        Timestamp::from_unix_millis(ms).unwrap_or_else(|_| {
            Timestamp::from_unix(253_402_300_799, 999_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
        })
    }

    /// Runs `f` and returns its result with the milliseconds it took.
    fn measure<T>(&self, f: impl FnOnce() -> T) -> (T, u64)
    where
        Self: Sized,
    {
        let start = self.monotonic_ms();
        let value = f();
        (value, self.monotonic_ms().saturating_sub(start))
    }
}

/// The host's `clock` import (only usable inside a plugin).
#[derive(Clone, Copy, Debug, Default)]
pub struct HostClock;

impl Clock for HostClock {
    fn now_unix_ms(&self) -> u64 {
        wit::now_unix_ms()
    }

    fn monotonic_ms(&self) -> u64 {
        wit::monotonic_ms()
    }
}

/// The current UTC time.
pub fn now() -> Timestamp {
    HostClock.now()
}

/// The current UTC time as the host formats it (RFC 3339, millisecond precision).
pub fn now_rfc3339() -> String {
    wit::now()
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    wit::now_unix_ms()
}

/// Monotonic milliseconds, for measuring durations.
pub fn monotonic_ms() -> u64 {
    wit::monotonic_ms()
}
