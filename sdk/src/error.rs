//! Typed errors a connector returns; they map one to one onto the WIT `error` variant.

use std::fmt;

use crate::http::HttpError;
use crate::time::TimeError;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One problem with one configuration field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// RFC 6901 JSON Pointer to the offending field (`""` for the whole document).
    /// Build it with [`crate::pointer::join`] so `~` and `/` in keys are escaped.
    pub path: String,
    /// What is wrong, for a human.
    pub message: String,
}

impl FieldError {
    /// A field error at `path` (an RFC 6901 pointer).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "(document): {}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Errors a connector returns to the host. Panics are not errors: a panic traps and
/// the host reports it itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The configuration is invalid; every problem found, each with its field path.
    Config(Vec<FieldError>),
    /// Authentication with the upstream failed (401/403, rejected credential).
    Auth(String),
    /// The upstream answered with an error or could not be reached.
    Upstream {
        /// HTTP status, when there was a response.
        status: Option<u16>,
        /// What went wrong, preferably in the upstream's own words.
        message: String,
    },
    /// The upstream asked us to slow down.
    RateLimited {
        /// Seconds to wait before retrying, when the upstream said so.
        retry_after_secs: Option<u64>,
        /// Human-readable detail.
        message: String,
    },
    /// The upstream answered with a body the connector could not understand.
    Parse(String),
    /// Anything else.
    Other(String),
}

impl Error {
    /// A configuration error with a single field error.
    pub fn config(path: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config(vec![FieldError::new(path, message)])
    }

    /// An authentication error.
    pub fn auth(message: impl Into<String>) -> Self {
        Error::Auth(message.into())
    }

    /// An upstream error, with the HTTP status when there was a response.
    pub fn upstream(status: Option<u16>, message: impl Into<String>) -> Self {
        Error::Upstream {
            status,
            message: message.into(),
        }
    }

    /// A rate-limit error, with the delay the upstream asked for if any.
    pub fn rate_limited(retry_after_secs: Option<u64>, message: impl Into<String>) -> Self {
        Error::RateLimited {
            retry_after_secs,
            message: message.into(),
        }
    }

    /// A parse error.
    pub fn parse(message: impl Into<String>) -> Self {
        Error::Parse(message.into())
    }

    /// Any other error.
    pub fn other(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(errors) => {
                f.write_str("invalid configuration")?;
                for (i, e) in errors.iter().enumerate() {
                    f.write_str(if i == 0 { ": " } else { "; " })?;
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::Auth(m) => write!(f, "authentication failed: {m}"),
            Error::Upstream {
                status: Some(s),
                message,
            } => write!(f, "upstream error (HTTP {s}): {message}"),
            Error::Upstream {
                status: None,
                message,
            } => write!(f, "upstream error: {message}"),
            Error::RateLimited {
                retry_after_secs: Some(s),
                message,
            } => write!(f, "rate limited (retry after {s} s): {message}"),
            Error::RateLimited {
                retry_after_secs: None,
                message,
            } => write!(f, "rate limited: {message}"),
            Error::Parse(m) => write!(f, "could not parse upstream data: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<HttpError> for Error {
    /// How a failed host HTTP call is reported: a credential problem is an auth error,
    /// timeouts, oversized bodies and transport failures are upstream errors without a
    /// status, and policy refusals, malformed requests and a spent budget are `Other`.
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Credential(m) => {
                Error::Auth(format!("credential could not be applied: {m}"))
            }
            HttpError::Timeout => Error::upstream(None, "request timed out"),
            HttpError::TooLarge(n) => Error::upstream(
                None,
                format!("response larger than the host's cap of {n} bytes"),
            ),
            HttpError::Transport(m) => Error::upstream(None, format!("transport error: {m}")),
            HttpError::Denied(m) => Error::Other(format!("request denied by the host: {m}")),
            HttpError::InvalidRequest(m) => Error::Other(format!("invalid request: {m}")),
            HttpError::BudgetExhausted(n) => {
                Error::Other(format!("request budget of {n} requests per call exhausted"))
            }
        }
    }
}

impl From<TimeError> for Error {
    fn from(e: TimeError) -> Self {
        Error::Parse(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Parse(e.to_string())
    }
}

/// Collects every configuration problem so they can be reported together.
///
/// ```
/// use portcullis_sdk::{ConfigErrors, Error};
///
/// let mut errors = ConfigErrors::new();
/// errors.push("/base_url", "required");
/// errors.push("/page_size", "must be at least 1");
/// let Err(Error::Config(list)) = errors.into_result() else { panic!() };
/// assert_eq!(list.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors {
    errors: Vec<FieldError>,
}

impl ConfigErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(path, message));
    }

    /// Records every problem of another collection or list.
    pub fn extend(&mut self, errors: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(errors);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many problems were recorded.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// The problems recorded so far.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// `Ok(())` when nothing was recorded, else [`Error::Config`] with every problem.
    pub fn into_result(self) -> Result<()> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(self.errors))
        }
    }

    /// `Ok(value)` when nothing was recorded, else [`Error::Config`] with every problem.
    pub fn finish<T>(self, value: T) -> Result<T> {
        self.into_result().map(|()| value)
    }
}

impl IntoIterator for ConfigErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        let e = Error::Config(vec![
            FieldError::new("/a", "bad"),
            FieldError::new("", "worse"),
        ]);
        assert_eq!(
            e.to_string(),
            "invalid configuration: /a: bad; (document): worse"
        );
        assert_eq!(
            Error::upstream(Some(503), "down").to_string(),
            "upstream error (HTTP 503): down"
        );
        assert_eq!(
            Error::rate_limited(Some(30), "slow").to_string(),
            "rate limited (retry after 30 s): slow"
        );
    }

    #[test]
    fn from_http_error() {
        assert!(matches!(
            Error::from(HttpError::Credential("x".into())),
            Error::Auth(_)
        ));
        assert_eq!(
            Error::from(HttpError::Timeout),
            Error::upstream(None, "request timed out")
        );
        assert!(matches!(
            Error::from(HttpError::Denied("x".into())),
            Error::Other(_)
        ));
    }

    #[test]
    fn collector() {
        let mut c = ConfigErrors::new();
        assert!(c.clone().into_result().is_ok());
        c.push("/x", "one");
        c.extend([FieldError::new("/y", "two")]);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.finish(()),
            Err(Error::Config(vec![
                FieldError::new("/x", "one"),
                FieldError::new("/y", "two")
            ]))
        );
    }
}
