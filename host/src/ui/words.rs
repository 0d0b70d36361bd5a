//! Machine codes in plain words: health states and reason codes, categories, credential
//! kinds and the capabilities a plugin requests.

use crate::management::model::{HealthState, PluginCapabilities};
use crate::manifest::{Category, CredentialKind};

/// Every category, in the order filters list them.
pub const CATEGORIES: [Category; 9] = [
    Category::Siem,
    Category::ThreatIntel,
    Category::Osint,
    Category::Blockchain,
    Category::Vulnerability,
    Category::CloudLogs,
    Category::Endpoint,
    Category::Network,
    Category::CustomApi,
];

/// Every health state, in the order filters list them.
pub const HEALTH_STATES: [HealthState; 5] = [
    HealthState::Healthy,
    HealthState::Degraded,
    HealthState::Failing,
    HealthState::Unknown,
    HealthState::Disabled,
];

/// The wire name of a category (`threat-intel`).
pub fn category_code(c: Category) -> &'static str {
    match c {
        Category::Siem => "siem",
        Category::ThreatIntel => "threat-intel",
        Category::Osint => "osint",
        Category::Blockchain => "blockchain",
        Category::Vulnerability => "vulnerability",
        Category::CloudLogs => "cloud-logs",
        Category::Endpoint => "endpoint",
        Category::Network => "network",
        Category::CustomApi => "custom-api",
    }
}

/// A category for people.
pub fn category_label(c: Category) -> &'static str {
    match c {
        Category::Siem => "SIEM",
        Category::ThreatIntel => "Threat intelligence",
        Category::Osint => "OSINT",
        Category::Blockchain => "Blockchain",
        Category::Vulnerability => "Vulnerability database",
        Category::CloudLogs => "Cloud logs",
        Category::Endpoint => "Endpoint",
        Category::Network => "Network",
        Category::CustomApi => "Custom API",
    }
}

/// The wire name of a health state (`degraded`).
pub fn health_code(h: HealthState) -> &'static str {
    match h {
        HealthState::Unknown => "unknown",
        HealthState::Healthy => "healthy",
        HealthState::Degraded => "degraded",
        HealthState::Failing => "failing",
        HealthState::Disabled => "disabled",
    }
}

/// A health state for people.
pub fn health_label(h: HealthState) -> &'static str {
    match h {
        HealthState::Unknown => "Unknown",
        HealthState::Healthy => "Healthy",
        HealthState::Degraded => "Degraded",
        HealthState::Failing => "Failing",
        HealthState::Disabled => "Disabled",
    }
}

/// One reason code in words. Known codes get a sentence fragment; any other code is shown
/// lower-cased with spaces (`SINK_BACKLOG` → "sink backlog"), so a new code still reads.
pub fn reason_words(code: &str) -> String {
    let known = match code {
        "AUTH_FAILED" => Some("authentication failed"),
        "PLUGIN_UNLOADED" => Some("its plugin was unloaded"),
        "PLUGIN_TRAP" => Some("the plugin crashed"),
        "TIMEOUT" => Some("calls time out"),
        "RATE_LIMITED" => Some("rate-limited by the upstream"),
        "UPSTREAM_ERROR" => Some("the upstream answers with errors"),
        "PARSE_ERRORS" => Some("unparseable data"),
        "DUPLICATE_FLOOD" => Some("duplicate flood"),
        "STALE" => Some("no events for longer than usual"),
        "BACKPRESSURED" => Some("sinks are pushing back, polling paused"),
        "CRASH_LOOP" => Some("crash loop"),
        _ => None,
    };
    match known {
        Some(w) => w.to_string(),
        None => code.to_ascii_lowercase().replace(['_', '-'], " "),
    }
}

/// "Degraded — duplicate flood 92 %": the state, then each reason in words. `detail`
/// gives extra words per reason code (a ratio, a count) when the health module has them.
pub fn health_sentence(
    state: HealthState,
    reasons: &[String],
    detail: impl Fn(&str) -> Option<String>,
) -> String {
    let words: Vec<String> = reasons
        .iter()
        .map(|r| match detail(r) {
            Some(d) => format!("{} {d}", reason_words(r)),
            None => reason_words(r),
        })
        .collect();
    if words.is_empty() {
        health_label(state).to_string()
    } else {
        format!("{} — {}", health_label(state), words.join("; "))
    }
}

/// A credential kind for people.
pub fn credential_kind_label(k: CredentialKind) -> &'static str {
    match k {
        CredentialKind::Bearer => "bearer token",
        CredentialKind::OAuth2ClientCredentials => "OAuth 2.0 client credentials",
        CredentialKind::ApiKey => "API key",
        CredentialKind::Basic => "user name and password (HTTP Basic)",
    }
}

/// What a plugin asks for, one plain sentence per capability.
pub fn capability_sentences(c: &PluginCapabilities) -> Vec<String> {
    let mut out = Vec::new();
    if c.hosts.is_empty() {
        out.push("Makes no network requests.".to_string());
    } else if c
        .hosts
        .iter()
        .any(|h| h == "*://*:*" || h.contains("://*:") || h.ends_with("://*"))
    {
        out.push(format!(
            "May ask to reach any host ({}); each connector reaches only the hosts an operator grants.",
            c.hosts.join(", ")
        ));
    } else {
        out.push(format!(
            "May reach {} (only where an operator grants it).",
            c.hosts.join(", ")
        ));
    }
    for s in &c.credential_slots {
        let kinds: Vec<&str> = s.kinds.iter().map(|k| credential_kind_label(*k)).collect();
        out.push(format!(
            "{} credential \"{}\" ({}): {}. The host sends it; the plugin never sees it.",
            if s.required { "Needs a" } else { "Can use a" },
            s.name,
            kinds.join(" or "),
            s.description
        ));
    }
    if c.accepts_push {
        out.push("Accepts pushed input (syslog lines, webhook bodies).".to_string());
    }
    let interfaces: Vec<&str> = c
        .imports
        .iter()
        .filter_map(|i| i.split('/').nth(1))
        .map(|i| i.split('@').next().unwrap_or(i))
        .collect();
    if !interfaces.is_empty() {
        out.push(format!("Uses host interfaces: {}.", interfaces.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_in_words() {
        let s = health_sentence(HealthState::Degraded, &["DUPLICATE_FLOOD".into()], |_| {
            Some("92 %".into())
        });
        assert_eq!(s, "Degraded — duplicate flood 92 %");
        assert_eq!(
            health_sentence(HealthState::Healthy, &[], |_| None),
            "Healthy"
        );
        assert_eq!(
            health_sentence(HealthState::Failing, &["SINK_BACKLOG".into()], |_| None),
            "Failing — sink backlog"
        );
    }
}
