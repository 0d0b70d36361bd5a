//! The [`Connector`] trait a plugin implements, its result types, and the glue that
//! exports it through the WIT world (see [`crate::export_connector!`]).

use std::marker::PhantomData;

use serde_json::Value;

use crate::__bindings::exports::portcullis::connector::plugin::Guest;
use crate::__bindings::portcullis::connector::types as wit;
use crate::error::{Error, FieldError, Result};
use crate::event::{Event, EventKind, ObservableKind, Severity};
use crate::manifest::{Category, CredentialKind, Manifest};

/// One step of pull ingestion.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// Events of this step.
    pub events: Vec<Event>,
    /// Opaque cursor the host persists and passes to the next `poll`.
    pub cursor: Option<String>,
    /// Whether more data is ready right now.
    pub more: bool,
}

/// One stage of a connection test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestStage {
    /// `auth`, `sample` or a plugin-specific name.
    pub name: String,
    /// Whether the stage passed.
    pub ok: bool,
    /// What happened, for the operator.
    pub message: String,
    /// Milliseconds the stage took, as measured by the plugin.
    pub latency_ms: Option<u64>,
}

impl TestStage {
    /// A passed stage.
    pub fn passed(
        name: impl Into<String>,
        message: impl Into<String>,
        latency_ms: Option<u64>,
    ) -> Self {
        TestStage {
            name: name.into(),
            ok: true,
            message: message.into(),
            latency_ms,
        }
    }

    /// A failed stage.
    pub fn failed(
        name: impl Into<String>,
        message: impl Into<String>,
        latency_ms: Option<u64>,
    ) -> Self {
        TestStage {
            name: name.into(),
            ok: false,
            message: message.into(),
            latency_ms,
        }
    }
}

/// Result of a connection test.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestReport {
    /// Stages in the order they ran.
    pub stages: Vec<TestStage>,
    /// Up to 3 sample events.
    pub sample: Vec<Event>,
}

impl TestReport {
    /// Whether every stage passed.
    pub fn ok(&self) -> bool {
        self.stages.iter().all(|s| s.ok)
    }
}

/// What a connector plugin implements. The configuration arrives parsed from the
/// JSON text the host passes; a configuration that is not JSON never reaches these
/// functions (the export glue answers [`Error::Config`] with path `""`).
///
/// ```no_run
/// use portcullis_sdk::prelude::*;
///
/// struct Hello;
///
/// impl Connector for Hello {
///     fn describe() -> Manifest {
///         Manifest::new("hello", "Hello", env!("CARGO_PKG_VERSION"), Category::CustomApi)
///     }
///     fn validate_config(config: &Value) -> Result<()> {
///         let mut errors = ConfigErrors::new();
///         if config.get("url").and_then(Value::as_str).is_none() {
///             errors.push("/url", "required string");
///         }
///         errors.into_result()
///     }
///     fn test_connection(_config: &Value) -> Result<TestReport> {
///         Ok(TestReport::default())
///     }
///     fn poll(_config: &Value, cursor: Option<String>) -> Result<Batch> {
///         Ok(Batch { events: vec![], cursor, more: false })
///     }
/// }
///
/// portcullis_sdk::export_connector!(Hello);
/// ```
pub trait Connector {
    /// Describes the plugin and the capabilities it asks for.
    fn describe() -> Manifest;

    /// Checks a configuration; every problem as a field error ([`Error::Config`]).
    fn validate_config(config: &Value) -> Result<()>;

    /// Authenticates and runs one small sample query.
    fn test_connection(config: &Value) -> Result<TestReport>;

    /// One step of pull ingestion from `cursor` (`None` on the first poll).
    fn poll(config: &Value, cursor: Option<String>) -> Result<Batch>;

    /// Turns pushed input (one syslog line, one webhook body) into events. The
    /// default refuses, for plugins that do not accept push input.
    fn normalize(config: &Value, input: &str) -> Result<Vec<Event>> {
        let _ = (config, input);
        Err(Error::other("this plugin does not accept pushed input"))
    }
}

/// Parses the configuration text the host passes.
pub fn parse_config(config: &str) -> Result<Value> {
    serde_json::from_str(config)
        .map_err(|e| Error::config("", format!("configuration is not valid JSON: {e}")))
}

/// Adapts a [`Connector`] to the generated WIT `Guest` trait. Used by
/// [`crate::export_connector!`]; not part of the API.
#[doc(hidden)]
pub struct Export<T>(PhantomData<fn() -> T>);

impl<T: Connector> Guest for Export<T> {
    fn describe() -> wit::Manifest {
        manifest_to_wit(T::describe())
    }

    fn validate_config(config: String) -> std::result::Result<(), wit::Error> {
        let config = parse_config(&config).map_err(error_to_wit)?;
        T::validate_config(&config).map_err(error_to_wit)
    }

    fn test_connection(config: String) -> std::result::Result<wit::TestReport, wit::Error> {
        let config = parse_config(&config).map_err(error_to_wit)?;
        let report = T::test_connection(&config).map_err(error_to_wit)?;
        Ok(wit::TestReport {
            stages: report
                .stages
                .into_iter()
                .map(|s| wit::TestStage {
                    name: s.name,
                    ok: s.ok,
                    message: s.message,
                    latency_ms: s.latency_ms,
                })
                .collect(),
            sample: report
                .sample
                .into_iter()
                .take(3)
                .map(event_to_wit)
                .collect(),
        })
    }

    fn poll(config: String, cursor: Option<String>) -> std::result::Result<wit::Batch, wit::Error> {
        let config = parse_config(&config).map_err(error_to_wit)?;
        let batch = T::poll(&config, cursor).map_err(error_to_wit)?;
        Ok(wit::Batch {
            events: batch.events.into_iter().map(event_to_wit).collect(),
            cursor: batch.cursor,
            more: batch.more,
        })
    }

    fn normalize(
        config: String,
        input: String,
    ) -> std::result::Result<Vec<wit::Event>, wit::Error> {
        let config = parse_config(&config).map_err(error_to_wit)?;
        let events = T::normalize(&config, &input).map_err(error_to_wit)?;
        Ok(events.into_iter().map(event_to_wit).collect())
    }
}

fn manifest_to_wit(m: Manifest) -> wit::Manifest {
    wit::Manifest {
        id: m.id,
        name: m.name,
        version: m.version,
        category: match m.category {
            Category::Siem => wit::Category::Siem,
            Category::ThreatIntel => wit::Category::ThreatIntel,
            Category::Osint => wit::Category::Osint,
            Category::Blockchain => wit::Category::Blockchain,
            Category::Vulnerability => wit::Category::Vulnerability,
            Category::CloudLogs => wit::Category::CloudLogs,
            Category::Endpoint => wit::Category::Endpoint,
            Category::Network => wit::Category::Network,
            Category::CustomApi => wit::Category::CustomApi,
        },
        description: m.description,
        config_schema: m.config_schema.to_string(),
        hosts: m.hosts,
        credential_slots: m
            .credential_slots
            .into_iter()
            .map(|s| wit::CredentialSlot {
                name: s.name,
                description: s.description,
                kinds: s
                    .kinds
                    .into_iter()
                    .map(|k| match k {
                        CredentialKind::Bearer => wit::CredentialKind::Bearer,
                        CredentialKind::Oauth2ClientCredentials => {
                            wit::CredentialKind::Oauth2ClientCredentials
                        }
                        CredentialKind::ApiKey => wit::CredentialKind::ApiKey,
                        CredentialKind::Basic => wit::CredentialKind::Basic,
                    })
                    .collect(),
                required: s.required,
            })
            .collect(),
        accepts_push: m.accepts_push,
    }
}

fn error_to_wit(e: Error) -> wit::Error {
    match e {
        Error::Config(list) => wit::Error::Config(
            list.into_iter()
                .map(|FieldError { path, message }| wit::FieldError { path, message })
                .collect(),
        ),
        Error::Auth(m) => wit::Error::Auth(m),
        Error::Upstream { status, message } => {
            wit::Error::Upstream(wit::UpstreamError { status, message })
        }
        Error::RateLimited {
            retry_after_secs,
            message,
        } => wit::Error::RateLimited(wit::RateLimit {
            retry_after_secs,
            message,
        }),
        Error::Parse(m) => wit::Error::Parse(m),
        Error::Other(m) => wit::Error::Other(m),
    }
}

fn event_to_wit(e: Event) -> wit::Event {
    wit::Event {
        id: e.id,
        time: e.time,
        kind: match e.kind {
            EventKind::Alert => wit::EventKind::Alert,
            EventKind::Log => wit::EventKind::Log,
            EventKind::Indicator => wit::EventKind::Indicator,
            EventKind::Vulnerability => wit::EventKind::Vulnerability,
            EventKind::Transaction => wit::EventKind::Transaction,
            EventKind::Asset => wit::EventKind::Asset,
            EventKind::Finding => wit::EventKind::Finding,
        },
        severity: match e.severity {
            Severity::Unknown => wit::Severity::Unknown,
            Severity::Informational => wit::Severity::Informational,
            Severity::Low => wit::Severity::Low,
            Severity::Medium => wit::Severity::Medium,
            Severity::High => wit::Severity::High,
            Severity::Critical => wit::Severity::Critical,
            Severity::Fatal => wit::Severity::Fatal,
        },
        title: e.title,
        observables: e
            .observables
            .into_iter()
            .map(|o| wit::Observable {
                kind: match o.kind {
                    ObservableKind::Ip => wit::ObservableKind::Ip,
                    ObservableKind::Domain => wit::ObservableKind::Domain,
                    ObservableKind::Hostname => wit::ObservableKind::Hostname,
                    ObservableKind::Url => wit::ObservableKind::Url,
                    ObservableKind::Md5 => wit::ObservableKind::Md5,
                    ObservableKind::Sha1 => wit::ObservableKind::Sha1,
                    ObservableKind::Sha256 => wit::ObservableKind::Sha256,
                    ObservableKind::Sha512 => wit::ObservableKind::Sha512,
                    ObservableKind::Email => wit::ObservableKind::Email,
                    ObservableKind::Cve => wit::ObservableKind::Cve,
                    ObservableKind::Cpe => wit::ObservableKind::Cpe,
                    ObservableKind::WalletAddress => wit::ObservableKind::WalletAddress,
                    ObservableKind::User => wit::ObservableKind::User,
                    ObservableKind::FileName => wit::ObservableKind::FileName,
                    ObservableKind::MitreTechnique => wit::ObservableKind::MitreTechnique,
                    ObservableKind::EventId => wit::ObservableKind::EventId,
                    ObservableKind::Other => wit::ObservableKind::Other,
                },
                value: o.value,
            })
            .collect(),
        // `to_string` writes through an `io::Write` buffer: markedly cheaper than `Display`.
        attributes: serde_json::to_string(&e.attributes).unwrap_or_else(|_| "{}".to_string()),
        raw: e.raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventBuilder;
    use crate::time::Timestamp;

    struct Echo;

    impl Connector for Echo {
        fn describe() -> Manifest {
            Manifest::new("echo", "Echo", "0.0.1", Category::Osint)
                .config_schema(serde_json::json!({"type": "object"}))
                .credential_slot(crate::manifest::CredentialSlot::new(
                    "api",
                    "token",
                    CredentialKind::ALL.iter().copied(),
                ))
        }
        fn validate_config(config: &Value) -> Result<()> {
            if config.get("bad").is_some() {
                return Err(Error::Config(vec![
                    FieldError::new("/bad", "no"),
                    FieldError::new("/worse", "no"),
                ]));
            }
            Ok(())
        }
        fn test_connection(_: &Value) -> Result<TestReport> {
            let e = EventBuilder::new("1").build_at(Timestamp::UNIX_EPOCH);
            Ok(TestReport {
                stages: vec![TestStage::passed("auth", "ok", Some(3))],
                sample: vec![e.clone(), e.clone(), e.clone(), e],
            })
        }
        fn poll(_: &Value, cursor: Option<String>) -> Result<Batch> {
            Err(Error::rate_limited(Some(5), cursor.unwrap_or_default()))
        }
    }

    #[test]
    fn glue_maps_types() {
        let m = <Export<Echo> as Guest>::describe();
        assert_eq!(m.id, "echo");
        assert_eq!(m.config_schema, r#"{"type":"object"}"#);
        assert_eq!(m.credential_slots[0].kinds.len(), 4);

        match <Export<Echo> as Guest>::validate_config("{nope".into()) {
            Err(wit::Error::Config(list)) => {
                assert_eq!(list.len(), 1);
                assert_eq!(list[0].path, "");
            }
            other => panic!("unexpected {other:?}"),
        }
        match <Export<Echo> as Guest>::validate_config(r#"{"bad":1}"#.into()) {
            Err(wit::Error::Config(list)) => assert_eq!(list.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
        assert!(<Export<Echo> as Guest>::validate_config("{}".into()).is_ok());

        let report = <Export<Echo> as Guest>::test_connection("{}".into());
        let report = report.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(report.sample.len(), 3, "sample is capped at 3");
        assert_eq!(report.sample[0].attributes, "{}");
        assert_eq!(report.stages[0].latency_ms, Some(3));

        match <Export<Echo> as Guest>::poll("{}".into(), Some("c".into())) {
            Err(wit::Error::RateLimited(r)) => {
                assert_eq!(r.retry_after_secs, Some(5));
                assert_eq!(r.message, "c");
            }
            other => panic!("unexpected {other:?}"),
        }
        match <Export<Echo> as Guest>::normalize("{}".into(), "x".into()) {
            Err(wit::Error::Other(_)) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
