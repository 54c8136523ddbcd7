//! CORS (D22): allowed origins come from `http.cors_origins` (none by default, so no
//! CORS headers at all). Preflights are answered before routing, as Starlette's
//! middleware does; credentials are allowed, any method and header may be requested.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use super::response::{json_response, HttpResponse};

pub struct Cors {
    origins: Vec<String>,
    any: bool,
}

impl Cors {
    pub fn new(origins: &[String]) -> Option<Cors> {
        let origins: Vec<String> = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() {
            return None;
        }
        Some(Cors {
            any: origins.iter().any(|o| o == "*"),
            origins,
        })
    }

    fn allows(&self, origin: &str) -> bool {
        self.any || self.origins.iter().any(|o| o == origin)
    }

    /// A preflight gets its whole answer here; `None` means "not a preflight".
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<HttpResponse> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        let requested = headers.get(header::ACCESS_CONTROL_REQUEST_METHOD)?;
        if !self.allows(origin) {
            return Some(json_response(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({"detail": "Disallowed CORS origin"}),
            ));
        }
        let mut resp = Response::new(Full::new(Bytes::from_static(b"OK")));
        let h = resp.headers_mut();
        self.allow_origin(h, origin);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, requested.clone());
        if let Some(req_headers) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req_headers.clone());
        }
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        Some(resp)
    }

    /// Headers added to an ordinary answer for an allowed origin.
    pub fn decorate(&self, request_headers: &HeaderMap, resp: &mut HttpResponse) {
        let Some(origin) = request_headers
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
        else {
            return;
        };
        if self.allows(origin) {
            self.allow_origin(resp.headers_mut(), origin);
        }
    }

    fn allow_origin(&self, h: &mut HeaderMap, origin: &str) {
        // With credentials allowed, the origin is echoed (a literal `*` is not valid then).
        if let Ok(v) = HeaderValue::from_str(origin) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        }
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}
