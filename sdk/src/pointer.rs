//! RFC 6901 JSON Pointer helpers: syntax checks and building paths for field errors.
//!
//! To evaluate a pointer use [`serde_json::Value::pointer`].
//!
//! ```
//! use portcullis_sdk::pointer;
//!
//! assert_eq!(pointer::join("/headers", "X-A/B~C"), "/headers/X-A~1B~0C");
//! assert!(pointer::validate("/data/0/id").is_ok());
//! assert!(pointer::validate("data").is_err());
//! let v = serde_json::json!({"a/b": {"c~d": 1}});
//! assert_eq!(v.pointer("/a~1b/c~0d"), Some(&serde_json::json!(1)));
//! ```

/// Escapes one reference token (`~` → `~0`, `/` → `~1`).
pub fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Appends one (unescaped) reference token to a pointer.
pub fn join(base: &str, token: &str) -> String {
    format!("{base}/{}", escape(token))
}

/// Appends an array index to a pointer.
pub fn join_index(base: &str, index: usize) -> String {
    format!("{base}/{index}")
}

/// Checks RFC 6901 syntax: empty (the whole document) or `/`-prefixed reference
/// tokens in which `~` is only followed by `0` or `1`.
pub fn validate(pointer: &str) -> Result<(), String> {
    if pointer.is_empty() {
        return Ok(());
    }
    if !pointer.starts_with('/') {
        return Err(format!(
            "{pointer:?} is not a JSON Pointer: it must be empty or start with '/'"
        ));
    }
    let bytes = pointer.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
            return Err(format!(
                "{pointer:?} is not a JSON Pointer: '~' must be followed by '0' or '1'"
            ));
        }
    }
    Ok(())
}

/// Decodes a pointer into its unescaped reference tokens (after [`validate`]).
pub fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    validate(pointer)?;
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    Ok(pointer[1..]
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        for ok in ["", "/", "/a", "/a/0", "/~0/~1", "/a b", "//"] {
            assert!(validate(ok).is_ok(), "{ok:?}");
        }
        for bad in ["a", "#/a", "/~", "/~2", "/a~"] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roundtrip_tokens() {
        let p = join(&join("", "a/b"), "~c");
        assert_eq!(p, "/a~1b/~0c");
        assert_eq!(tokens(&p), Ok(vec!["a/b".to_string(), "~c".to_string()]));
        assert_eq!(tokens(""), Ok(vec![]));
        assert_eq!(join_index("/x", 3), "/x/3");
        // `~01` decodes to `~1`, not `/`.
        assert_eq!(tokens("/~01"), Ok(vec!["~1".to_string()]));
    }
}
