//! The whole route table: (method, decoded path segments) → a typed [`Endpoint`].
//!
//! Path ids stay raw strings here: upstream authenticates before it validates path
//! parameters (an unauthenticated request with a malformed id gets 401, not 422), so
//! handlers parse them after authentication.

use http::Method;

use super::response::ApiError;

/// Which credential a route takes (v1-identity §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// (N) no credential.
    None,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Health,
    Metrics,
}

impl Endpoint {
    /// Stable name for spans, logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::Health => "health",
            Endpoint::Metrics => "metrics",
        }
    }

    pub fn auth(&self) -> AuthKind {
        match self {
            Endpoint::Health | Endpoint::Metrics => AuthKind::None,
        }
    }
}

/// Methods a path may be served with; HEAD rides on GET (as Starlette does).
const METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Resolves a request to its endpoint, or to 404 / 405 (with the allowed methods).
pub fn route(method: &Method, path: &str) -> Result<Endpoint, ApiError> {
    let segments = split_path(path).ok_or_else(|| ApiError::not_found("Not Found"))?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let effective = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    if let Some(endpoint) = match_route(effective, &segs) {
        return Ok(endpoint);
    }
    let mut allowed: Vec<Method> = METHODS
        .iter()
        .filter(|m| match_route(m, &segs).is_some())
        .cloned()
        .collect();
    if allowed.is_empty() {
        return Err(ApiError::not_found("Not Found"));
    }
    if allowed.contains(&Method::GET) {
        allowed.insert(1, Method::HEAD);
    }
    Err(ApiError::MethodNotAllowed(allowed))
}

/// Splits on `/` first and percent-decodes each segment after, so an encoded `%2F`
/// stays inside its segment. One trailing slash is ignored (D7). Empty inner segments,
/// `.`/`..` and invalid UTF-8 match nothing.
fn split_path(path: &str) -> Option<Vec<String>> {
    let trimmed = path.strip_prefix('/')?;
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    trimmed
        .split('/')
        .map(|raw| {
            let seg = percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .ok()?
                .into_owned();
            (!seg.is_empty() && seg != "." && seg != "..").then_some(seg)
        })
        .collect()
}

/// The route table. Read it top to bottom: one line per route.
fn match_route(method: &Method, segs: &[&str]) -> Option<Endpoint> {
    let endpoint = match (method.as_str(), segs) {
        ("GET", ["health"]) => Endpoint::Health,
        ("GET", ["metrics"]) => Endpoint::Metrics,
        _ => return None,
    };
    Some(endpoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_then_decodes() {
        assert_eq!(
            split_path("/a/b%2Fc/"),
            Some(vec!["a".into(), "b/c".into()])
        );
        assert_eq!(split_path("/"), Some(vec![]));
        assert_eq!(split_path("/a//b"), None);
        assert_eq!(split_path("/a/../b"), None);
        assert_eq!(split_path("/a/%FF"), None);
        assert_eq!(split_path("relative"), None);
    }

    #[test]
    fn not_found_and_method_not_allowed() {
        assert_eq!(route(&Method::GET, "/health").unwrap(), Endpoint::Health);
        assert_eq!(route(&Method::HEAD, "/health/").unwrap(), Endpoint::Health);
        assert!(matches!(
            route(&Method::GET, "/nope"),
            Err(ApiError::NotFound(_))
        ));
        match route(&Method::POST, "/health") {
            Err(ApiError::MethodNotAllowed(m)) => assert_eq!(m, vec![Method::GET, Method::HEAD]),
            other => panic!("expected 405, got {other:?}"),
        }
    }
}
