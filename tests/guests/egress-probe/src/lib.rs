//! `egress-probe`: a connector that sends whatever HTTP requests its config asks
//! for through the host's `http.send` and reports exactly what came back, so
//! the tests can check the egress policy and credential handling.
//!
//! Declares hosts `http://127.0.0.1:*`, `http://localhost:*`,
//! `http://169.254.169.254`, `http://[::ffff:127.0.0.1]:*`,
//! `http://declared.test:*` and one optional credential slot `api` (all kinds).
//!
//! Config: `{"requests": [{"url": ..., "method"?: "GET", "credential"?: "api",
//! "headers"?: [[name, value]], "body"?: string, "timeout_ms"?: u32}]}`.
//! `poll` returns one event per request, id `req-<index>`, with attributes
//! `{"url", "status"?: u16, "error"?: {"kind", "message"}, "body": string
//! (utf-8 lossy, first 4096 bytes), "final_url"?: string, "headers"?: [[name,
//! value]]}`.

wit_bindgen::generate!({ path: "../../../wit/v0.1.0", world: "connector" });

use exports::portcullis::connector::plugin::Guest;
use portcullis::connector::clock;
use portcullis::connector::http::{self, HttpError, Method};
use portcullis::connector::types::{
    Batch, Category, CredentialKind, CredentialSlot, Error, Event, EventKind, FieldError, Manifest,
    Observable, ObservableKind, Severity, TestReport, TestStage,
};
use serde_json::{Map, Value, json};

const BODY_PREFIX: usize = 4096;

struct EgressProbe;

struct ProbeRequest {
    url: String,
    method: Method,
    method_name: String,
    credential: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u32>,
}

fn field_error(path: String, message: &str) -> FieldError {
    FieldError {
        path,
        message: message.to_string(),
    }
}

fn parse_method(name: &str) -> Option<Method> {
    Some(match name.to_ascii_uppercase().as_str() {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        _ => return None,
    })
}

fn parse_request(
    index: usize,
    value: &Value,
    errors: &mut Vec<FieldError>,
) -> Option<ProbeRequest> {
    let base = format!("/requests/{index}");
    let Some(object) = value.as_object() else {
        errors.push(field_error(base, "must be an object"));
        return None;
    };
    let before = errors.len();
    let url = match object.get("url").and_then(Value::as_str) {
        Some(url) => url.to_string(),
        None => {
            errors.push(field_error(format!("{base}/url"), "required string"));
            String::new()
        }
    };
    let method_name = match object.get("method") {
        None => "GET".to_string(),
        Some(Value::String(name)) => name.to_ascii_uppercase(),
        Some(_) => {
            errors.push(field_error(format!("{base}/method"), "must be a string"));
            String::new()
        }
    };
    let method = parse_method(&method_name);
    if method.is_none() && !method_name.is_empty() {
        errors.push(field_error(
            format!("{base}/method"),
            "must be one of GET HEAD POST PUT PATCH DELETE OPTIONS",
        ));
    }
    let credential = match object.get("credential") {
        None | Some(Value::Null) => None,
        Some(Value::String(slot)) => Some(slot.clone()),
        Some(_) => {
            errors.push(field_error(
                format!("{base}/credential"),
                "must be a string",
            ));
            None
        }
    };
    let mut headers = Vec::new();
    match object.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(pairs)) => {
            for (i, pair) in pairs.iter().enumerate() {
                match pair.as_array().map(Vec::as_slice) {
                    Some([Value::String(name), Value::String(value)]) => {
                        headers.push((name.clone(), value.clone()));
                    }
                    _ => errors.push(field_error(
                        format!("{base}/headers/{i}"),
                        "must be a [name, value] pair of strings",
                    )),
                }
            }
        }
        Some(_) => errors.push(field_error(
            format!("{base}/headers"),
            "must be an array of [name, value] pairs",
        )),
    }
    let body = match object.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(body)) => Some(body.clone().into_bytes()),
        Some(_) => {
            errors.push(field_error(format!("{base}/body"), "must be a string"));
            None
        }
    };
    let timeout_ms = match object.get("timeout_ms") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => {
                errors.push(field_error(format!("{base}/timeout_ms"), "must be a u32"));
                None
            }
        },
    };
    if errors.len() != before {
        return None;
    }
    Some(ProbeRequest {
        url,
        method: method?,
        method_name,
        credential,
        headers,
        body,
        timeout_ms,
    })
}

fn parse_config(config: &str) -> Result<Vec<ProbeRequest>, Error> {
    let value: Value = serde_json::from_str(config).map_err(|e| {
        Error::Config(vec![field_error(
            String::new(),
            &format!("config is not JSON: {e}"),
        )])
    })?;
    let requests = match value.get("requests") {
        None => return Ok(Vec::new()),
        Some(Value::Array(requests)) => requests,
        Some(_) => {
            return Err(Error::Config(vec![field_error(
                "/requests".to_string(),
                "must be an array",
            )]));
        }
    };
    let mut errors = Vec::new();
    let parsed: Vec<ProbeRequest> = requests
        .iter()
        .enumerate()
        .filter_map(|(i, request)| parse_request(i, request, &mut errors))
        .collect();
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(Error::Config(errors))
    }
}

fn error_kind(error: &HttpError) -> (&'static str, String) {
    match error {
        HttpError::Denied(message) => ("denied", message.clone()),
        HttpError::InvalidRequest(message) => ("invalid-request", message.clone()),
        HttpError::Credential(message) => ("credential", message.clone()),
        HttpError::Timeout => ("timeout", "deadline or request timeout passed".to_string()),
        HttpError::TooLarge(limit) => ("too-large", format!("response exceeded {limit} bytes")),
        HttpError::BudgetExhausted(budget) => (
            "budget-exhausted",
            format!("request budget of {budget} spent"),
        ),
        HttpError::Transport(message) => ("transport", message.clone()),
    }
}

/// Sends one request; the event describing the outcome, and whether a response
/// (of any status) came back.
fn send(index: usize, request: &ProbeRequest) -> (Event, bool) {
    let mut attributes = Map::new();
    attributes.insert("url".to_string(), json!(request.url));
    let outcome = http::send(&http::Request {
        method: request.method,
        url: request.url.clone(),
        headers: request.headers.clone(),
        body: request.body.clone(),
        credential: request.credential.clone(),
        timeout_ms: request.timeout_ms,
    });
    let responded = outcome.is_ok();
    let summary = match outcome {
        Ok(response) => {
            let prefix = &response.body[..response.body.len().min(BODY_PREFIX)];
            attributes.insert("status".to_string(), json!(response.status));
            attributes.insert("body".to_string(), json!(String::from_utf8_lossy(prefix)));
            attributes.insert("final_url".to_string(), json!(response.url));
            attributes.insert("headers".to_string(), json!(response.headers));
            response.status.to_string()
        }
        Err(error) => {
            let (kind, message) = error_kind(&error);
            attributes.insert(
                "error".to_string(),
                json!({"kind": kind, "message": message}),
            );
            attributes.insert("body".to_string(), json!(""));
            format!("error {kind}")
        }
    };
    let attributes = Value::Object(attributes).to_string();
    let event = Event {
        id: format!("req-{index}"),
        time: clock::now(),
        kind: EventKind::Log,
        severity: Severity::Informational,
        title: format!("{} {} -> {summary}", request.method_name, request.url),
        observables: vec![Observable {
            kind: ObservableKind::Url,
            value: request.url.clone(),
        }],
        raw: attributes.clone(),
        attributes,
    };
    (event, responded)
}

impl Guest for EgressProbe {
    fn describe() -> Manifest {
        Manifest {
            id: env!("CARGO_PKG_NAME").to_string(),
            name: "Egress probe test guest".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            category: Category::CustomApi,
            description: "Sends the HTTP requests its config lists and reports each outcome."
                .to_string(),
            config_schema: r#"{"type":"object"}"#.to_string(),
            hosts: vec![
                "http://127.0.0.1:*".to_string(),
                "http://localhost:*".to_string(),
                "http://169.254.169.254".to_string(),
                "http://[::ffff:127.0.0.1]:*".to_string(),
                "http://declared.test:*".to_string(),
            ],
            credential_slots: vec![CredentialSlot {
                name: "api".to_string(),
                description: "Credential the probe may ask the host to apply.".to_string(),
                kinds: vec![
                    CredentialKind::Bearer,
                    CredentialKind::Oauth2ClientCredentials,
                    CredentialKind::ApiKey,
                    CredentialKind::Basic,
                ],
                required: false,
            }],
            accepts_push: false,
        }
    }

    fn validate_config(config: String) -> Result<(), Error> {
        parse_config(&config).map(|_| ())
    }

    fn test_connection(config: String) -> Result<TestReport, Error> {
        let requests = parse_config(&config)?;
        let Some(first) = requests.first() else {
            return Ok(TestReport {
                stages: vec![TestStage {
                    name: "sample".to_string(),
                    ok: true,
                    message: "no requests configured".to_string(),
                    latency_ms: Some(0),
                }],
                sample: Vec::new(),
            });
        };
        let started = clock::monotonic_ms();
        let (event, ok) = send(0, first);
        let latency = clock::monotonic_ms().saturating_sub(started);
        Ok(TestReport {
            stages: vec![TestStage {
                name: "sample".to_string(),
                ok,
                message: event.title.clone(),
                latency_ms: Some(latency),
            }],
            sample: vec![event],
        })
    }

    fn poll(config: String, _cursor: Option<String>) -> Result<Batch, Error> {
        let requests = parse_config(&config)?;
        let events = requests
            .iter()
            .enumerate()
            .map(|(index, request)| send(index, request).0)
            .collect();
        Ok(Batch {
            events,
            cursor: None,
            more: false,
        })
    }

    fn normalize(_config: String, _input: String) -> Result<Vec<Event>, Error> {
        Err(Error::Other(
            "egress-probe does not accept pushed input".to_string(),
        ))
    }
}

export!(EgressProbe);
