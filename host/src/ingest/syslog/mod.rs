//! The syslog receiver: UDP and TCP listeners configured in `[[syslog.listeners]]`,
//! RFC 5424 / RFC 3164 parsing ([`message`]), RFC 6587 TCP framing ([`framing`]),
//! routing by source to a connector, and batching into the connector's `normalize`.

pub mod framing;
pub mod message;
