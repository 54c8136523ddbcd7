//! Reading requests: bounded, timed bodies (gzip included), JSON into typed structs with
//! FastAPI-shaped 422s, and query strings.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::HeaderMap;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body as _, Incoming};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::response::{echo, ApiError, ValidationItem, ECHO_BYTES};
use crate::domain::limits;

/// Body limit of login and registration, and of requests whose authentication failed:
/// far above their largest legitimate body (an e-mail, a 1 KiB password and a display
/// name), small enough that unauthenticated clients cannot make the server buffer much.
pub const PRE_AUTH_BODY_BYTES: u64 = 8 * 1024;

/// Limits applied to every body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: u64,
    pub read_timeout: Duration,
}

/// Reads the whole body: refused early on `Content-Length`, enforced while streaming
/// (chunked bodies have no declared length), bounded in time, and gunzipped with the
/// same limit on the decoded size (no decompression bombs).
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limits: BodyLimits,
) -> Result<Bytes, ApiError> {
    if body.size_hint().lower() > limits.max_bytes {
        return Err(ApiError::PayloadTooLarge);
    }
    let limited = Limited::new(body, limits.max_bytes as usize);
    let collected = match tokio::time::timeout(limits.read_timeout, limited.collect()).await {
        Err(_) => return Err(ApiError::RequestTimeout),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::PayloadTooLarge)
        }
        Ok(Err(e)) => {
            return Err(ApiError::BadRequest(format!(
                "Cannot read request body: {e}"
            )))
        }
        Ok(Ok(c)) => c.to_bytes(),
    };
    decode_content(headers, collected, limits.max_bytes)
}

fn decode_content(headers: &HeaderMap, raw: Bytes, max: u64) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => gunzip(&raw, max),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Encoding: {other}"
        ))),
    }
}

fn gunzip(raw: &[u8], max: u64) -> Result<Bytes, ApiError> {
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(raw);
    decoder
        .take(max + 1)
        .read_to_end(&mut out)
        .map_err(|_| ApiError::BadRequest("Malformed gzip request body".into()))?;
    if out.len() as u64 > max {
        return Err(ApiError::PayloadTooLarge);
    }
    Ok(Bytes::from(out))
}

/// FastAPI parses the body as JSON when the type is JSON or absent, and refuses others.
fn content_type_is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime.is_empty()
        || mime == "application/json"
        || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// The body as JSON, before typing: `None` when empty, 422 `json_invalid` when broken.
pub fn parse_json_value(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !content_type_is_json(headers) {
        return Err(ApiError::Validation(vec![ValidationItem::new(
            "model_attributes_type",
            vec![json!("body")],
            "Input should be a valid dictionary or object to extract fields from",
            json!(String::from_utf8_lossy(&body[..body.len().min(ECHO_BYTES)])),
        )]));
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        ApiError::Validation(vec![ValidationItem {
            kind: "json_invalid".into(),
            loc: vec![
                json!("body"),
                json!(error_offset(body, e.line(), e.column())),
            ],
            msg: "JSON decode error".into(),
            input: json!({}),
        }])
    })
}

/// FastAPI reports where JSON broke as a 0-based offset into the document; serde gives
/// a 1-based line and column.
fn error_offset(body: &[u8], line: usize, column: usize) -> usize {
    let before: usize = body
        .split(|b| *b == b'\n')
        .take(line.saturating_sub(1))
        .map(|l| l.len() + 1)
        .sum();
    before + column.saturating_sub(1)
}

/// Types a JSON value in place (no copy of the body), naming the failing field path in
/// the 422.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let mut loc = vec![json!("body")];
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                serde_path_to_error::Segment::Enum { variant } => loc.push(json!(variant)),
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        let inner = err.into_inner().to_string();
        let item = match inner.strip_prefix("missing field `") {
            Some(rest) => {
                loc.push(json!(rest.trim_end_matches('`')));
                ValidationItem::new("missing", loc, "Field required", echo(value))
            }
            None => ValidationItem::new("value_error", loc, inner, echo(value)),
        };
        ApiError::Validation(vec![item])
    })
}

/// A 422 for one query or path parameter.
pub fn invalid_param(place: &str, name: &str, kind: &str, msg: &str, input: &str) -> ApiError {
    ApiError::Validation(vec![ValidationItem::new(
        kind,
        vec![json!(place), json!(name)],
        msg,
        json!(input),
    )])
}

/// pydantic's `string_too_long` entry for a string at `loc` over `max` characters.
pub fn string_too_long(loc: Vec<Value>, value: &str, max: usize) -> Option<ValidationItem> {
    limits::too_long(value, max).then(|| {
        ValidationItem::new(
            "string_too_long",
            loc,
            format!("String should have at most {max} characters"),
            json!(limits::truncate_bytes(value, ECHO_BYTES)),
        )
    })
}

/// [`string_too_long`] for the top-level body field `field`.
pub fn too_long(field: &str, value: &str, max: usize) -> Option<ValidationItem> {
    string_too_long(vec![json!("body"), json!(field)], value, max)
}

/// [`string_too_long`] for each item of the body list `field`.
pub fn items_too_long(field: &str, items: &[String], max: usize) -> Vec<ValidationItem> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, v)| string_too_long(vec![json!("body"), json!(field), json!(i)], v, max))
        .collect()
}

/// [`too_long`] for each present field, as `(name, value, max)`.
pub fn fields_too_long(fields: &[(&str, Option<&str>, usize)]) -> Vec<ValidationItem> {
    fields
        .iter()
        .filter_map(|(name, value, max)| value.and_then(|v| too_long(name, v, *max)))
        .collect()
}

/// One 422 carrying every collected error, or nothing (FastAPI lists them all).
pub fn reject(errors: Vec<ValidationItem>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// A path segment that must be a UUID (FastAPI: 422 `uuid_parsing`, never 404).
pub fn path_uuid(name: &str, raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| {
        invalid_param(
            "path",
            name,
            "uuid_parsing",
            "Input should be a valid UUID",
            raw,
        )
    })
}

/// Comma-separated items, trimmed, empty ones dropped.
pub fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Decoded query parameters, in order; repeated keys kept.
#[derive(Debug, Default, Clone)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (form_decode(k), form_decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The last value of `name` (FastAPI keeps the last one for scalar parameters).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A comma-separated parameter (`include_assets=a,b`, `highlight=…`): trimmed
    /// items, empty ones dropped; none when absent.
    pub fn list(&self, name: &str) -> Vec<String> {
        comma_list(self.get(name).unwrap_or(""))
    }

    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An integer parameter within `min..=max`, else the FastAPI-style 422.
    pub fn int_in(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        let n: i64 = raw.trim().parse().map_err(|_| {
            invalid_param(
                "query",
                name,
                "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer",
                raw,
            )
        })?;
        if n < min {
            return Err(invalid_param(
                "query",
                name,
                "greater_than_equal",
                &format!("Input should be greater than or equal to {min}"),
                raw,
            ));
        }
        if n > max {
            return Err(invalid_param(
                "query",
                name,
                "less_than_equal",
                &format!("Input should be less than or equal to {max}"),
                raw,
            ));
        }
        Ok(n)
    }

    /// A boolean parameter as pydantic reads it.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        let Some(raw) = self.get(name) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
            "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
            _ => Err(invalid_param(
                "query",
                name,
                "bool_parsing",
                "Input should be a valid boolean, unable to interpret input",
                raw,
            )),
        }
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, then percent-decoding.
fn form_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decodes_and_keeps_last() {
        let q = Query::parse(Some("a=1&b=x+y%2Fz&a=2&flag"));
        assert_eq!(q.get("a"), Some("2"));
        assert_eq!(q.get("b"), Some("x y/z"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get_all("a").collect::<Vec<_>>(), vec!["1", "2"]);
        assert!(q.int_in("a", 0, 0, 1).is_err());
        assert_eq!(q.int_in("missing", 5, 0, 10).unwrap(), 5);
    }

    #[test]
    fn broken_json_position_is_a_zero_based_offset() {
        let headers = HeaderMap::new();
        let loc = |body: &[u8]| match parse_json_value(&headers, body) {
            Err(ApiError::Validation(items)) => items[0].loc.clone(),
            other => panic!("expected 422, got {other:?}"),
        };
        assert_eq!(loc(b"{\"a\": }"), vec![json!("body"), json!(6)]);
        assert_eq!(loc(b"{\n\"a\": x}"), vec![json!("body"), json!(7)]);
    }

    #[test]
    fn gzip_limit_applies_to_decoded_size() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&vec![b'a'; 10_000]).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 1_000);
        assert!(matches!(gunzip(&gz, 1_000), Err(ApiError::PayloadTooLarge)));
        assert_eq!(gunzip(&gz, 10_000).unwrap().len(), 10_000);
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(ApiError::BadRequest(_))
        ));
    }
}
