//! OIDC mode (D12): tokens from an external identity provider, verified against its
//! JWKS. The JWKS comes from `oidc.jwks_file` (air-gapped installs) or is fetched from
//! `oidc.jwks_url` (default `{issuer}/protocol/openid-connect/certs`) over http or https,
//! cached, and re-read when a token names an unknown key, at most once per 30 s.
//!
//! HTTPS trusts the system CA store (rustls-native-certs), or exactly the certificates of
//! `oidc.ca_file` when set (a private CA). See docs/oidc.md.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::api_key;
use super::jwt::{verify_oidc_rs256, Jwks, OidcClaims, TokenError};
use super::oidc_login::{LoginClient, LoginError};
use crate::clock;
use crate::config::OidcConfig;

/// How long a fetched JWKS is trusted before it is fetched again.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// At most one forced re-fetch (unknown `kid`) per this interval (D12).
const FORCED_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed fetch, requests fail at once for this long instead of each waiting for
/// its own fetch: an identity-provider outage must not queue every request.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// A JWKS is a few KiB; anything far larger is not one.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// Why OIDC mode cannot start: reported at server start, never per request.
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    #[error("oidc.jwks_url {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("oidc.ca_file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error(
        "oidc.jwks_url is https but the system CA store has no usable certificates; \
         install the CA bundle or set oidc.ca_file"
    )]
    NoRoots,
    #[error("TLS client setup failed: {0}")]
    Tls(String),
}

/// Where a JWKS URL points, parsed once at start.
pub(crate) struct UrlTarget {
    url: String,
    /// Host for the TCP connection (IPv6 literals without brackets).
    host: String,
    port: u16,
    /// `Host` header value.
    authority: String,
    path: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

enum Source {
    File(PathBuf),
    Url(Box<UrlTarget>),
}

#[derive(Default)]
struct Cache {
    jwks: Option<(Arc<Jwks>, Instant)>,
    last_forced: Option<Instant>,
    last_failure: Option<Instant>,
}

pub struct OidcVerifier {
    issuers: Vec<String>,
    audiences: Vec<String>,
    source: Source,
    cache: Mutex<Cache>,
    /// One fetch at a time: concurrent requests with a cold cache share its result.
    fetching: tokio::sync::Mutex<()>,
    /// The web UI's sign-in through the provider (src/auth/oidc_login.rs).
    pub login: LoginClient,
}

impl OidcVerifier {
    pub fn from_config(cfg: &OidcConfig) -> Result<OidcVerifier, OidcSetupError> {
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
        let ca_file = cfg.ca_file.as_deref();
        let source = match (&cfg.jwks_file, &cfg.jwks_url) {
            (Some(path), _) => Source::File(path.clone()),
            (None, url) => {
                let url = url.clone().unwrap_or_else(|| {
                    format!(
                        "{}/protocol/openid-connect/certs",
                        cfg.issuer_url.trim_end_matches('/')
                    )
                });
                let target = url_target(&url, || tls_connector(ca_file))?;
                if !target.is_https() && !target.is_loopback() {
                    tracing::warn!(
                        url,
                        "oidc.jwks_url is plain http: anyone on the network path could \
                         substitute signing keys; prefer https"
                    );
                }
                Source::Url(Box::new(target))
            }
        };
        Ok(OidcVerifier {
            issuers,
            audiences,
            source,
            cache: Mutex::new(Cache::default()),
            fetching: tokio::sync::Mutex::new(()),
            login: LoginClient::from_config(cfg),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<OidcClaims, TokenError> {
        self.verify_for(token, &self.audiences).await
    }

    /// An ID token from the UI's sign-in: signature, issuer and expiry as [`Self::verify`],
    /// but `aud` must name the UI's client (an ID token always has one), an `azp` must be
    /// that client too (OIDC Core §3.1.3.7), and `nonce` must be this attempt's.
    pub async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<OidcClaims, LoginError> {
        let client = &self.login.client_id;
        let claims = self
            .verify_for(token, std::slice::from_ref(client))
            .await
            .map_err(|e| LoginError::IdToken(e.to_string()))?;
        if !claims.aud.contains(client) {
            return Err(LoginError::IdToken(format!(
                "its audience does not name the client {client:?}"
            )));
        }
        if let Some(azp) = claims.raw.get("azp") {
            if azp.as_str() != Some(client.as_str()) {
                return Err(LoginError::IdToken(format!(
                    "it was issued to another client (azp {azp})"
                )));
            }
        }
        let sent = claims
            .raw
            .get("nonce")
            .and_then(|n| n.as_str())
            .unwrap_or("");
        if !api_key::digests_equal(&api_key::hash(sent), &api_key::hash(nonce)) {
            return Err(LoginError::IdToken(
                "its nonce is not this sign-in's".into(),
            ));
        }
        Ok(claims)
    }

    async fn verify_for(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<OidcClaims, TokenError> {
        let jwks = self.jwks(false).await?;
        let now = clock::now_micros() / 1_000_000;
        match verify_oidc_rs256(token, &jwks, now, &self.issuers, audiences) {
            Err(e) if e.unknown_kid().is_some() && self.may_force_refetch() => {
                let jwks = self.jwks(true).await?;
                verify_oidc_rs256(token, &jwks, now, &self.issuers, audiences)
            }
            other => other,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        }
    }

    fn may_force_refetch(&self) -> bool {
        let mut cache = self.cache();
        let allowed = cache
            .last_forced
            .is_none_or(|t| t.elapsed() >= FORCED_REFETCH_INTERVAL);
        if allowed {
            cache.last_forced = Some(Instant::now());
        }
        allowed
    }

    fn fresh(&self) -> Option<Arc<Jwks>> {
        match &self.cache().jwks {
            Some((jwks, at)) if at.elapsed() < CACHE_TTL => Some(jwks.clone()),
            _ => None,
        }
    }

    async fn jwks(&self, force: bool) -> Result<Arc<Jwks>, TokenError> {
        if !force {
            if let Some(jwks) = self.fresh() {
                return Ok(jwks);
            }
        }
        let _one_fetch = self.fetching.lock().await;
        // Whoever held the lock before may have just refreshed the cache.
        if !force {
            if let Some(jwks) = self.fresh() {
                return Ok(jwks);
            }
        }
        if self
            .cache()
            .last_failure
            .is_some_and(|t| t.elapsed() < FAILURE_BACKOFF)
        {
            return Err(TokenError::JwksUnavailable);
        }
        match self.load().await {
            Ok(jwks) => {
                let jwks = Arc::new(jwks);
                let mut cache = self.cache();
                cache.jwks = Some((jwks.clone(), Instant::now()));
                cache.last_failure = None;
                Ok(jwks)
            }
            Err(()) => {
                self.cache().last_failure = Some(Instant::now());
                Err(TokenError::JwksUnavailable)
            }
        }
    }

    /// Reads or fetches the JWKS; the cause of a failure goes to the log only.
    async fn load(&self) -> Result<Jwks, ()> {
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path).await.map_err(|e| {
                tracing::error!(path = %path.display(), error = %e, "cannot read oidc.jwks_file");
            })?,
            Source::Url(target) => fetch(target).await.map_err(|e| {
                tracing::error!(url = %target.url, error = %e, "JWKS fetch failed");
            })?,
        };
        Jwks::from_json(&bytes).map_err(|e| {
            tracing::error!(error = %e, "the identity provider's JWKS is not valid");
        })
    }
}

fn bad_url(url: &str, why: impl Into<String>) -> OidcSetupError {
    OidcSetupError::BadUrl {
        url: url.to_owned(),
        why: why.into(),
    }
}

/// Parses an http(s) URL once; `tls` makes the connector when the URL is https.
pub(crate) fn url_target(
    url: &str,
    tls: impl FnOnce() -> Result<TlsConnector, OidcSetupError>,
) -> Result<UrlTarget, OidcSetupError> {
    let uri: http::Uri = url.parse().map_err(|e| bad_url(url, format!("{e}")))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(bad_url(
                url,
                "only http:// and https:// URLs can be fetched",
            ))
        }
    };
    let authority = uri.authority().ok_or_else(|| bad_url(url, "no host"))?;
    if authority.as_str().contains('@') {
        return Err(bad_url(url, "credentials in the URL are not supported"));
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tls = if https {
        let name = ServerName::try_from(host.clone())
            .map_err(|e| bad_url(url, format!("host is not a valid TLS name: {e}")))?;
        Some((tls()?, name))
    } else {
        None
    };
    Ok(UrlTarget {
        url: url.to_owned(),
        host,
        port,
        authority: authority.as_str().to_owned(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".into()),
        tls,
    })
}

impl UrlTarget {
    pub(crate) fn is_https(&self) -> bool {
        self.tls.is_some()
    }

    fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The trust roots: exactly the certificates of `ca_file` (a private CA, pinned), or the
/// system store.
fn root_store(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, OidcSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let ca_error = |why: String| OidcSetupError::CaFile {
            path: path.display().to_string(),
            why,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no PEM certificates in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
        return Ok(roots);
    }
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "while reading the system CA store");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::debug!(ignored, "unparsable certificates in the system CA store");
    }
    if added == 0 {
        return Err(OidcSetupError::NoRoots);
    }
    Ok(roots)
}

pub(crate) fn tls_connector(ca_file: Option<&Path>) -> Result<TlsConnector, OidcSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| OidcSetupError::Tls(e.to_string()))?
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One GET of the JWKS; anything but a 2xx is a failure.
async fn fetch(target: &UrlTarget) -> Result<Vec<u8>, String> {
    let answer = send(target, Outgoing::get("application/json")).await?;
    if !answer.status.is_success() {
        return Err(format!("status {}", answer.status));
    }
    Ok(answer.body)
}

/// A request to the identity provider: the JWKS and discovery GETs, the token POST.
pub(crate) struct Outgoing {
    method: http::Method,
    accept: &'static str,
    /// `(content type, bytes)`.
    body: Option<(&'static str, Vec<u8>)>,
    authorization: Option<String>,
}

impl Outgoing {
    pub(crate) fn get(accept: &'static str) -> Outgoing {
        Outgoing {
            method: http::Method::GET,
            accept,
            body: None,
            authorization: None,
        }
    }

    /// A form POST (`application/x-www-form-urlencoded`) answered with JSON.
    pub(crate) fn post_form(form: String, authorization: Option<String>) -> Outgoing {
        Outgoing {
            method: http::Method::POST,
            accept: "application/json",
            body: Some(("application/x-www-form-urlencoded", form.into_bytes())),
            authorization,
        }
    }
}

/// The status and body of an answer.
pub(crate) struct Answer {
    pub status: http::StatusCode,
    pub body: Vec<u8>,
}

/// One request, over TLS when the URL is https, within [`FETCH_TIMEOUT`], body limited
/// to [`MAX_JWKS_BYTES`]. Redirects are not followed: only configured or discovered
/// URLs are ever requested.
pub(crate) async fn send(target: &UrlTarget, out: Outgoing) -> Result<Answer, String> {
    let work = async {
        let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        match &target.tls {
            None => exchange(tcp, target, out).await,
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                exchange(tls, target, out).await
            }
        }
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| "timed out".to_string())?
}

async fn exchange<S>(stream: S, target: &UrlTarget, out: Outgoing) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(out.method)
        .uri(target.path.as_str())
        .header(http::header::HOST, target.authority.as_str())
        .header(http::header::ACCEPT, out.accept);
    if let Some(auth) = &out.authorization {
        req = req.header(http::header::AUTHORIZATION, auth.as_str());
    }
    let body = match out.body {
        Some((content_type, bytes)) => {
            req = req.header(http::header::CONTENT_TYPE, content_type);
            bytes
        }
        None => Vec::new(),
    };
    let req = req
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_JWKS_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        body: body.to_bytes().to_vec(),
    })
}
