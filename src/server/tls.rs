//! HTTPS (D23): rustls with the ring provider only, TLS 1.2 and 1.3, ALPN http/1.1.
//! The certificate sits behind a resolver that SIGHUP swaps: new handshakes get the new
//! certificate, open connections keep theirs, and a bad new pair keeps the old one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS certificate {path}: {why}")]
    Cert { path: PathBuf, why: String },
    #[error("cannot read TLS private key {path}: {why}")]
    Key { path: PathBuf, why: String },
    #[error("TLS certificate {cert} and key {key} do not match: {why}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        why: String,
    },
    #[error("TLS setup failed: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks a PEM certificate chain and private key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.into(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.into(),
            why: "no certificate in the file".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.into(),
        why: e.to_string(),
    })?;
    let certified =
        CertifiedKey::from_der(chain, private, &provider()).map_err(|e| TlsError::Mismatch {
            cert: cert.into(),
            key: key.into(),
            why: e.to_string(),
        })?;
    Ok(Arc::new(certified))
}

#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = match self.current.read() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        Some(current.clone())
    }
}

/// The acceptor plus what a reload needs.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: TlsAcceptor,
    resolver: Arc<Resolver>,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    pub fn new(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        let resolver = Arc::new(Resolver {
            current: RwLock::new(load_pair(cert, key)?),
        });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            resolver,
            cert: cert.into(),
            key: key.into(),
        })
    }

    /// Re-reads the files; on any problem the old certificate stays (and the error is
    /// returned for the log).
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load_pair(&self.cert, &self.key)?;
        let mut current = match self.resolver.current.write() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        *current = fresh;
        Ok(())
    }
}

/// A self-signed certificate and key (PEM) for the given host names / IPs, for tests
/// and air-gapped installs (`admin self-signed-cert`).
pub fn self_signed(hosts: &[String]) -> Result<(String, String), TlsError> {
    let cert = rcgen::generate_simple_self_signed(hosts.to_vec())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok((cert.cert.pem(), cert.signing_key.serialize_pem()))
}
