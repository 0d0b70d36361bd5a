//! Test doubles for running connector logic natively (no host): a scripted
//! [`MockTransport`] and a [`ManualClock`]; and [`batch_cursor`] / [`event_ids`] to
//! look into the [`Batch`] a poll returned.
//!
//! ```
//! use portcullis_sdk::http::{Request, Response};
//! use portcullis_sdk::testing::MockTransport;
//!
//! let mock = MockTransport::new().respond(Response::new(200, "https://a.test/", "[]"));
//! let r = Request::get("https://a.test/").query("p", "1").send_with(&mock).unwrap();
//! assert_eq!(r.status, 200);
//! assert_eq!(mock.requested_urls(), ["https://a.test/?p=1"]);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

use serde::de::DeserializeOwned;

use crate::clock::Clock;
use crate::connector::Batch;
use crate::http::{HttpError, Request, Response, Transport};

type Handler = Box<dyn Fn(&Request) -> Result<Response, HttpError>>;

/// A [`Transport`] that answers from a queue of scripted results, or from a handler
/// once the queue is empty, and records every request. A request that is not a
/// valid absolute http(s) URL fails with [`HttpError::InvalidRequest`] like the host.
#[derive(Default)]
pub struct MockTransport {
    queue: RefCell<VecDeque<Result<Response, HttpError>>>,
    handler: Option<Handler>,
    requests: RefCell<Vec<Request>>,
}

impl std::fmt::Debug for MockTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockTransport")
            .field("queued", &self.queue.borrow().len())
            .field("requests", &self.requests.borrow().len())
            .finish()
    }
}

impl MockTransport {
    /// An empty script: every request fails with a transport error.
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers requests with `handler` once the scripted queue is empty.
    pub fn with_handler(
        handler: impl Fn(&Request) -> Result<Response, HttpError> + 'static,
    ) -> Self {
        MockTransport {
            handler: Some(Box::new(handler)),
            ..Self::default()
        }
    }

    /// Queues a response.
    pub fn respond(self, response: Response) -> Self {
        self.queue.borrow_mut().push_back(Ok(response));
        self
    }

    /// Queues a failure.
    pub fn fail(self, error: HttpError) -> Self {
        self.queue.borrow_mut().push_back(Err(error));
        self
    }

    /// Every request sent so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.borrow().clone()
    }

    /// The full URL (with query) of every request sent so far.
    pub fn requested_urls(&self) -> Vec<String> {
        self.requests
            .borrow()
            .iter()
            .map(|r| {
                r.full_url()
                    .map(String::from)
                    .unwrap_or_else(|_| r.url.clone())
            })
            .collect()
    }
}

impl Transport for MockTransport {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        request.full_url()?;
        if let Some(next) = self.queue.borrow_mut().pop_front() {
            return next;
        }
        match &self.handler {
            Some(h) => h(request),
            None => Err(HttpError::Transport(
                "MockTransport: no scripted response left".into(),
            )),
        }
    }
}

/// A [`Clock`] that only moves when told to: `now` is fixed until
/// [`ManualClock::advance`], and every monotonic reading adds `step_ms`.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: Cell<u64>,
    mono_ms: Cell<u64>,
    step_ms: u64,
}

impl ManualClock {
    /// A clock at `now_unix_ms` whose monotonic readings advance by `step_ms` each.
    pub fn new(now_unix_ms: u64, step_ms: u64) -> Self {
        ManualClock {
            now_ms: Cell::new(now_unix_ms),
            mono_ms: Cell::new(0),
            step_ms,
        }
    }

    /// A clock at an RFC 3339 time (panics on a bad literal: for tests only).
    pub fn at(rfc3339: &str, step_ms: u64) -> Self {
        let t = crate::time::Timestamp::parse(rfc3339)
            .unwrap_or_else(|e| panic!("ManualClock::at: {e}"));
        Self::new(u64::try_from(t.unix_millis()).unwrap_or(0), step_ms)
    }

    /// Moves both clocks forward.
    pub fn advance(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
        self.mono_ms.set(self.mono_ms.get() + ms);
    }
}

impl Clock for ManualClock {
    fn now_unix_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn monotonic_ms(&self) -> u64 {
        let v = self.mono_ms.get();
        self.mono_ms.set(v + self.step_ms);
        v
    }
}

/// The batch's cursor, parsed from its JSON text into the plugin's cursor type.
///
/// # Panics
///
/// When the batch has no cursor (`no cursor`) or the text does not parse as `T`
/// (`cursor <text>: <error>`): meant for tests.
///
/// ```
/// use portcullis_sdk::Batch;
/// use portcullis_sdk::testing::batch_cursor;
///
/// let batch = Batch { events: vec![], cursor: Some(r#"{"page":2}"#.into()), more: true };
/// let cursor: serde_json::Value = batch_cursor(&batch);
/// assert_eq!(cursor["page"], 2);
/// ```
pub fn batch_cursor<T: DeserializeOwned>(batch: &Batch) -> T {
    let text = batch
        .cursor
        .as_deref()
        .unwrap_or_else(|| panic!("no cursor"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("cursor {text}: {e}"))
}

/// The ids of the batch's events, in order.
///
/// ```
/// use portcullis_sdk::prelude::*;
/// use portcullis_sdk::testing::event_ids;
///
/// let t = Timestamp::parse("2024-01-01T00:00:00Z").unwrap();
/// let events = vec![EventBuilder::new("a").build_at(t), EventBuilder::new("b").build_at(t)];
/// let batch = Batch { events, cursor: None, more: false };
/// assert_eq!(event_ids(&batch), ["a", "b"]);
/// ```
pub fn event_ids(batch: &Batch) -> Vec<&str> {
    batch.events.iter().map(|e| e.id.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_transport_script_then_handler() {
        let mock = MockTransport::with_handler(|r| Ok(Response::new(204, r.url.clone(), "")))
            .fail(HttpError::Timeout)
            .respond(Response::new(200, "https://a.test/1", "one"));
        let req = Request::get("https://a.test/x");
        assert_eq!(req.send_with(&mock), Err(HttpError::Timeout));
        assert_eq!(req.send_with(&mock).map(|r| r.status), Ok(200));
        assert_eq!(req.send_with(&mock).map(|r| r.status), Ok(204));
        assert!(matches!(
            Request::get("not a url").send_with(&mock),
            Err(HttpError::InvalidRequest(_))
        ));
        assert_eq!(mock.requests().len(), 4);
        let empty = MockTransport::new();
        assert!(matches!(
            req.send_with(&empty),
            Err(HttpError::Transport(_))
        ));
    }

    #[test]
    fn manual_clock() {
        let c = ManualClock::at("2024-01-01T00:00:00Z", 5);
        assert_eq!(c.now().to_rfc3339(), "2024-01-01T00:00:00Z");
        let ((), took) = c.measure(|| ());
        assert_eq!(took, 5);
        c.advance(1500);
        assert_eq!(c.now().to_rfc3339(), "2024-01-01T00:00:01.500Z");
    }
}
