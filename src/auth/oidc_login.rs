//! Signing in to the web UI through the identity provider (ui.md §3.4, D34): the
//! authorization code flow with PKCE (RFC 7636, `S256`), `state` and `nonce`.
//!
//! The provider's endpoints come from its discovery document
//! (`{oidc.issuer_url}/.well-known/openid-configuration`), fetched server-side with the
//! JWKS machinery of [`super::oidc`] and cached. When `oidc.external_issuer_url` is set,
//! URLs under the internal issuer are rewritten for the browser (authorization endpoint)
//! and URLs under the external issuer for the server (token endpoint), so one document
//! serves both sides of a split-horizon install. The cookie and page side lives in
//! `src/ui/pages/oidc_login.rs`; decisions in docs/oidc.md.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::Value;
use tokio_rustls::TlsConnector;

use super::b64;
use super::oidc::{send, tls_connector, url_target, Outgoing, UrlTarget};
use crate::config::OidcConfig;

/// How long a fetched discovery document is used before it is fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// Scopes asked for: `email` and `profile` carry what provisioning needs (D15).
pub const SCOPES: &str = "openid email profile";

/// Why a UI sign-in through the provider failed; the texts are shown on the login page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("The identity provider cannot be reached or its configuration is not usable ({0}).")]
    Discovery(String),
    #[error("The identity provider did not accept the sign-in code ({0}).")]
    Exchange(String),
    #[error("The identity provider's ID token was refused: {0}")]
    IdToken(String),
}

/// The two endpoints the flow uses, ready for each side.
pub struct Endpoints {
    /// Where the browser is sent (`authorization_endpoint`, browser-facing).
    pub authorization: String,
    /// Where the server posts the code (`token_endpoint`, server-facing).
    token: String,
}

/// The UI's OAuth client at the provider: `oidc.ui_client_id` (+ optional secret).
pub struct LoginClient {
    issuer_url: String,
    external_issuer_url: Option<String>,
    pub client_id: String,
    client_secret: Option<String>,
    /// The name on the "Sign in with …" button.
    pub provider_name: String,
    ca_file: Option<std::path::PathBuf>,
    /// Built on first use: a JWKS read from a file must not need a CA store at start.
    tls: OnceLock<TlsConnector>,
    discovery: Mutex<Option<(Arc<Endpoints>, Instant)>>,
    fetching: tokio::sync::Mutex<()>,
}

impl LoginClient {
    pub fn from_config(cfg: &OidcConfig) -> LoginClient {
        let browser_issuer = cfg.external_issuer_url.as_ref().unwrap_or(&cfg.issuer_url);
        let provider_name = cfg.ui_provider_name.clone().unwrap_or_else(|| {
            browser_issuer
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(str::to_owned))
                .unwrap_or_else(|| "the identity provider".into())
        });
        LoginClient {
            issuer_url: trim(&cfg.issuer_url).to_owned(),
            external_issuer_url: cfg
                .external_issuer_url
                .as_deref()
                .map(|e| trim(e).to_owned()),
            client_id: cfg.ui_client_id.clone(),
            client_secret: cfg.ui_client_secret.clone().filter(|s| !s.is_empty()),
            provider_name,
            ca_file: cfg.ca_file.clone(),
            tls: OnceLock::new(),
            discovery: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn target(&self, url: &str) -> Result<UrlTarget, String> {
        url_target(url, || {
            if let Some(c) = self.tls.get() {
                return Ok(c.clone());
            }
            let c = tls_connector(self.ca_file.as_deref())?;
            Ok(self.tls.get_or_init(|| c).clone())
        })
        .map_err(|e| e.to_string())
    }

    fn cached(&self) -> Option<Arc<Endpoints>> {
        let guard = match self.discovery.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        match &*guard {
            Some((e, at)) if at.elapsed() < DISCOVERY_TTL => Some(e.clone()),
            _ => None,
        }
    }

    /// The provider's endpoints, from its discovery document (cached for 5 minutes).
    pub async fn endpoints(&self) -> Result<Arc<Endpoints>, LoginError> {
        if let Some(e) = self.cached() {
            return Ok(e);
        }
        let _one = self.fetching.lock().await;
        if let Some(e) = self.cached() {
            return Ok(e);
        }
        let url = format!("{}/.well-known/openid-configuration", self.issuer_url);
        let endpoints = Arc::new(self.discover(&url).await.map_err(|why| {
            tracing::error!(url, error = %why, "OIDC discovery failed");
            LoginError::Discovery(why)
        })?);
        let mut guard = match self.discovery.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *guard = Some((endpoints.clone(), Instant::now()));
        Ok(endpoints)
    }

    async fn discover(&self, url: &str) -> Result<Endpoints, String> {
        let answer = send(&self.target(url)?, Outgoing::get("application/json")).await?;
        if !answer.status.is_success() {
            return Err(format!("discovery document: status {}", answer.status));
        }
        let doc: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| format!("discovery document is not JSON: {e}"))?;
        let field = |name: &str| {
            doc.get(name)
                .and_then(Value::as_str)
                .filter(|s| s.starts_with("https://") || s.starts_with("http://"))
                .map(str::to_owned)
                .ok_or_else(|| format!("discovery document has no http(s) {name}"))
        };
        // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
        let issuer = doc.get("issuer").and_then(Value::as_str).unwrap_or("");
        if trim(issuer) != self.issuer_url
            && Some(trim(issuer)) != self.external_issuer_url.as_deref()
        {
            return Err(format!(
                "discovery document names issuer {issuer:?}, not oidc.issuer_url or oidc.external_issuer_url"
            ));
        }
        Ok(Endpoints {
            authorization: self.browser_facing(&field("authorization_endpoint")?),
            token: self.server_facing(&field("token_endpoint")?),
        })
    }

    /// A URL under the internal issuer, as the browser must see it.
    fn browser_facing(&self, url: &str) -> String {
        match &self.external_issuer_url {
            Some(ext) => rebase(url, &self.issuer_url, ext),
            None => url.to_owned(),
        }
    }

    /// A URL under the external issuer, as the server reaches it.
    fn server_facing(&self, url: &str) -> String {
        match &self.external_issuer_url {
            Some(ext) => rebase(url, ext, &self.issuer_url),
            None => url.to_owned(),
        }
    }

    /// Where the browser goes to sign in.
    pub fn authorization_url(&self, endpoints: &Endpoints, start: &LoginStart) -> String {
        let sep = if endpoints.authorization.contains('?') {
            '&'
        } else {
            '?'
        };
        let query = form(&[
            ("response_type", "code"),
            ("client_id", &self.client_id),
            ("redirect_uri", &start.redirect_uri),
            ("scope", SCOPES),
            ("state", &start.state),
            ("nonce", &start.nonce),
            ("code_challenge", &pkce_challenge(&start.verifier)),
            ("code_challenge_method", "S256"),
        ]);
        format!("{}{sep}{query}", endpoints.authorization)
    }

    /// Exchanges the code at the token endpoint; the ID token (still to be verified).
    pub async fn exchange_code(
        &self,
        endpoints: &Endpoints,
        code: &str,
        start: &LoginStart,
    ) -> Result<String, LoginError> {
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &start.redirect_uri),
            ("client_id", &self.client_id),
            ("code_verifier", &start.verifier),
        ]);
        // RFC 6749 §2.3.1: client_secret_basic, both parts form-encoded first.
        let authorization = self.client_secret.as_ref().map(|secret| {
            let pair = format!("{}:{}", enc(&self.client_id), enc(secret));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            )
        });
        let target = self
            .target(&endpoints.token)
            .map_err(LoginError::Exchange)?;
        let answer = send(&target, Outgoing::post_form(body, authorization))
            .await
            .map_err(|why| {
                tracing::error!(url = %endpoints.token, error = %why, "OIDC token request failed");
                LoginError::Exchange(format!("token endpoint: {why}"))
            })?;
        let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if !answer.status.is_success() {
            let text = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or("");
            let why = match (text("error"), text("error_description")) {
                ("", _) => format!("status {}", answer.status),
                (e, "") => e.to_owned(),
                (e, d) => format!("{e}: {d}"),
            };
            tracing::warn!(status = %answer.status, error = %why, "OIDC token request refused");
            return Err(LoginError::Exchange(why));
        }
        json.get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| LoginError::Exchange("the answer has no id_token".into()))
    }
}

/// The secrets of one sign-in attempt, kept in the browser's login cookie between the
/// redirect to the provider and the callback.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoginStart {
    pub state: String,
    pub nonce: String,
    /// PKCE `code_verifier` (RFC 7636 §4.1): 43 base64url characters.
    pub verifier: String,
    pub redirect_uri: String,
    /// Same-origin path to land on after sign-in.
    pub next: String,
    /// Unix seconds after which the attempt is void.
    pub exp: i64,
}

impl LoginStart {
    pub fn new(redirect_uri: String, next: String, exp: i64) -> LoginStart {
        LoginStart {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            redirect_uri,
            next,
            exp,
        }
    }
}

/// 256 random bits, base64url: unguessable `state`, `nonce` and PKCE verifier.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The system RNG does not fail on Linux; a failure would be caught by every later
    // check (state, nonce and verifier would all be zero and still bound to the cookie).
    let _ = SystemRandom::new().fill(&mut bytes);
    b64::encode(&bytes)
}

/// PKCE `S256`: base64url(SHA-256(verifier)) (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    b64::encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

fn trim(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// `url` with the prefix `from` replaced by `to`, when `url` lies under `from`.
fn rebase(url: &str, from: &str, to: &str) -> String {
    match url.strip_prefix(from) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') => {
            format!("{to}{rest}")
        }
        _ => url.to_owned(),
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY_VALUE).to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_43_chars_and_differ() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn rebase_only_under_the_prefix() {
        let (int, ext) = (
            "http://kc:8080/realms/s",
            "https://login.example.com/realms/s",
        );
        assert_eq!(
            rebase(
                "http://kc:8080/realms/s/protocol/openid-connect/auth",
                int,
                ext
            ),
            "https://login.example.com/realms/s/protocol/openid-connect/auth"
        );
        assert_eq!(
            rebase("http://kc:8080/realms/stardag/x", int, ext),
            "http://kc:8080/realms/stardag/x"
        );
        assert_eq!(rebase("https://other/auth", int, ext), "https://other/auth");
    }
}
