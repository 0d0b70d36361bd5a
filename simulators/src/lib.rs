//! Local upstream simulators for Portcullis tests.
//!
//! Each simulator is an axum server bound to `127.0.0.1:0` on a thread and
//! Tokio runtime of its own (so it keeps serving while a test blocks), started
//! with a synchronous `start`, stopped when dropped, and reachable at its
//! `base_url()`. Every request it receives, including ones to unknown paths,
//! is recorded first in its [`RequestLog`] (method, path and query, headers,
//! body), so a test can assert exactly what was sent, or that nothing was.
//!
//! - [`OAuthServer`]: OAuth 2.0 token endpoint, client credentials grant
//!   (RFC 6749 §4.4), with token revocation and expiry for the resource server.
//! - [`PagedApi`]: resource server with Link-header (RFC 8288, GitHub style),
//!   cursor and NVD-style offset paging, bearer/OAuth/API-key/Basic
//!   authentication answering per RFC 6750 §3, rate-limit headers, `429`s and
//!   injected failures, plus the helper endpoints.
//! - [`QRadarServer`]: an IBM QRadar console's REST API (`SEC` token or OAuth
//!   gateway, `Version`, `filter`/`sort`/`fields`, `Range`/`Content-Range` paging,
//!   QRadar's error envelope) serving offenses, addresses and rules.
//! - [`ThreatHawkServer`]: the ThreatHawk SIEM API (`GET /v1/alerts` with
//!   `status`/`severity`/`created_after` filters and cursor paging, `X-RateLimit-*`
//!   and `429` + `Retry-After`, `400`/`422` with `fields`, a replay mode) behind
//!   its own [`OAuthServer`].
//! - [`HelperServer`]: `/redirect`, `/echo`, `/big`, `/delay` alone.

pub mod dataset;
pub mod helpers;
pub mod nvd_throttle;
pub mod oauth;
pub mod paged;
pub mod qradar;
pub mod seed_world;
mod server;
pub mod threathawk;

pub use dataset::{generate_records, generated_record, load_nvd_dir, parse_time};
pub use helpers::HelperServer;
pub use nvd_throttle::NvdThrottle;
pub use oauth::{ClientAuth, IssuedToken, OAuthConfig, OAuthServer, TokenRegistry, TokenStatus};
pub use paged::{Auth, Failure, LinkOptions, PagedApi, PagedApiConfig, RateLimit, RelativeNext};
pub use qradar::{QRadarAuth, QRadarConfig, QRadarDataset, QRadarFailure, QRadarServer};
pub use server::{MAX_REQUEST_BODY, RecordedRequest, RequestLog};
pub use threathawk::{
    EVENTS_PATH, EVENTS_SCOPE, ThreatHawkConfig, ThreatHawkServer, threathawk_alert,
    threathawk_alerts,
};
