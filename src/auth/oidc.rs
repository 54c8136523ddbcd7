//! OIDC mode (D12): tokens from an external identity provider, verified against its
//! JWKS. The JWKS comes from `oidc.jwks_file` (air-gapped installs) or is fetched from
//! `oidc.jwks_url` (default `{issuer}/protocol/openid-connect/certs`), cached, and
//! re-read when a token names an unknown key, at most once per 30 s.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::jwt::{verify_oidc_rs256, Jwks, OidcClaims, TokenError};
use crate::clock;
use crate::config::OidcConfig;

/// How long a fetched JWKS is trusted before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// At most one forced re-fetch (unknown `kid`) per this interval (D12).
const FORCED_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Source {
    File(PathBuf),
    Url(String),
}

struct Cache {
    jwks: Option<(std::sync::Arc<Jwks>, Instant)>,
    last_forced: Option<Instant>,
}

pub struct OidcVerifier {
    issuers: Vec<String>,
    audiences: Vec<String>,
    source: Source,
    cache: Mutex<Cache>,
}

impl OidcVerifier {
    pub fn from_config(cfg: &OidcConfig) -> OidcVerifier {
        let mut issuers = vec![cfg.issuer_url.clone()];
        if let Some(ext) = cfg
            .external_issuer_url
            .as_ref()
            .filter(|e| **e != cfg.issuer_url)
        {
            issuers.push(ext.clone());
        }
        let audiences = cfg
            .audience
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(path), _) => Source::File(path.clone()),
            (None, Some(url)) => Source::Url(url.clone()),
            (None, None) => Source::Url(format!(
                "{}/protocol/openid-connect/certs",
                cfg.issuer_url.trim_end_matches('/')
            )),
        };
        OidcVerifier {
            issuers,
            audiences,
            source,
            cache: Mutex::new(Cache {
                jwks: None,
                last_forced: None,
            }),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<OidcClaims, TokenError> {
        let jwks = self.jwks(false).await?;
        let now = clock::now_micros() / 1_000_000;
        match verify_oidc_rs256(token, &jwks, now, &self.issuers, &self.audiences) {
            Err(e) if e.unknown_kid().is_some() && self.may_force_refetch() => {
                let jwks = self.jwks(true).await?;
                verify_oidc_rs256(token, &jwks, now, &self.issuers, &self.audiences)
            }
            other => other,
        }
    }

    fn may_force_refetch(&self) -> bool {
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        let allowed = cache
            .last_forced
            .is_none_or(|t| t.elapsed() >= FORCED_REFETCH_INTERVAL);
        if allowed {
            cache.last_forced = Some(Instant::now());
        }
        allowed
    }

    async fn jwks(&self, force: bool) -> Result<std::sync::Arc<Jwks>, TokenError> {
        if !force {
            let cache = match self.cache.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            if let Some((jwks, at)) = &cache.jwks {
                if at.elapsed() < CACHE_TTL {
                    return Ok(jwks.clone());
                }
            }
        }
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path).await.map_err(|e| {
                tracing::error!(path = %path.display(), error = %e, "cannot read oidc.jwks_file");
                TokenError::JwksUnavailable
            })?,
            Source::Url(url) => fetch(url).await.map_err(|e| {
                tracing::error!(url = %url, error = %e, "JWKS fetch failed");
                TokenError::JwksUnavailable
            })?,
        };
        let jwks = std::sync::Arc::new(Jwks::from_json(&bytes).map_err(|e| {
            tracing::error!(error = %e, "the identity provider's JWKS is not valid");
            TokenError::JwksUnavailable
        })?);
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        cache.jwks = Some((jwks.clone(), Instant::now()));
        Ok(jwks)
    }
}

/// GET over plain HTTP (the usual in-cluster/loopback IdP address). HTTPS issuers are
/// served from `oidc.jwks_file` until an HTTPS client is added.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;

    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// JWKS URLs can be fetched; use oidc.jwks_file for https".into());
    }
    let host = uri.host().ok_or("URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let work = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let req = http::Request::get(path)
            .header(http::header::HOST, format!("{host}:{port}"))
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let body = http_body_util::Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| "timed out".to_string())?
}
