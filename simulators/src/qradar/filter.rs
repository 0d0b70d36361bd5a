//! QRadar's `filter` query parameter, parsed and evaluated the way the REST API
//! overview's "Filter syntax" page describes it: comparisons `=`, `!=`, `<>`,
//! `^=`, `>`, `<`, `>=`, `<=`; `in (...)`, `not in (...)`; `between ... and ...`,
//! `not between ... and ...`; `is null`, `is not null`; combined with `and`, `or`,
//! `not` and parentheses (keywords case-insensitive). Values are numbers, quoted
//! strings (`"..."` or `'...'`) or bare words (`status=CLOSED`).
//!
//! Evaluation: a number literal compares numerically with a numeric field, anything
//! else compares as text; an array field matches when any element does; a missing or
//! null field fails every comparison except `is null` (and the negated forms).

use std::cmp::Ordering;
use std::fmt;

use serde_json::Value;

/// A parse error with the character position it was found at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Number(f64),
    Text(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
}

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Compare(String, OpLit),
    In(String, Vec<LiteralValue>),
    Between(String, LiteralValue, LiteralValue),
    IsNull(String),
}

/// A comparison operator with its literal (kept opaque outside this module).
#[derive(Clone, Debug, PartialEq)]
pub struct OpLit(Op, Literal);

/// A literal value (kept opaque outside this module).
#[derive(Clone, Debug, PartialEq)]
pub struct LiteralValue(Literal);

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Number(f64, String),
    Text(String),
    Op(Op),
    LParen,
    RParen,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<(usize, Tok)>, FilterError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |position: usize, message: &str| FilterError {
        position,
        message: message.to_string(),
    };
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((pos, Tok::LParen));
                i += 1;
            }
            ')' => {
                out.push((pos, Tok::RParen));
                i += 1;
            }
            ',' => {
                out.push((pos, Tok::Comma));
                i += 1;
            }
            '"' | '\'' => {
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(pos, "unterminated quoted string")),
                        Some((_, q)) if *q == c => break,
                        Some((_, ch)) => text.push(*ch),
                    }
                    j += 1;
                }
                out.push((pos, Tok::Text(text)));
                i = j + 1;
            }
            '=' => {
                out.push((pos, Tok::Op(Op::Eq)));
                i += 1;
            }
            '!' | '^' => {
                if chars.get(i + 1).map(|(_, c)| *c) == Some('=') {
                    out.push((pos, Tok::Op(Op::Ne)));
                    i += 2;
                } else {
                    return Err(err(pos, "expected '=' after this character"));
                }
            }
            '<' | '>' => {
                let next = chars.get(i + 1).map(|(_, c)| *c);
                let (op, len) = match (c, next) {
                    ('<', Some('=')) => (Op::Le, 2),
                    ('<', Some('>')) => (Op::Ne, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', Some('=')) => (Op::Ge, 2),
                    _ => (Op::Gt, 1),
                };
                out.push((pos, Tok::Op(op)));
                i += len;
            }
            c if c.is_alphanumeric() || "_.:-+/@".contains(c) => {
                let mut word = String::new();
                let mut j = i;
                while let Some((_, ch)) = chars.get(j) {
                    if ch.is_alphanumeric() || "_.:-+/@".contains(*ch) {
                        word.push(*ch);
                        j += 1;
                    } else {
                        break;
                    }
                }
                match word.parse::<f64>() {
                    Ok(n) if n.is_finite() => out.push((pos, Tok::Number(n, word))),
                    _ => out.push((pos, Tok::Ident(word))),
                }
                i = j;
            }
            _ => return Err(err(pos, &format!("unexpected character {c:?}"))),
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn err(&self, message: impl Into<String>) -> FilterError {
        FilterError {
            position: self.pos(),
            message: message.into(),
        }
    }

    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.keyword(kw) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, kw: &str) -> Result<(), FilterError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.err(format!("expected `{kw}`")))
        }
    }

    fn or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.and()?;
        while self.eat_keyword("or") {
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.unary()?;
        while self.eat_keyword("and") {
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, FilterError> {
        if self.eat_keyword("not") {
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.at += 1;
            let inner = self.or()?;
            if self.peek() != Some(&Tok::RParen) {
                return Err(self.err("expected `)`"));
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn literal(&mut self) -> Result<Literal, FilterError> {
        let lit = match self.peek() {
            Some(Tok::Number(n, _)) => Literal::Number(*n),
            Some(Tok::Text(t)) => Literal::Text(t.clone()),
            Some(Tok::Ident(w)) => Literal::Text(w.clone()),
            _ => return Err(self.err("expected a value")),
        };
        self.at += 1;
        Ok(lit)
    }

    fn comparison(&mut self) -> Result<Filter, FilterError> {
        let field = match self.peek() {
            Some(Tok::Ident(w)) if is_field_name(w) => w.clone(),
            _ => return Err(self.err("expected a field name")),
        };
        self.at += 1;
        if let Some(Tok::Op(op)) = self.peek() {
            let op = *op;
            self.at += 1;
            let lit = self.literal()?;
            return Ok(Filter::Compare(field, OpLit(op, lit)));
        }
        if self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            self.expect_keyword("null")?;
            let f = Filter::IsNull(field);
            return Ok(if negated { Filter::Not(Box::new(f)) } else { f });
        }
        let negated = self.eat_keyword("not");
        let f = if self.eat_keyword("in") {
            if self.peek() != Some(&Tok::LParen) {
                return Err(self.err("expected `(` after `in`"));
            }
            self.at += 1;
            let mut values = vec![LiteralValue(self.literal()?)];
            loop {
                match self.peek() {
                    Some(Tok::Comma) => {
                        self.at += 1;
                        values.push(LiteralValue(self.literal()?));
                    }
                    Some(Tok::RParen) => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(self.err("expected `,` or `)` in the list")),
                }
            }
            Filter::In(field, values)
        } else if self.eat_keyword("between") {
            let low = self.literal()?;
            self.expect_keyword("and")?;
            let high = self.literal()?;
            Filter::Between(field, LiteralValue(low), LiteralValue(high))
        } else {
            return Err(self.err("expected a comparison operator, `in`, `between` or `is`"));
        };
        Ok(if negated { Filter::Not(Box::new(f)) } else { f })
    }
}

fn is_field_name(w: &str) -> bool {
    w.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !["and", "or", "not", "in", "between", "is", "null"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(w))
}

impl Filter {
    /// Parses a filter expression.
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        let toks = tokenize(input)?;
        if toks.is_empty() {
            return Err(FilterError {
                position: 0,
                message: "empty filter".into(),
            });
        }
        let mut p = Parser {
            toks,
            at: 0,
            end: input.len(),
        };
        let f = p.or()?;
        if p.at < p.toks.len() {
            return Err(p.err("unexpected text after the expression"));
        }
        Ok(f)
    }

    /// Every field name the expression refers to.
    pub fn fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Filter::And(a, b) | Filter::Or(a, b) => {
                a.collect_fields(out);
                b.collect_fields(out);
            }
            Filter::Not(a) => a.collect_fields(out),
            Filter::Compare(f, _)
            | Filter::In(f, _)
            | Filter::Between(f, _, _)
            | Filter::IsNull(f) => out.push(f),
        }
    }

    /// Whether `item` matches.
    pub fn matches(&self, item: &Value) -> bool {
        match self {
            Filter::And(a, b) => a.matches(item) && b.matches(item),
            Filter::Or(a, b) => a.matches(item) || b.matches(item),
            Filter::Not(a) => !a.matches(item),
            Filter::IsNull(f) => item.get(f).is_none_or(Value::is_null),
            Filter::Compare(f, OpLit(op, lit)) => any_value(item, f, |v| {
                compare(v, lit).is_some_and(|ord| match op {
                    Op::Eq => ord == Ordering::Equal,
                    Op::Ne => ord != Ordering::Equal,
                    Op::Gt => ord == Ordering::Greater,
                    Op::Lt => ord == Ordering::Less,
                    Op::Ge => ord != Ordering::Less,
                    Op::Le => ord != Ordering::Greater,
                })
            }),
            Filter::In(f, values) => any_value(item, f, |v| {
                values
                    .iter()
                    .any(|LiteralValue(l)| compare(v, l) == Some(Ordering::Equal))
            }),
            Filter::Between(f, LiteralValue(low), LiteralValue(high)) => any_value(item, f, |v| {
                compare(v, low).is_some_and(|o| o != Ordering::Less)
                    && compare(v, high).is_some_and(|o| o != Ordering::Greater)
            }),
        }
    }
}

fn any_value(item: &Value, field: &str, test: impl Fn(&Value) -> bool) -> bool {
    match item.get(field) {
        None | Some(Value::Null) => false,
        Some(Value::Array(values)) => values.iter().any(test),
        Some(v) => test(v),
    }
}

fn compare(v: &Value, lit: &Literal) -> Option<Ordering> {
    match (v, lit) {
        (Value::Number(n), Literal::Number(l)) => n.as_f64()?.partial_cmp(l),
        (Value::Number(n), Literal::Text(t)) => Some(n.to_string().as_str().cmp(t.as_str())),
        (Value::String(s), Literal::Text(t)) => Some(s.as_str().cmp(t.as_str())),
        (Value::String(s), Literal::Number(l)) => match s.parse::<f64>() {
            Ok(n) => n.partial_cmp(l),
            Err(_) => None,
        },
        (Value::Bool(b), Literal::Text(t)) => {
            Some(b.to_string().as_str().cmp(&t.to_ascii_lowercase()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(filter: &str, item: &Value) -> bool {
        Filter::parse(filter)
            .unwrap_or_else(|e| panic!("{filter}: {e}"))
            .matches(item)
    }

    #[test]
    fn documented_forms() {
        let o = json!({"id": 5, "status": "CLOSED", "credibility": 4, "magnitude": 3,
            "assigned_to": null, "categories": ["Authentication", "Misc"], "follow_up": true});
        assert!(m("status=CLOSED", &o));
        assert!(m("credibility > 3", &o));
        assert!(m("magnitude < 9", &o));
        assert!(m("id <= 5 and id >= 5", &o));
        assert!(!m("id != 5", &o) && !m("id <> 5", &o) && !m("id ^= 5", &o));
        assert!(m("id in (1001,5,1200)", &o));
        assert!(m("id not in (1001,1002,1003)", &o));
        assert!(m("id between 0 and 5", &o));
        assert!(!m("id not between 0 and 30", &o));
        assert!(m("assigned_to is null", &o));
        assert!(m("status is not null", &o));
        assert!(m("categories = \"Misc\"", &o));
        assert!(m("follow_up = true", &o));
        assert!(m(
            "(status = OPEN or status = 'CLOSED') and not magnitude > 5",
            &o
        ));
        assert!(m("missing is null", &o) && !m("missing = 1", &o));
        assert!(m(
            "status = CLOSED AND id IN (5) OR NOT id BETWEEN 1 AND 9",
            &o
        ));
    }

    #[test]
    fn errors_have_positions() {
        for (filter, position) in [
            ("status = ", 9),
            ("(id = 1", 7),
            ("id = 1 id = 2", 7),
            ("id in 1", 6),
            ("= 3", 0),
            ("id between 1 or 2", 13),
            ("status = 'OPEN", 9),
            ("id ! 3", 3),
            ("", 0),
        ] {
            let e = Filter::parse(filter)
                .err()
                .unwrap_or_else(|| panic!("{filter} parsed"));
            assert_eq!(e.position, position, "{filter}: {e}");
        }
        let f = Filter::parse("a = 1 and (b in (1,2) or not c is null)")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.fields(), ["a", "b", "c"]);
    }
}
