//! Checking one `param.` value of a stored `task_data` without parsing the rest: the
//! per-task check of a condition no index answers (a `~` over distinct values, checked
//! on tens of thousands of tasks for one page). The text is skimmed as bytes to the
//! value at the path; only that value is read. The answer is [`scalar_in_text`]'s on
//! valid JSON (stored texts are); where the skim is unsure (an escaped key), it parses.

use super::{contains_ci, scalar_in_text, scalar_matches, FilterValue, Op, Path, Scalar, Want};

/// Whether the value at `path` in a JSON object text satisfies `op v`: as
/// [`scalar_matches`] on [`scalar_in_text`]'s answer.
pub fn json_matches(path: &Path, op: Op, v: &FilterValue, text: &[u8]) -> bool {
    match value_at(text, path) {
        Ok(Some(span)) => span_matches(span, op, v),
        Ok(None) => false,
        Err(Unsure) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| scalar_in_text(path, t))
            .is_some_and(|s| scalar_matches(op, s.as_scalar(), v)),
    }
}

/// The skim cannot tell; parse instead.
#[derive(Debug)]
struct Unsure;

/// The text of the value at `path`, `None` when the path leads nowhere. A repeated key:
/// the last one counts, as when the object is parsed.
fn value_at<'t>(text: &'t [u8], path: &Path) -> Result<Option<&'t [u8]>, Unsure> {
    let mut span = text;
    for seg in &path.segments {
        let Some(v) = Skim::new(span).member(seg.name.as_bytes())? else {
            return Ok(None);
        };
        span = v;
        if let Some(n) = seg.index {
            let Some(v) = Skim::new(span).element(n)? else {
                return Ok(None);
            };
            span = v;
        }
    }
    Ok(Some(span))
}

/// A scalar's text against `op v`. Strings without escapes and plain integers (whose
/// text is already what `~` searches) are compared as they stand; the rest is parsed.
fn span_matches(span: &[u8], op: Op, v: &FilterValue) -> bool {
    if let Some(inner) = plain_string(span) {
        return scalar_matches(op, Scalar::Str(inner), v);
    }
    if op == Op::Contains {
        if let Some(digits) = plain_integer(span) {
            return contains_ci(digits, &v.lower);
        }
    }
    use serde::de::DeserializeSeed;
    let Ok(text) = std::str::from_utf8(span) else {
        return false;
    };
    let mut de = serde_json::Deserializer::from_str(text);
    Want::At(&[])
        .deserialize(&mut de)
        .ok()
        .flatten()
        .is_some_and(|s| scalar_matches(op, s.as_scalar(), v))
}

/// The contents of a JSON string without escapes.
fn plain_string(span: &[u8]) -> Option<&str> {
    let inner = span.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// A JSON integer that a double holds exactly and [`super::number_text`] prints as
/// written: at most 15 digits, no fraction or exponent, not `-0`.
fn plain_integer(span: &[u8]) -> Option<&str> {
    let digits = span.strip_prefix(b"-").unwrap_or(span);
    let plain = match digits {
        [b'0'] => span.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.len() < 15 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if plain {
        std::str::from_utf8(span).ok()
    } else {
        None
    }
}

/// A position in a JSON text.
struct Skim<'t> {
    b: &'t [u8],
    i: usize,
}

impl<'t> Skim<'t> {
    fn new(b: &'t [u8]) -> Skim<'t> {
        let mut s = Skim { b, i: 0 };
        s.ws();
        s
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), Unsure> {
        if self.peek() != Some(c) {
            return Err(Unsure);
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    /// Past a string; its contents, and whether they hold an escape.
    fn string(&mut self) -> Result<(&'t [u8], bool), Unsure> {
        if self.peek() != Some(b'"') {
            return Err(Unsure);
        }
        let start = self.i + 1;
        let mut escaped = false;
        let mut i = start;
        loop {
            match self.b.get(i) {
                None => return Err(Unsure),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
            }
        }
        self.i = i + 1;
        let s = self.b.get(start..i).ok_or(Unsure)?;
        Ok((s, escaped))
    }

    /// Past one value; its text.
    fn value(&mut self) -> Result<&'t [u8], Unsure> {
        let start = self.i;
        match self.peek().ok_or(Unsure)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek().ok_or(Unsure)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    self.i += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.i += 1;
                }
            }
        }
        let v = self.b.get(start..self.i).ok_or(Unsure)?;
        if v.is_empty() {
            return Err(Unsure);
        }
        self.ws();
        Ok(v)
    }

    /// The value of the last member `name` of the object here; `None` when there is no
    /// such member or no object.
    fn member(&mut self, name: &[u8]) -> Result<Option<&'t [u8]>, Unsure> {
        if self.peek() != Some(b'{') {
            return Ok(None);
        }
        self.eat(b'{')?;
        if self.peek() == Some(b'}') {
            return Ok(None);
        }
        let mut found = None;
        loop {
            let (key, escaped) = self.string()?;
            if escaped {
                return Err(Unsure);
            }
            self.ws();
            self.eat(b':')?;
            let v = self.value()?;
            if key == name {
                found = Some(v);
            }
            match self.peek() {
                Some(b',') => self.eat(b',')?,
                Some(b'}') => return Ok(found),
                _ => return Err(Unsure),
            }
        }
    }

    /// Element `n` of the array here; `None` when it is shorter or no array.
    fn element(&mut self, n: usize) -> Result<Option<&'t [u8]>, Unsure> {
        if self.peek() != Some(b'[') {
            return Ok(None);
        }
        self.eat(b'[')?;
        if self.peek() == Some(b']') {
            return Ok(None);
        }
        for k in 0.. {
            let v = self.value()?;
            if k == n {
                return Ok(Some(v));
            }
            match self.peek() {
                Some(b',') => self.eat(b',')?,
                Some(b']') => return Ok(None),
                _ => return Err(Unsure),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::OwnedScalar;

    const TEXTS: [&str; 6] = [
        r#"{"a": 1, "b": {"c": [true, null, "x\"y", {"d": -0.0}], "e": 2.5e3}, "f": "Ünï"}"#,
        r#"{"a": [[1, 2], {"a": 3}], "b": {}, "c": [], "d": 18446744073709551615}"#,
        r#"{"k\u0061": "escaped key", "a": {"b": {"c": {"d": 1}}}, "x": -7}"#,
        r#"{"a":1,"b":2,"a":"late","c":{"x":1},"c":{"y":2}}"#,
        r#" { "a" : [ 1 , "]}" , { "b" : "{[" } ] , "b" : 0.009000000000000001 , "c":-0 } "#,
        r#"{"x":123456789012345,"y":1234567890123456,"z":-12,"w":0,"v":1e2,"u":"a\\b"}"#,
    ];
    const PATHS: [&str; 29] = [
        "a", "b", "f", "x", "ka", "b.c", "b.e", "b.c[0]", "b.c[1]", "b.c[2]", "b.c[3]", "b.c[3].d",
        "b.c[4]", "a[0]", "a[1]", "a[2]", "a[1].a", "a[1].b", "a[0].a", "d", "a.b.c", "c[0]",
        "b.c.d", "c", "c.x", "c.y", "y", "z", "w",
    ];

    /// Every operator the values can meet, against what the parser's answer gives.
    #[test]
    fn json_matches_agrees_with_the_parser() {
        let values = [
            "1", "2", "7", "-7", "late", "ünï", "23", "12", "0", "x\"y", "100", "e",
        ];
        let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Ge, Op::Contains];
        for text in TEXTS {
            for p in PATHS.iter().chain(&["v", "u"]) {
                let path = Path::parse(p).unwrap();
                let want: Option<OwnedScalar> = scalar_in_text(&path, text);
                for raw in values {
                    let v = FilterValue::new(raw);
                    for op in ops {
                        let expect = want
                            .as_ref()
                            .is_some_and(|s| scalar_matches(op, s.as_scalar(), &v));
                        assert_eq!(
                            json_matches(&path, op, &v, text.as_bytes()),
                            expect,
                            "{p} {op:?} {raw} in {text}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn escaped_keys_are_parsed() {
        let path = Path::parse("ka").unwrap();
        let text = TEXTS[2].as_bytes();
        assert!(value_at(text, &path).is_err());
        assert!(json_matches(
            &path,
            Op::Contains,
            &FilterValue::new("KEY"),
            text
        ));
    }
}
