//! Records the paged simulators serve: generated alert-like records, real NVD
//! CVE records loaded at run time, and the time parsing both need.

use std::io;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

/// `created_at` of generated record 1.
pub const DEFAULT_START: &str = "2024-01-01T00:00:00Z";
/// Seconds between the `created_at` of consecutive generated records.
pub const DEFAULT_INTERVAL_SECS: i64 = 60;

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

fn default_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(DEFAULT_START)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// Generated record number `index` (1-based):
/// `{"id": "rec-000001", "created_at": "2024-01-01T00:00:00Z", "title":
/// "Simulated alert 1", "severity": "low", "src_ip": "198.51.100.2"}`, with
/// `created_at` [`DEFAULT_INTERVAL_SECS`] apart from [`DEFAULT_START`],
/// severities cycling `low medium high critical` and `src_ip` in the
/// documentation range 198.51.100.0/24.
pub fn generated_record(index: usize) -> Value {
    let offset = i64::try_from(index.saturating_sub(1))
        .unwrap_or(i64::MAX / DEFAULT_INTERVAL_SECS)
        .saturating_mul(DEFAULT_INTERVAL_SECS);
    let created_at = default_start() + TimeDelta::seconds(offset);
    json!({
        "id": format!("rec-{index:06}"),
        "created_at": created_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "title": format!("Simulated alert {index}"),
        "severity": SEVERITIES[index % SEVERITIES.len()],
        "src_ip": format!("198.51.100.{}", index % 254 + 1),
    })
}

/// Generated records `1..=n`, oldest first.
pub fn generate_records(n: usize) -> Vec<Value> {
    (1..=n).map(generated_record).collect()
}

/// Loads the `cve` objects of every `*.json` file in `dir` (sorted by file
/// name): NVD API 2.0 responses (`{"vulnerabilities": [{"cve": ...}]}`), bare
/// `cve` records (`{"id": "CVE-...", ...}`) and `{"cve": ...}` wrappers.
/// Duplicate CVE ids keep the first occurrence. Point it at
/// `shared/conformance/nvd/`; the files stay where they are.
pub fn load_nvd_dir(dir: &Path) -> io::Result<Vec<Value>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    let mut cves: Vec<Value> = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        let found: Vec<Value> = if let Some(items) = value["vulnerabilities"].as_array() {
            items.iter().map(|item| item["cve"].clone()).collect()
        } else if value["cve"].is_object() {
            vec![value["cve"].clone()]
        } else if value["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("CVE-"))
        {
            vec![value]
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not an NVD CVE record or response", path.display()),
            ));
        };
        for cve in found {
            let Some(id) = cve["id"].as_str() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: a cve without an id", path.display()),
                ));
            };
            if !cves.iter().any(|known| known["id"].as_str() == Some(id)) {
                cves.push(cve);
            }
        }
    }
    Ok(cves)
}

/// An NVD-shaped `cve` object made from a generated-style record (for NVD
/// paging tests larger than the real sample). `published` and `lastModified`
/// are the record's `created_at`.
pub fn synthetic_cve(index: usize, record: &Value) -> Value {
    let time = record_time(record)
        .map(nvd_timestamp)
        .unwrap_or_else(|| nvd_timestamp(default_start()));
    let title = record["title"]
        .as_str()
        .unwrap_or("Simulated vulnerability");
    json!({
        "id": format!("CVE-2024-{:05}", 10000 + index),
        "sourceIdentifier": "simulator@portcullis.invalid",
        "published": time,
        "lastModified": time,
        "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": title}],
        "metrics": {},
        "references": [],
    })
}

/// Parses an ISO 8601 / RFC 3339 date-time; one without an offset (as NVD
/// writes them) is taken as UTC.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(time) = DateTime::parse_from_str(text, format) {
            return Some(time.with_timezone(&Utc));
        }
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Some(time.and_utc());
        }
    }
    None
}

/// NVD's timestamp format: `2023-10-18T18:04:18.493` (UTC, no offset).
pub fn nvd_timestamp(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// The time of a generic record (`created_at`) or of an NVD `cve`
/// (`lastModified`).
pub fn record_time(record: &Value) -> Option<DateTime<Utc>> {
    record["created_at"]
        .as_str()
        .or_else(|| record["lastModified"].as_str())
        .and_then(parse_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_records_are_stable_and_spaced() {
        let records = generate_records(3);
        assert_eq!(records[0]["id"], "rec-000001");
        assert_eq!(records[0]["created_at"], "2024-01-01T00:00:00Z");
        assert_eq!(records[2]["created_at"], "2024-01-01T00:02:00Z");
        assert_eq!(records[1]["src_ip"], "198.51.100.3");
        assert_eq!(records, generate_records(3));
    }

    #[test]
    fn parses_rfc3339_and_nvd_times() {
        let utc = |s: &str| parse_time(s).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
        assert_eq!(
            utc("2024-01-01T00:00:00Z").as_deref(),
            Some("2024-01-01T00:00:00.000Z")
        );
        assert_eq!(
            utc("2023-10-18T18:04:18.493").as_deref(),
            Some("2023-10-18T18:04:18.493Z")
        );
        assert_eq!(
            utc("2021-08-04T13:00:00.000-04:00").as_deref(),
            Some("2021-08-04T17:00:00.000Z")
        );
        assert_eq!(
            utc("2021-08-04T13:00:00").as_deref(),
            Some("2021-08-04T13:00:00.000Z")
        );
        assert_eq!(utc("yesterday"), None);
    }

    #[test]
    fn loads_the_real_nvd_sample() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nvd");
        let cves = load_nvd_dir(&dir).expect("load shared/conformance/nvd");
        // 38 + 1 records in the two responses, 9 bare records.
        assert!(cves.len() >= 40, "only {} CVEs", cves.len());
        assert!(
            cves.iter()
                .all(|cve| cve["id"].as_str().is_some_and(|id| id.starts_with("CVE-")))
        );
        assert!(cves.iter().any(|cve| cve["id"] == "CVE-2024-3400"));
        assert!(cves.iter().all(|cve| record_time(cve).is_some()));
    }
}
