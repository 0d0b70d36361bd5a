//! What the panel shows about a connector's activity: its health (state, reasons with
//! their figures, since when) as the health monitor persisted it on the connector record,
//! events per minute and last event time from the monitor's metrics, and the health
//! transition history.

use crate::api::AppState;
use crate::health::HealthReason;
use crate::management::model::{ConnectorRecord, HealthState, Principal};

use super::words;

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

    /// "Degraded — duplicate flood 92 %".
    pub fn sentence(&self) -> String {
        words::health_sentence(self.state, &self.reasons, |c| self.reason_detail(c))
    }
}

fn percent(x: f64) -> String {
    format!("{:.0} %", (x * 100.0).clamp(0.0, 100.0))
}

/// The figures of one reason, in words ("92 %", "until 12:00:00Z", "HTTP 503").
pub fn reason_figures(r: &HealthReason) -> Option<String> {
    match r {
        HealthReason::AuthFailed { status } | HealthReason::UpstreamError { status } => {
            status.map(|s| format!("(HTTP {s})"))
        }
        HealthReason::RateLimited { until } => Some(format!("until {until}")),
        HealthReason::Timeout => None,
        HealthReason::PluginTrap { message } => Some(format!("({message})")),
        HealthReason::ParseErrors { rate, .. } => Some(percent(*rate)),
        HealthReason::DuplicateFlood { ratio } => Some(percent(*ratio)),
        HealthReason::Stale { since, .. } => Some(format!("(last event {since})")),
        HealthReason::Backpressured { sinks } => Some(format!("({})", sinks.join(", "))),
        HealthReason::CrashLoop { failures, .. } => Some(format!("after {failures} failures")),
    }
}

fn details_of(reasons: &[HealthReason]) -> Vec<(String, String)> {
    reasons
        .iter()
        .filter_map(|r| reason_figures(r).map(|f| (r.code().to_string(), f)))
        .collect()
}

/// The activity of one connector.
pub fn of(state: &AppState, p: &Principal, rec: &ConnectorRecord) -> Activity {
    let metrics = state.service().connector_metrics(p, &rec.org, &rec.id).ok();
    Activity {
        state: rec.health.state,
        reasons: rec.health.reasons.clone(),
        details: details_of(&rec.health.details),
        since: rec.health.since.clone(),
        last_event: metrics.as_ref().and_then(|m| m.last_event.clone()),
        events_per_min: metrics.map(|m| m.events_per_minute),
    }
}

/// Health transitions, newest first: (at, state code, state and reasons in words).
pub fn history(
    state: &AppState,
    p: &Principal,
    rec: &ConnectorRecord,
) -> Vec<(String, String, String)> {
    let Ok(view) = state.service().connector_health(p, &rec.org, &rec.id, 50) else {
        return Vec::new();
    };
    view.transitions
        .into_iter()
        .map(|t| {
            let details = details_of(&t.details);
            let sentence = words::health_sentence(t.to, &t.reasons, |c| {
                details.iter().find(|(k, _)| k == c).map(|(_, d)| d.clone())
            });
            (t.at, words::health_code(t.to).to_string(), sentence)
        })
        .collect()
}
