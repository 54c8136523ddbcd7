//! Static files compiled into the binary and served under content-hashed names with
//! `immutable` caching (ui.md §3.1): a new build changes the name, never the content
//! behind a name, so browsers never see a stale file.

use bytes::Bytes;
use http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use http::Response;
use http_body_util::Full;

use crate::http::response::{ApiError, HttpResponse};

/// (logical name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("static/favicon.svg"),
    ),
];

struct Asset {
    logical: &'static str,
    served: String,
    content_type: &'static str,
    bytes: &'static [u8],
}

pub struct Assets {
    files: Vec<Asset>,
}

impl Assets {
    pub fn new() -> Assets {
        let files = FILES
            .iter()
            .map(|(logical, content_type, bytes)| Asset {
                logical,
                served: hashed_name(logical, bytes),
                content_type,
                bytes,
            })
            .collect();
        Assets { files }
    }

    /// The URL of a file by its logical name (`app.css` → `/static/app.1a2b3c4d5e.css`).
    pub fn url(&self, logical: &str) -> String {
        match self.files.iter().find(|a| a.logical == logical) {
            Some(a) => format!("/static/{}", a.served),
            None => format!("/static/{logical}"),
        }
    }
}

impl Default for Assets {
    fn default() -> Self {
        Assets::new()
    }
}

/// `name.<first 10 hex digits of SHA-256>.ext`.
fn hashed_name(logical: &str, bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = digest.as_ref()[..5]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    match logical.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hex}.{ext}"),
        None => format!("{logical}.{hex}"),
    }
}

/// `GET /static/{name}`: only the current hashed names exist.
pub fn serve(assets: &Assets, name: &str) -> Result<HttpResponse, ApiError> {
    let asset = assets
        .files
        .iter()
        .find(|a| a.served == name)
        .ok_or_else(|| ApiError::not_found("Not Found"))?;
    let mut resp = Response::new(Full::new(Bytes::from_static(asset.bytes)));
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(resp)
}
