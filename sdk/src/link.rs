//! RFC 8288 `Link` header parsing (web linking), as used for pagination.
//!
//! Handles several links in one field value and over several header lines, quoted
//! and unquoted parameters, RFC 8187 extended parameters (`title*=UTF-8'de'...`),
//! multi-valued space-separated `rel` compared case-insensitively, and relative
//! targets resolved against the request URL (RFC 3986 §5). Parsing is lenient, as
//! RFC 8288 Appendix B asks: a malformed link-value is skipped, not fatal.
//!
//! ```
//! use portcullis_sdk::link;
//! use url::Url;
//!
//! let base = Url::parse("https://api.example.com/v1/items?page=1").unwrap();
//! let links = link::parse_all(
//!     ["</v1/items?page=2>; rel=\"next\"", "<?page=9>; rel=Last"],
//!     Some(&base),
//! );
//! let next = link::find(&links, "next").and_then(|l| l.url.as_ref());
//! assert_eq!(next.map(|u| u.as_str()), Some("https://api.example.com/v1/items?page=2"));
//! assert!(link::find(&links, "last").is_some());
//! ```

use url::Url;

/// One link: a target and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The target URI reference exactly as written between `<` and `>`.
    pub target: String,
    /// The target resolved against the base URL given to the parser (or parsed on its
    /// own when it is absolute); `None` when it cannot be made absolute.
    pub url: Option<Url>,
    /// The relation types of the first `rel` parameter, split on whitespace, case
    /// kept as written (compare with [`Link::has_rel`]). Later `rel` parameters are
    /// ignored, as RFC 8288 §3.3 requires.
    pub rel: Vec<String>,
    /// Every other parameter in order, names lowercased.
    pub params: Vec<LinkParam>,
}

/// One target attribute of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkParam {
    /// Lowercased name, including a trailing `*` for extended parameters.
    pub name: String,
    /// The value with quoting removed; for an extended parameter, the decoded text.
    /// Empty for a parameter without a value.
    pub value: String,
    /// The RFC 8187 parts of an extended (`name*`) parameter, when well formed.
    pub ext: Option<ExtValue>,
}

/// An RFC 8187 `ext-value`: `charset'language'percent-encoded-value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtValue {
    /// Character set as written (`UTF-8` or `ISO-8859-1`).
    pub charset: String,
    /// Language tag as written, possibly empty.
    pub language: String,
    /// The decoded value.
    pub value: String,
}

impl Link {
    /// Whether one of the relation types equals `rel` (ASCII case-insensitively).
    pub fn has_rel(&self, rel: &str) -> bool {
        self.rel.iter().any(|r| r.eq_ignore_ascii_case(rel))
    }

    /// The value of the first parameter named `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.as_str())
    }
}

/// Parses one `Link` field value; targets are resolved only when absolute.
pub fn parse(value: &str) -> Vec<Link> {
    parse_with_base(value, None)
}

/// Parses one `Link` field value, resolving targets against `base` (the request URL).
pub fn parse_with_base(value: &str, base: Option<&Url>) -> Vec<Link> {
    let mut out = Vec::new();
    Parser::new(value).links(base, &mut out);
    out
}

/// Parses every `Link` field value of a response, in order, as one list.
pub fn parse_all<'a, I>(values: I, base: Option<&Url>) -> Vec<Link>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut out = Vec::new();
    for v in values {
        Parser::new(v).links(base, &mut out);
    }
    out
}

/// The first link with relation type `rel` (case-insensitive).
pub fn find<'a>(links: &'a [Link], rel: &str) -> Option<&'a Link> {
    links.iter().find(|l| l.has_rel(rel))
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

struct Parser {
    cs: Vec<char>,
    i: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        Parser {
            cs: s.chars().collect(),
            i: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.cs.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.i += 1;
        }
    }

    /// Skips to just before the next top-level comma (outside quotes and `<>`).
    fn skip_to_comma(&mut self) {
        let mut in_angle = false;
        while let Some(c) = self.peek() {
            match c {
                '<' if !in_angle => in_angle = true,
                '>' if in_angle => in_angle = false,
                '"' if !in_angle => {
                    self.i += 1;
                    self.quoted_rest();
                    continue;
                }
                ',' if !in_angle => return,
                _ => {}
            }
            self.i += 1;
        }
    }

    /// Reads a quoted-string whose opening quote was consumed.
    fn quoted_rest(&mut self) -> String {
        let mut v = String::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '"' => return v,
                '\\' => {
                    if let Some(n) = self.peek() {
                        v.push(n);
                        self.i += 1;
                    }
                }
                _ => v.push(c),
            }
        }
        v
    }

    fn links(&mut self, base: Option<&Url>, out: &mut Vec<Link>) {
        loop {
            while self.peek().is_some_and(|c| is_ws(c) || c == ',') {
                self.i += 1;
            }
            let Some(c) = self.peek() else { return };
            if c != '<' {
                self.skip_to_comma();
                continue;
            }
            self.i += 1;
            let start = self.i;
            while self.peek().is_some_and(|c| c != '>') {
                self.i += 1;
            }
            if self.peek().is_none() {
                return; // unterminated target: nothing usable follows
            }
            let target: String = self.cs[start..self.i]
                .iter()
                .filter(|c| !is_ws(**c))
                .collect();
            self.i += 1;
            let (rel, params) = self.params();
            let url = match base {
                Some(b) => b.join(&target).ok(),
                None => Url::parse(&target).ok(),
            };
            out.push(Link {
                target,
                url,
                rel: rel.unwrap_or_default(),
                params,
            });
        }
    }

    fn params(&mut self) -> (Option<Vec<String>>, Vec<LinkParam>) {
        let mut rel = None;
        let mut params = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some(',') => break,
                Some(';') => self.i += 1,
                Some(_) => {
                    self.skip_to_comma();
                    break;
                }
            }
            self.skip_ws();
            let start = self.i;
            while self
                .peek()
                .is_some_and(|c| !is_ws(c) && !matches!(c, '=' | ';' | ','))
            {
                self.i += 1;
            }
            let name: String = self.cs[start..self.i]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            self.skip_ws();
            let mut value = String::new();
            if self.peek() == Some('=') {
                self.i += 1;
                self.skip_ws();
                if self.peek() == Some('"') {
                    self.i += 1;
                    value = self.quoted_rest();
                } else {
                    let vs = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| !is_ws(c) && !matches!(c, ';' | ','))
                    {
                        self.i += 1;
                    }
                    value = self.cs[vs..self.i].iter().collect();
                }
            }
            if name.is_empty() {
                continue;
            }
            if name == "rel" {
                if rel.is_none() {
                    rel = Some(
                        value
                            .split(is_ws)
                            .filter(|r| !r.is_empty())
                            .map(str::to_string)
                            .collect(),
                    );
                }
                continue;
            }
            let ext = if name.ends_with('*') {
                decode_ext_value(&value)
            } else {
                None
            };
            if let Some(e) = &ext {
                value = e.value.clone();
            }
            params.push(LinkParam { name, value, ext });
        }
        (rel, params)
    }
}

/// Decodes an RFC 8187 ext-value; `None` when it is not of that form.
fn decode_ext_value(raw: &str) -> Option<ExtValue> {
    let mut parts = raw.splitn(3, '\'');
    let charset = parts.next()?;
    let language = parts.next()?;
    let encoded = parts.next()?;
    if charset.is_empty() {
        return None;
    }
    let bytes = percent_decode(encoded)?;
    let value = if charset.eq_ignore_ascii_case("utf-8") {
        String::from_utf8(bytes).ok()?
    } else if charset.eq_ignore_ascii_case("iso-8859-1") {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some(ExtValue {
        charset: charset.to_string(),
        language: language.to_string(),
        value,
    })
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn conformance() -> Value {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/conformance/other/link_header_rfc8288_github_examples.json"
        );
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON in {path}: {e}"))
    }

    #[test]
    fn rfc8288_and_github_examples() {
        let doc = conformance();
        let cases = doc["cases"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(cases.len() >= 9, "expected the conformance cases");
        for case in cases {
            let id = case["id"].as_str().unwrap_or("?");
            let header = case["header"].as_str().unwrap_or_default();
            let links = parse(header);
            let expected = case["expected"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert_eq!(links.len(), expected.len(), "{id}: number of links");
            for (link, exp) in links.iter().zip(expected) {
                assert_eq!(
                    Some(link.target.as_str()),
                    exp["target"].as_str(),
                    "{id}: target"
                );
                let rel: Vec<&str> = exp["rel"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                assert_eq!(link.rel, rel, "{id}: rel");
                let Some(obj) = exp.as_object() else { continue };
                for (key, want) in obj {
                    if key == "target" || key == "rel" {
                        continue;
                    }
                    let got = link
                        .params
                        .iter()
                        .find(|p| p.name == *key)
                        .unwrap_or_else(|| panic!("{id}: missing param {key}"));
                    match want {
                        Value::String(s) => assert_eq!(&got.value, s, "{id}: {key}"),
                        Value::Object(o) => {
                            let ext = got
                                .ext
                                .as_ref()
                                .unwrap_or_else(|| panic!("{id}: {key} not decoded"));
                            assert_eq!(Some(ext.charset.as_str()), o["charset"].as_str());
                            assert_eq!(Some(ext.language.as_str()), o["language"].as_str());
                            assert_eq!(Some(ext.value.as_str()), o["value"].as_str());
                            assert_eq!(got.value, ext.value);
                        }
                        other => panic!("{id}: unexpected expectation {other}"),
                    }
                }
                // Absolute targets resolve on their own; relative ones need a base.
                let absolute = link.target.starts_with("http");
                assert_eq!(link.url.is_some(), absolute, "{id}: url");
            }
        }
    }

    #[test]
    fn github_next_with_query_preserved() {
        let doc = conformance();
        let case = doc["cases"]
            .as_array()
            .and_then(|c| {
                c.iter()
                    .find(|c| c["id"] == "github-captured-user-repos-per_page")
            })
            .cloned()
            .unwrap_or(Value::Null);
        let links = parse(case["header"].as_str().unwrap_or_default());
        let next = find(&links, "next").and_then(|l| l.url.clone());
        assert_eq!(
            next.map(String::from).as_deref(),
            Some("https://api.github.com/user/repos?page=3&per_page=100")
        );
    }

    #[test]
    fn relative_targets_resolve_against_request_url() {
        let base = Url::parse("https://example.com/TheBook/chapter3?x=1").ok();
        let links = parse_with_base(
            "</TheBook/chapter2>; rel=previous, <chapter4>; rel=next, <?page=2>; rel=\"last\", <//cdn.example.net/a>; rel=alternate",
            base.as_ref(),
        );
        let urls: Vec<String> = links
            .iter()
            .map(|l| l.url.as_ref().map(|u| u.to_string()).unwrap_or_default())
            .collect();
        assert_eq!(
            urls,
            [
                "https://example.com/TheBook/chapter2",
                "https://example.com/TheBook/chapter4",
                "https://example.com/TheBook/chapter3?page=2",
                "https://cdn.example.net/a",
            ]
        );
    }

    #[test]
    fn several_header_values_and_case_insensitive_rel() {
        let links = parse_all(
            [
                "<https://a.test/1>; rel=\"prev\"",
                "<https://a.test/3>; REL=\"Next Last\"; type=text/html",
            ],
            None,
        );
        assert_eq!(links.len(), 2);
        let next = find(&links, "NEXT").map(|l| l.target.as_str());
        assert_eq!(next, Some("https://a.test/3"));
        assert!(links[1].has_rel("last"));
        assert_eq!(links[1].param("TYPE"), Some("text/html"));
        assert!(find(&links, "first").is_none());
    }

    #[test]
    fn odd_but_valid_syntax() {
        // Commas and semicolons inside the target and inside quoted values.
        let links = parse(
            "<https://a.test/x?a=1,2;b>; rel=\"next\"; title=\"a, b; \\\"c\\\"\" ,\t<https://a.test/y>;rel=prev;crossorigin",
        );
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].target, "https://a.test/x?a=1,2;b");
        assert_eq!(links[0].param("title"), Some("a, b; \"c\""));
        assert_eq!(links[1].rel, ["prev"]);
        assert_eq!(links[1].param("crossorigin"), Some(""));
        // Only the first rel counts.
        let l = parse("<a>; rel=next; rel=prev");
        assert_eq!(l[0].rel, ["next"]);
        // ISO-8859-1 extended value.
        let l = parse("<a>; title*=iso-8859-1'en'%A3%20rates");
        assert_eq!(l[0].param("title*"), Some("\u{a3} rates"));
    }

    #[test]
    fn malformed_values_are_skipped() {
        assert!(parse("").is_empty());
        assert!(parse("garbage").is_empty());
        assert!(parse("<unterminated; rel=next").is_empty());
        let links = parse("junk; rel=x, <https://a.test/ok>; rel=next, \"q,uoted\"");
        assert_eq!(links.len(), 1);
        assert!(links[0].has_rel("next"));
        // A bad extended value is kept raw, not decoded.
        let l = parse("<a>; title*=nonsense");
        assert_eq!(l[0].param("title*"), Some("nonsense"));
        assert!(l[0].params[0].ext.is_none());
        // A link without rel has no relation types.
        assert!(parse("<https://a.test/>")[0].rel.is_empty());
    }
}
