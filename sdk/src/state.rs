//! A small key-value space private to one connector instance (the `state` import).
//!
//! ```no_run
//! use portcullis_sdk::state;
//!
//! # fn main() -> Result<(), portcullis_sdk::Error> {
//! state::set_json("seen", &vec!["a", "b"])?;
//! let seen: Option<Vec<String>> = state::get_json("seen")?;
//! state::delete("seen");
//! # Ok(()) }
//! ```

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::portcullis::connector::state as wit;
use crate::error::Error;

/// The host refused to store a value (key or value too large, space full).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError(pub String);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "state not stored: {}", self.0)
    }
}

impl std::error::Error for StateError {}

impl From<StateError> for Error {
    fn from(e: StateError) -> Self {
        Error::Other(e.to_string())
    }
}

/// The bytes stored under `key`.
pub fn get(key: &str) -> Option<Vec<u8>> {
    wit::get(key)
}

/// The text stored under `key` (`None` when absent or not UTF-8).
pub fn get_string(key: &str) -> Option<String> {
    get(key).and_then(|b| String::from_utf8(b).ok())
}

/// The JSON value stored under `key`, deserialised.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    match get(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::other(format!("state key {key:?} holds unexpected data: {e}"))),
    }
}

/// Stores bytes under `key`.
pub fn set(key: &str, value: &[u8]) -> Result<(), StateError> {
    wit::set(key, value).map_err(StateError)
}

/// Stores text under `key`.
pub fn set_string(key: &str, value: &str) -> Result<(), StateError> {
    set(key, value.as_bytes())
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| Error::other(format!("cannot serialise state {key:?}: {e}")))?;
    set(key, &bytes).map_err(Error::from)
}

/// Removes `key`.
pub fn delete(key: &str) {
    wit::delete(key);
}
