//! TLS termination, certificate reload, HTTPS redirect, rate limits, CORS, trusted
//! proxies and abusive clients, through real sockets.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use crate::auth::{credentials, login};
use crate::harness::{BinaryServer, TestServer};

fn write_cert(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let (cert, key) =
        stardag_server::server::tls::self_signed(&["localhost".into(), "127.0.0.1".into()])
            .unwrap();
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    (cert_path, key_path, cert)
}

fn connector(cert_pems: &[&str]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in cert_pems {
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn tls_connect(addr: std::net::SocketAddr, connector: &tokio_rustls::TlsConnector) -> Tls {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.expect("TLS handshake")
}

/// The DER of the certificate the server presented.
fn peer_cert(stream: &Tls) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

async fn https_get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> (u16, http::HeaderMap, Bytes) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("host", "localhost")
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

async fn http1_over(stream: Tls) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

#[tokio::test]
async fn https_serves_with_hsts_and_alpn() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, pem) = write_cert(certs.path(), "a");
    let server = TestServer::start_with_tls(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
    })
    .await;
    let stream = tls_connect(server.addr, &connector(&[&pem])).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut sender = http1_over(stream).await;
    let (status, headers, body) = https_get(&mut sender, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(&body[..], br#"{"status":"healthy"}"#);
    assert!(headers.get("strict-transport-security").is_some());

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut buf)).await;
    assert!(!String::from_utf8_lossy(&buf).contains("healthy"));

    // The first-start credentials name the https URL.
    assert!(credentials(server.data_dir())["STARDAG_REGISTRY_URL"].starts_with("https://"));
}

#[tokio::test]
async fn bad_tls_files_stop_the_start_with_a_clear_message() {
    let certs = tempfile::tempdir().unwrap();
    let (cert_a, _key_a, _) = write_cert(certs.path(), "a");
    let (_cert_b, key_b, _) = write_cert(certs.path(), "b");
    let missing = certs.path().join("missing.key");
    for (cert, key, expect) in [
        (cert_a.clone(), missing.clone(), "missing.key"),
        (cert_a.clone(), key_b.clone(), "do not match"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = tokio::process::Command::new(crate::harness::binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("STARDAG_SERVER_TLS__CERT", &cert)
            .env("STARDAG_SERVER_TLS__KEY", &key)
            .output()
            .await
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{err}");
    }
}

#[tokio::test]
async fn sighup_swaps_the_certificate_without_dropping_connections() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, pem_a) = write_cert(certs.path(), "live");
    let data = tempfile::tempdir().unwrap();
    let cert_arg = format!("{}", cert.display());
    let key_arg = format!("{}", key.display());
    let server = BinaryServer::start_with_env(
        data.path(),
        &[],
        &[
            ("STARDAG_SERVER_TLS__CERT", &cert_arg),
            ("STARDAG_SERVER_TLS__KEY", &key_arg),
        ],
    )
    .await;

    let (_, _, pem_b) = {
        let (c, k, p) = write_cert(certs.path(), "next");
        (c, k, p)
    };
    let both = connector(&[&pem_a, &pem_b]);
    let first = tls_connect(server.addr, &both).await;
    let first_cert = peer_cert(&first);
    let mut kept = http1_over(first).await;
    assert_eq!(https_get(&mut kept, "/health").await.0, 200);

    // Replace the files and signal.
    std::fs::copy(certs.path().join("next.crt"), &cert).unwrap();
    std::fs::copy(certs.path().join("next.key"), &key).unwrap();
    server.signal(1);
    let mut swapped = false;
    for _ in 0..50 {
        let s = tls_connect(server.addr, &both).await;
        if peer_cert(&s) != first_cert {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(swapped, "new handshakes never saw the new certificate");
    // The connection opened before the swap still works.
    assert_eq!(https_get(&mut kept, "/health").await.0, 200);

    // A broken pair is refused and the current certificate stays.
    let current = peer_cert(&tls_connect(server.addr, &both).await);
    std::fs::write(&key, "not a key").unwrap();
    server.signal(1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = tls_connect(server.addr, &both).await;
    assert_eq!(peer_cert(&after), current);
    let mut sender = http1_over(after).await;
    assert_eq!(https_get(&mut sender, "/health").await.0, 200);
    server.assert_logged("keeping the old certificate").await;
}

#[tokio::test]
async fn the_redirect_listener_answers_308_to_https() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_cert(certs.path(), "a");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_addr = free.local_addr().unwrap();
    drop(free);
    let server = TestServer::start_with_tls(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
        c.tls.redirect_http = Some(redirect_addr.to_string());
    })
    .await;
    let resp = crate::harness::Client::new(redirect_addr)
        .get("/api/v1/builds?limit=5")
        .await;
    assert_eq!(resp.status.as_u16(), 308);
    let location = resp.header("location").unwrap();
    assert_eq!(
        location,
        format!(
            "https://{}:{}/api/v1/builds?limit=5",
            redirect_addr.ip(),
            server.addr.port()
        )
    );
}

#[tokio::test]
async fn per_credential_limit_answers_429_the_sdk_understands() {
    let server = TestServer::start_with(|c| {
        c.rate_limit.per_credential_rps = 1;
        c.rate_limit.per_credential_burst = 3;
    })
    .await;
    let creds = credentials(server.data_dir());
    let c = server.client();
    let token = login(
        &c,
        &creds["STARDAG_ADMIN_EMAIL"],
        &creds["STARDAG_ADMIN_PASSWORD"],
    )
    .await;
    let me = c.with_bearer(&token);
    for _ in 0..3 {
        me.get("/api/v1/ui/me").await.expect(200);
    }
    let limited = me.get("/api/v1/ui/me").await;
    let body = limited.expect(429);
    assert_eq!(body["detail"]["code"], "RATE_LIMIT");
    assert!(body["detail"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Rate limit exceeded, retry after"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Another credential has its own budget; health is never limited.
    for _ in 0..20 {
        c.get("/health").await.expect(200);
    }
}

#[tokio::test]
async fn per_ip_limit_counts_unauthenticated_requests_and_zero_disables() {
    let server = TestServer::start_with(|c| {
        c.rate_limit.per_ip_rps = 1;
        c.rate_limit.per_ip_burst = 2;
    })
    .await;
    let c = server.client();
    c.get("/api/v1/auth/config").await.expect(200);
    c.get("/api/v1/auth/config").await.expect(200);
    let limited = c.get("/api/v1/auth/config").await;
    assert_eq!(limited.expect(429)["detail"]["code"], "RATE_LIMIT");
    // Failed authentication counts against the IP as well.
    let resp = c.with_bearer("garbage").get("/api/v1/ui/me").await;
    assert_eq!(resp.status.as_u16(), 429);

    let off = TestServer::start_with(|c| c.rate_limit.per_ip_rps = 0).await;
    for _ in 0..150 {
        off.client().get("/api/v1/auth/config").await.expect(200);
    }
}

#[tokio::test]
async fn forwarded_for_is_trusted_only_from_configured_proxies() {
    let limited = |trusted: bool| async move {
        let server = TestServer::start_with(|c| {
            c.rate_limit.per_ip_rps = 1;
            c.rate_limit.per_ip_burst = 1;
            if trusted {
                c.http.trusted_proxies = vec!["127.0.0.0/8".into()];
            }
        })
        .await;
        let mut statuses = Vec::new();
        for i in 0..3 {
            let ip = format!("203.0.113.{i}");
            let resp = server
                .client()
                .with_header("x-forwarded-for", &ip)
                .get("/api/v1/auth/config")
                .await;
            statuses.push(resp.status.as_u16());
        }
        statuses
    };
    // Each forwarded client has its own budget behind a trusted proxy...
    assert_eq!(limited(true).await, vec![200, 200, 200]);
    // ...and the header is ignored from anyone else.
    assert_eq!(limited(false).await, vec![200, 429, 429]);
}

#[tokio::test]
async fn cors_is_off_by_default_and_answers_preflights_when_configured() {
    let plain = TestServer::start().await;
    let resp = plain
        .client()
        .send(
            Method::OPTIONS,
            "/api/v1/ui/me",
            &[
                ("origin", "http://ui.example"),
                ("access-control-request-method", "GET"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 405);
    let get = plain
        .client()
        .with_header("origin", "http://ui.example")
        .get("/health")
        .await;
    assert!(get.header("access-control-allow-origin").is_none());

    let server =
        TestServer::start_with(|c| c.http.cors_origins = vec!["http://ui.example".into()]).await;
    let c = server.client();
    let pre = c
        .send(
            Method::OPTIONS,
            "/api/v1/ui/me",
            &[
                ("origin", "http://ui.example"),
                ("access-control-request-method", "PATCH"),
                (
                    "access-control-request-headers",
                    "authorization,content-type",
                ),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(pre.status.as_u16(), 200);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("http://ui.example")
    );
    assert_eq!(pre.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(pre.header("access-control-allow-methods"), Some("PATCH"));
    assert_eq!(
        pre.header("access-control-allow-headers"),
        Some("authorization,content-type")
    );
    let denied = c
        .send(
            Method::OPTIONS,
            "/api/v1/ui/me",
            &[
                ("origin", "http://evil.example"),
                ("access-control-request-method", "GET"),
            ],
            Bytes::new(),
        )
        .await;
    assert_eq!(
        denied.expect(400),
        json!({"detail": "Disallowed CORS origin"})
    );
    let get = c
        .with_header("origin", "http://ui.example")
        .get("/health")
        .await;
    assert_eq!(
        get.header("access-control-allow-origin"),
        Some("http://ui.example")
    );
    let other = c
        .with_header("origin", "http://evil.example")
        .get("/health")
        .await;
    assert!(other.header("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn slow_bodies_get_408_and_huge_heads_are_refused() {
    let server = TestServer::start_with(|c| c.http.body_read_timeout_seconds = 1).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");

    // A request head over the limit is refused, and the server keeps serving.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-junk: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("healthy"), "{text}");
    server.client().get("/health").await.expect(200);
}

#[tokio::test]
async fn ten_thousand_idle_connections_do_not_block_a_new_client() {
    let data = tempfile::tempdir().unwrap();
    let server = BinaryServer::start(data.path(), &[]).await;
    let mut idle = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        match TcpStream::connect(server.addr).await {
            Ok(s) => idle.push(s),
            Err(e) => panic!("could not open idle connection {}: {e}", idle.len()),
        }
    }
    let started = std::time::Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(10), server.client().get("/health"))
        .await
        .expect("a new client was not served");
    resp.expect(200);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(idle);
}

#[tokio::test]
async fn admin_self_signed_cert_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("s.crt"), dir.path().join("s.key"));
    let run = |force: bool| {
        let mut cmd = tokio::process::Command::new(crate::harness::binary());
        cmd.args([
            "admin",
            "self-signed-cert",
            "--host",
            "localhost",
            "--host",
            "127.0.0.1",
        ])
        .arg("--cert-out")
        .arg(&cert)
        .arg("--key-out")
        .arg(&key);
        if force {
            cmd.arg("--force");
        }
        cmd.output()
    };
    let out = run(false).await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = run(false).await.unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert!(run(true).await.unwrap().status.success());

    let pem = std::fs::read_to_string(&cert).unwrap();
    let server = TestServer::start_with_tls(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
    })
    .await;
    let mut sender = http1_over(tls_connect(server.addr, &connector(&[&pem])).await).await;
    assert_eq!(https_get(&mut sender, "/health").await.0, 200);
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_dropped() {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_cert(certs.path(), "a");
    let server = TestServer::start_with_tls(|c| {
        c.tls.cert = Some(cert.clone());
        c.tls.key = Some(key.clone());
    })
    .await;
    // Connect and never send a ClientHello: the server gives up after its 10 s limit.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let res = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut buf)).await;
    assert!(res.is_ok(), "the stalled handshake was never dropped");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(20),
        "took {took:?}"
    );
}
