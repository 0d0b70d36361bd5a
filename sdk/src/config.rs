//! Checks that configuration parsers share, reporting problems with their RFC 6901
//! paths (see [`pointer`](mod@crate::pointer)) in the words the host shows operators.
//!
//! A parser walks the document once, collects every problem in a [`ConfigErrors`]
//! and answers with all of them; these helpers do the generic steps of that walk.
//!
//! ```
//! use portcullis_sdk::config;
//! use portcullis_sdk::prelude::*;
//!
//! let doc = json!({"base_url": 1, "colour": "red"});
//! let obj = config::root_object(&doc).unwrap();
//! let mut errors = ConfigErrors::new();
//! config::unknown_keys(&mut errors, obj, "", &["base_url"]);
//! assert_eq!(config::string(&mut errors, obj, "", "base_url"), None);
//! assert_eq!(config::string(&mut errors, obj, "", "absent"), None);
//! let found: Vec<_> = errors.errors().iter().map(|e| (e.path.as_str(), e.message.as_str())).collect();
//! assert_eq!(
//!     found,
//!     [
//!         ("/colour", "unknown field (allowed: base_url)"),
//!         ("/base_url", "must be a string, found a number"),
//!     ]
//! );
//! assert!(config::root_object(&json!([])).is_err());
//! ```

use serde_json::{Map, Value};

use crate::error::{ConfigErrors, Error, Result};
use crate::json_type_name;
use crate::pointer;

/// The configuration document as an object, or an [`Error::Config`] at the document
/// path `""`: `the configuration must be a JSON object, found <type>`.
pub fn root_object(doc: &Value) -> Result<&Map<String, Value>> {
    match doc {
        Value::Object(obj) => Ok(obj),
        other => Err(Error::config(
            "",
            format!(
                "the configuration must be a JSON object, found {}",
                json_type_name(other)
            ),
        )),
    }
}

/// Reports every key of `obj` (the object at pointer `base`) outside `allowed`:
/// `unknown field (allowed: a, b, c)` at `base/<key>`.
pub fn unknown_keys(
    errors: &mut ConfigErrors,
    obj: &Map<String, Value>,
    base: &str,
    allowed: &[&str],
) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.push(
                pointer::join(base, key),
                format!("unknown field (allowed: {})", allowed.join(", ")),
            );
        }
    }
}

/// The optional string field `key` of `obj` (the object at pointer `base`): `None`
/// when it is absent, and also when it is not a string, after reporting
/// `must be a string, found <type>` at `base/<key>`.
pub fn string<'a>(
    errors: &mut ConfigErrors,
    obj: &'a Map<String, Value>,
    base: &str,
    key: &str,
) -> Option<&'a str> {
    match obj.get(key)? {
        Value::String(s) => Some(s.as_str()),
        other => {
            errors.push(
                pointer::join(base, key),
                format!("must be a string, found {}", json_type_name(other)),
            );
            None
        }
    }
}
