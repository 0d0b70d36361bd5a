//! Oddities met during one call, counted per distinct message, logged by the glue.

/// Most distinct messages kept per call; later ones are only counted.
const MAX_DISTINCT: usize = 20;
const OTHERS: &str = "further warnings not listed";

/// Warnings gathered during one call, each with how often it happened.
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
}
