//! What the panel shows about a connector's activity: its health (state, reason codes
//! and since when), last event time and events per minute. The connector record carries
//! the health the management plane knows; the health module's live view replaces it when
//! it has one.

use crate::api::AppState;
use crate::management::model::{ConnectorRecord, HealthState};

/// A connector's activity as the panel shows it.
#[derive(Debug, Clone)]
pub struct Activity {
    /// Health state.
    pub state: HealthState,
    /// Reason codes.
    pub reasons: Vec<String>,
    /// Extra words per reason code ("92 %").
    pub details: Vec<(String, String)>,
    /// When the state was entered.
    pub since: String,
    /// Last event time.
    pub last_event: Option<String>,
    /// Events per minute.
    pub events_per_min: Option<f64>,
}

impl Activity {
    /// Extra words for one reason code.
    pub fn reason_detail(&self, code: &str) -> Option<String> {
        self.details
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, d)| d.clone())
    }
}

/// The activity of one connector.
pub fn of(_state: &AppState, rec: &ConnectorRecord) -> Activity {
    Activity {
        state: rec.health.state,
        reasons: rec.health.reasons.clone(),
        details: Vec::new(),
        since: rec.health.since.clone(),
        last_event: None,
        events_per_min: None,
    }
}

/// Health transitions, newest first: (since, state code, state and reasons in words).
pub fn history(_state: &AppState, _rec: &ConnectorRecord) -> Vec<(String, String, String)> {
    Vec::new()
}
