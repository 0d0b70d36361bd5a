//! Warnings gathered during one call (skipped records, unparseable CPE names, ...),
//! each with how often it happened, logged once per call by the glue.

/// Most distinct warning messages kept per call; later ones are only counted.
const MAX_DISTINCT: usize = 20;
const OTHERS: &str = "further warnings not listed";

/// Distinct messages with their counts, in first-seen order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Warnings(Vec<(String, usize)>);

impl Warnings {
    /// Records one occurrence of `message`.
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
    }
}
