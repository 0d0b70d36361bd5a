//! Warnings gathered during one call (records skipped, unreadable cursor fields, ...),
//! counted per distinct message and logged once at the end of the call.
//!
//! Plugin logic that is unit-tested natively collects into a [`Warnings`]; the thin
//! glue that binds it to the host logs them with [`Warnings::log`].
//!
//! ```
//! use portcullis_sdk::warnings::Warnings;
//!
//! let mut w = Warnings::default();
//! w.add("record without id skipped");
//! w.add("record without id skipped");
//! w.add(format!("bad time {:?}", "yesterday"));
//! assert_eq!(w.entries()[0], ("record without id skipped".to_string(), 2));
//! assert!(w.mentions("yesterday"));
//! ```

use crate::log;

/// Most distinct messages kept per call; later ones are only counted under
/// [`OTHERS`].
pub const MAX_DISTINCT: usize = 20;

/// The message that counts the warnings beyond [`MAX_DISTINCT`] distinct ones.
pub const OTHERS: &str = "further warnings not listed";

/// Distinct warning messages with how often each happened, in first-seen order;
/// at most [`MAX_DISTINCT`] of them, plus one [`OTHERS`] entry counting the rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings(Vec<(String, usize)>);

impl Warnings {
    /// Counts one occurrence of `message`.
    pub fn add(&mut self, message: impl Into<String>) {
        let message = message.into();
        if let Some((_, n)) = self.0.iter_mut().find(|(m, _)| *m == message) {
            *n += 1;
        } else if self.0.len() < MAX_DISTINCT {
            self.0.push((message, 1));
        } else if let Some((_, n)) = self.0.iter_mut().find(|(m, _)| m == OTHERS) {
            *n += 1;
        } else {
            self.0.push((OTHERS.to_string(), 1));
        }
    }

    /// Distinct messages with their counts.
    pub fn entries(&self) -> &[(String, usize)] {
        &self.0
    }

    /// Whether nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `needle` occurs in some message.
    pub fn mentions(&self, needle: &str) -> bool {
        self.0.iter().any(|(m, _)| m.contains(needle))
    }

    /// Logs every entry through the host's `log` import at warn level, the message
    /// as is, with the fields `operation` (e.g. `"poll"`, `"normalize"`) and `count`.
    ///
    /// Calls the host import, so it belongs in the plugin's glue (see the
    /// [crate docs](crate) on native targets).
    ///
    /// ```no_run
    /// # let warnings = portcullis_sdk::warnings::Warnings::default();
    /// warnings.log("poll");
    /// ```
    pub fn log(&self, operation: &str) {
        for (message, count) in self.entries() {
            let count = count.to_string();
            log::log(
                log::Level::Warn,
                message,
                &[("operation", operation), ("count", &count)],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_caps() {
        let mut w = Warnings::default();
        assert!(w.is_empty());
        w.add("a");
        w.add("a");
        for i in 0..30 {
            w.add(format!("m{i}"));
        }
        assert_eq!(w.entries()[0], ("a".to_string(), 2));
        assert_eq!(w.entries().len(), MAX_DISTINCT + 1);
        assert_eq!(w.entries()[MAX_DISTINCT], (OTHERS.to_string(), 11));
        // A message already listed is still counted after the cap.
        w.add("a");
        assert_eq!(w.entries()[0], ("a".to_string(), 3));
        assert!(w.mentions("m1"));
        assert!(!w.mentions("zzz"));
    }
}
