//! Configuration: built-in defaults < TOML file < `STARDAG_SERVER_*` env < flags (D2).
//!
//! Every key a user may set lives in [`Config`]. Unknown keys in the file are refused
//! with the key named (serde `deny_unknown_fields` on every section), so a typo never
//! silently keeps a default; unknown `STARDAG_SERVER_*` variables are named in a warning
//! ([`ignored_env_vars`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

/// Environment prefix of the server's own variables. The SDK's variables share the
/// `STARDAG_` stem (`STARDAG_API_KEY`, …) but never this longer prefix.
pub const ENV_PREFIX: &str = "STARDAG_SERVER_";
/// Config file looked up when neither `--config` nor `STARDAG_SERVER_CONFIG` names one.
pub const SYSTEM_CONFIG_PATH: &str = "/etc/stardag-server/config.toml";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the main listener.
    pub listen: String,
    /// Directory holding the database and the initial-credentials file.
    pub data_dir: PathBuf,
    pub tls: TlsConfig,
    pub auth: AuthConfig,
    pub oidc: OidcConfig,
    pub rate_limit: RateLimitConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub metrics: MetricsConfig,
    pub store: StoreConfig,
    pub ui: UiConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; with `key`, switches the listener to HTTPS.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// Optional plain-HTTP listener address that answers 308 to the HTTPS URL.
    pub redirect_http: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Local,
    Oidc,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    pub bootstrap_admin_email: Option<String>,
    pub bootstrap_admin_password: Option<String>,
    pub local_registration: bool,
    pub session_ttl_seconds: u64,
    pub access_token_ttl_seconds: u64,
    pub invite_ttl_days: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Local,
            bootstrap_admin_email: None,
            bootstrap_admin_password: None,
            local_registration: false,
            session_ttl_seconds: 43_200,
            access_token_ttl_seconds: 600,
            invite_ttl_days: 14,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    pub issuer_url: String,
    pub external_issuer_url: Option<String>,
    /// Comma-separated accepted `aud` values.
    pub audience: String,
    pub jwks_url: Option<String>,
    /// JWKS read from disk instead of fetched (air-gapped installs, D12).
    pub jwks_file: Option<PathBuf>,
    /// PEM CA certificates trusted for an https `jwks_url` instead of the system store
    /// (an identity provider behind a private CA).
    pub ca_file: Option<PathBuf>,
    pub sdk_client_id: String,
    /// The web UI's client at the provider (authorization code + PKCE, docs/oidc.md).
    pub ui_client_id: String,
    /// Only for a confidential UI client; sent as HTTP Basic to the token endpoint.
    pub ui_client_secret: Option<String>,
    /// The name on the login page's "Sign in with …" button; default: the issuer's host.
    pub ui_provider_name: Option<String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            issuer_url: "http://localhost:8080/realms/stardag".into(),
            external_issuer_url: None,
            audience: "stardag-ui,stardag-sdk".into(),
            jwks_url: None,
            jwks_file: None,
            ca_file: None,
            sdk_client_id: "stardag-sdk".into(),
            ui_client_id: "stardag-ui".into(),
            ui_client_secret: None,
            ui_provider_name: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// 0 disables the limit.
    pub per_credential_rps: u32,
    pub per_credential_burst: u32,
    pub per_ip_rps: u32,
    pub per_ip_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            // README "Rate limits": above what real SDK fleets on one key send (D24
            // revised), low enough that one runaway key leaves the writer to others.
            per_credential_rps: 5000,
            per_credential_burst: 25000,
            per_ip_rps: 20,
            per_ip_burst: 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Limit on a request body, on the wire and after gzip decoding (D22).
    pub max_body_bytes: u64,
    pub cors_origins: Vec<String>,
    pub trusted_proxies: Vec<String>,
    /// A client must send its request head within this time.
    pub header_read_timeout_seconds: u64,
    /// A client must send its whole body within this time once the head arrived.
    pub body_read_timeout_seconds: u64,
    /// A keep-alive connection with no traffic for this long is closed.
    pub keepalive_idle_seconds: u64,
    /// Open connections beyond this wait in the kernel backlog.
    pub max_connections: usize,
    /// Request line + headers larger than this are refused (431/400 by hyper).
    pub max_header_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub shutdown_grace_seconds: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 8 * 1024 * 1024,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            header_read_timeout_seconds: 30,
            body_read_timeout_seconds: 60,
            keepalive_idle_seconds: 120,
            max_connections: 16_384,
            // D21: request targets up to 64 KiB, plus room for headers.
            max_header_bytes: 96 * 1024,
            shutdown_grace_seconds: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// When set, `GET /metrics` requires `Authorization: Bearer <token>` (D28); the
    /// token Prometheus sends (`authorization.credentials` in its scrape config).
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            token: None,
        }
    }
}

/// The web UI (D34, docs/ui.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// `false`: API only; UI paths answer the API's JSON 404.
    pub enabled: bool,
    /// The registry URL printed in SDK snippets; default: the request's scheme and Host.
    pub public_url: Option<String>,
    /// How often a page polls for live state while a build runs (ms). Tests lower it.
    pub poll_ms: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            enabled: true,
            public_url: None,
            poll_ms: 2000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// redb page cache. redb's own default is 1 GiB, far too much for small VMs. Reads
    /// beyond it come from the kernel's page cache; redb also writes changed pages out
    /// once they fill half of it, which keeps checkpoints short (docs/performance.md).
    pub cache_bytes: usize,
    /// Bound of the writer queue; a full queue answers 503 (backpressure).
    pub write_queue: usize,
    /// Most write operations applied in one transaction.
    pub max_batch: usize,
    /// Longest time journaled writes wait for a durable database commit (a checkpoint);
    /// bounds how much journal a start after a crash replays. Every checkpoint stalls
    /// the writes for its length, and it costs about the same whatever the interval, so
    /// fewer are better for the tail; 2 s keeps the replay after a crash under a second
    /// (docs/performance.md, "Tail latency").
    pub checkpoint_ms: u64,
    /// Below this many free bytes on the data dir's filesystem, writes are refused with
    /// 507 and reads go on (docs/operations.md, "Disk full"); they resume on their own
    /// once space is back. Leaves room for the checkpoint that follows.
    pub min_free_bytes: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            cache_bytes: 8 * 1024 * 1024,
            write_queue: 4096,
            max_batch: 512,
            checkpoint_ms: 2000,
            min_free_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8000".into(),
            data_dir: PathBuf::from("./stardag-data"),
            tls: TlsConfig::default(),
            auth: AuthConfig::default(),
            oidc: OidcConfig::default(),
            rate_limit: RateLimitConfig::default(),
            http: HttpConfig::default(),
            log: LogConfig::default(),
            metrics: MetricsConfig::default(),
            store: StoreConfig::default(),
            ui: UiConfig::default(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers in charge.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
}

/// Where the layered sources come from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--config PATH`.
    pub config_file: Option<PathBuf>,
    pub flags: FlagOverrides,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(e: figment::Error) -> Self {
        // figment's Display names the key and the source that set it.
        let msgs: Vec<String> = e.into_iter().map(|e| e.to_string()).collect();
        ConfigError::Invalid(msgs.join("; "))
    }
}

/// The config file in force: `--config`, else `STARDAG_SERVER_CONFIG`, else the system
/// path when it exists. An explicitly named file must exist.
fn config_file(sources: &Sources) -> Result<Option<PathBuf>, ConfigError> {
    let explicit = sources.config_file.clone().or_else(|| {
        std::env::var_os(format!("{ENV_PREFIX}CONFIG"))
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    match explicit {
        Some(p) if p.is_file() => Ok(Some(p)),
        Some(p) => Err(ConfigError::MissingFile(p)),
        None => Ok(Some(PathBuf::from(SYSTEM_CONFIG_PATH)).filter(|p| p.is_file())),
    }
}

/// The layered figment; kept so `check-config` can ask where each value came from.
pub fn figment(sources: &Sources) -> Result<Figment, ConfigError> {
    let mut fig = Figment::from(Defaults);
    if let Some(path) = config_file(sources)? {
        fig = fig.merge(Toml::file_exact(path));
    }
    let known = defaults();
    fig = fig
        .merge(env_layer().filter(move |key| is_config_key(&known, key.as_str())))
        .merge(&sources.flags);
    Ok(fig)
}

/// `STARDAG_SERVER_*` variables as figment reads them, every one.
fn env_layer() -> Env {
    Env::prefixed(ENV_PREFIX)
        // STARDAG_SERVER_CONFIG names the file; it is not a key.
        .ignore(&["CONFIG"])
        .split("__")
}

/// `STARDAG_SERVER_*` variables that name no config key. They are left out and named
/// in a warning rather than stopping the start: the environment is shared with other
/// software (a wrapper script's `STARDAG_SERVER_BIN`, say), while the config file is
/// ours alone, so unknown keys there are still refused.
pub fn ignored_env_vars() -> Vec<String> {
    let known = defaults();
    let mut vars: Vec<String> = env_layer()
        .iter()
        .filter(|(key, _)| !is_config_key(&known, key.as_str()))
        .map(|(key, _)| {
            let name = key.as_str().replace('.', "__").to_ascii_uppercase();
            format!("{ENV_PREFIX}{name}")
        })
        .collect();
    vars.sort();
    vars
}

/// The default configuration as a figment dictionary: every key there is.
fn defaults() -> Dict {
    Defaults
        .data()
        .ok()
        .and_then(|mut profiles| profiles.remove(&Profile::Default))
        .unwrap_or_default()
}

/// True when the dotted `key` (`http.max_body_bytes`, or a section like `http`) names
/// a field of [`Config`], in any case (figment lowercases variable names after its
/// filters run).
fn is_config_key(defaults: &Dict, key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    let mut level = defaults;
    let mut segments = key.split('.').peekable();
    while let Some(segment) = segments.next() {
        match (level.get(segment), segments.peek()) {
            (Some(_), None) => return true,
            (Some(figment::value::Value::Dict(_, inner)), Some(_)) => level = inner,
            _ => return false,
        }
    }
    false
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let config: Config = figment(sources)?.extract()?;
        config.validate()?;
        Ok(config)
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.listen.parse().map_err(|_| {
            ConfigError::Invalid(format!("listen: not a socket address: {}", self.listen))
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key must be set together".into(),
            ));
        }
        if self.http.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "http.max_body_bytes must be > 0".into(),
            ));
        }
        if self.http.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "http.max_connections must be > 0".into(),
            ));
        }
        for p in &self.http.trusted_proxies {
            if crate::http::client_ip::Cidr::parse(p).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "http.trusted_proxies: not an IP address or CIDR range: {p}"
                )));
            }
        }
        if self.auth.mode == AuthMode::Oidc && self.oidc.ui_client_id.trim().is_empty() {
            return Err(ConfigError::Invalid(
                "oidc.ui_client_id must not be empty (the web UI's client at the identity provider)"
                    .into(),
            ));
        }
        if let Some(url) = &self.oidc.jwks_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "oidc.jwks_url must be an http:// or https:// URL: {url}"
                )));
            }
        }
        if self
            .metrics
            .token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return Err(ConfigError::Invalid(
                "metrics.token must not be empty (leave it out for no token)".into(),
            ));
        }
        if self.store.write_queue == 0 || self.store.max_batch == 0 || self.store.checkpoint_ms == 0
        {
            return Err(ConfigError::Invalid(
                "store.write_queue, store.max_batch and store.checkpoint_ms must be > 0".into(),
            ));
        }
        if self.ui.poll_ms < 100 {
            return Err(ConfigError::Invalid("ui.poll_ms must be >= 100".into()));
        }
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("stardag.redb")
    }
}

/// Keys whose values are secrets: masked by `check-config`.
fn is_secret(key: &str) -> bool {
    key.ends_with("password") || key.ends_with("secret") || key.ends_with("token")
}

/// One line per effective leaf value: `key = value  # source`, secrets masked.
pub fn describe(sources: &Sources) -> Result<String, ConfigError> {
    let fig = figment(sources)?;
    let config: Config = fig.extract()?;
    config.validate()?;
    let value = figment::value::Value::serialize(&config)
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let mut lines = Vec::new();
    if let Some(dict) = value.as_dict() {
        describe_dict(&fig, "", dict, &mut lines);
    }
    Ok(lines.join("\n"))
}

fn describe_dict(fig: &Figment, prefix: &str, dict: &Dict, out: &mut Vec<String>) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let Some(sub) = v.as_dict() {
            describe_dict(fig, &key, sub, out);
            continue;
        }
        let shown = if is_secret(&key) && !matches!(v, figment::value::Value::Empty(..)) {
            "\"********\"".to_string()
        } else {
            render_value(v)
        };
        out.push(format!("{key} = {shown}  # {}", source_of(fig, &key)));
    }
}

/// figment values print best through JSON: strings quoted, numbers and lists plain.
fn render_value(v: &figment::value::Value) -> String {
    match v.deserialize::<serde_json::Value>() {
        Ok(serde_json::Value::Null) | Err(_) => "(unset)".into(),
        Ok(j) => j.to_string(),
    }
}

fn source_of(fig: &Figment, key: &str) -> String {
    match fig.find_metadata(key) {
        Some(md) => describe_metadata(md),
        None => "default".into(),
    }
}

fn describe_metadata(md: &Metadata) -> String {
    match &md.source {
        Some(figment::Source::File(p)) => format!("{} {}", md.name, p.display()),
        _ => md.name.to_string(),
    }
}

/// Built-in defaults, named so `check-config` can say "default".
struct Defaults;

impl Provider for Defaults {
    fn metadata(&self) -> Metadata {
        Metadata::named("default")
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::defaults(Config::default()).data()
    }
}

/// Flags are a provider of their own so `check-config` can name them as the source.
impl Provider for FlagOverrides {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flags")
    }
    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::globals(self).data()
    }
}

pub fn ensure_data_dir(path: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The directory holds credentials and the database: owner only.
        let meta = std::fs::metadata(path)?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_are_known_by_their_dotted_paths() {
        let known = defaults();
        for key in [
            "listen",
            "http",
            "http.max_body_bytes",
            "tls.cert",
            "metrics.token",
        ] {
            assert!(is_config_key(&known, key), "{key}");
        }
        for key in ["bin", "http.nope", "listen.port", "tls.cert.path"] {
            assert!(!is_config_key(&known, key), "{key}");
        }
    }
}
