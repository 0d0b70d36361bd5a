//! A reader for the Tenzir TQL record notation of the expected-output files
//! (`{ key: value, ... }`, quoted strings with JSON escapes, bare scalars such as
//! `42`, `192.0.2.1`, `fd00::555`, `5s`). Bare scalars are returned as strings
//! holding their text, so that values compare as the text Tenzir printed.

use serde_json::{Map, Value};

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Value {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = Map::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Value::Object(m);
                    }
                    let start = self.i;
                    while self.s.get(self.i).is_some_and(|&b| b != b':') {
                        self.i += 1;
                    }
                    let key = String::from_utf8_lossy(&self.s[start..self.i])
                        .trim()
                        .to_string();
                    self.i += 1;
                    let v = self.value();
                    m.insert(key, v);
                    self.ws();
                    if self.s.get(self.i) == Some(&b',') {
                        self.i += 1;
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Value::Array(a);
                    }
                    a.push(self.value());
                    self.ws();
                    if self.s.get(self.i) == Some(&b',') {
                        self.i += 1;
                    }
                }
            }
            Some(b'"') => {
                let start = self.i;
                self.i += 1;
                while let Some(&b) = self.s.get(self.i) {
                    self.i += 1;
                    match b {
                        b'\\' => self.i += 1,
                        b'"' => break,
                        _ => {}
                    }
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("TQL string {text}: {e}"))
            }
            Some(_) => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|&b| !matches!(b, b',' | b'\n' | b'}' | b']'))
                {
                    self.i += 1;
                }
                Value::String(
                    String::from_utf8_lossy(&self.s[start..self.i])
                        .trim()
                        .to_string(),
                )
            }
            None => panic!("TQL text ended early"),
        }
    }
}

/// Every top-level record of a TQL file (non-record lines such as diagnostics are
/// skipped).
pub(crate) fn records(text: &str) -> Vec<Value> {
    let mut r = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        r.ws();
        match r.s.get(r.i) {
            None => return out,
            Some(b'{') => out.push(r.value()),
            Some(_) => {
                while r.s.get(r.i).is_some_and(|&b| b != b'\n') {
                    r.i += 1;
                }
            }
        }
    }
}

#[test]
fn reads_tql() {
    let v = records(
        "warning: x\n{\n  a: 1,\n  b: \"x\\\"y\",\n  c: fd00::555,\n  d: {\n    e: [\n      1,\n      \"two\",\n    ],\n  },\n}\n{\n  z: {},\n}\n",
    );
    assert_eq!(
        v,
        vec![
            serde_json::json!({"a": "1", "b": "x\"y", "c": "fd00::555", "d": {"e": ["1", "two"]}}),
            serde_json::json!({"z": {}})
        ]
    );
}
