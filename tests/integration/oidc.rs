//! OIDC mode (D12, v1-identity §3.3–3.4, D15) against a test "identity provider": the
//! RSA key in tests/fixtures, its JWKS served from a file or from a loopback HTTP(S)
//! server started here, whose hits are counted.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use stardag_server::auth::jwt::test_support::{assemble, rsa_jwk, rsa_sign, rsa_sign_with_header};
use stardag_server::config::{AuthMode, Config};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::harness::{Client, TestResponse, TestServer};

const IDP_KEY: &[u8] = include_bytes!("../fixtures/oidc-test-rsa.pk8");
const KID: &str = "idp-key-1";
const ISSUER: &str = "http://idp.internal:8080/realms/stardag";
const EXTERNAL_ISSUER: &str = "https://login.example.com/realms/stardag";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn jwks(kids: &[&str]) -> String {
    let keys: Vec<Value> = kids.iter().map(|k| rsa_jwk(IDP_KEY, k).unwrap()).collect();
    json!({ "keys": keys }).to_string()
}

/// Claims of a typical IdP ID token.
fn claims(sub: &str, email: Option<&str>) -> Value {
    let mut c = json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": ["stardag-sdk", "account"],
        "exp": now() + 600,
        "iat": now(),
    });
    if let Some(e) = email {
        c["email"] = json!(e);
    }
    c
}

fn token(claims: &Value) -> String {
    rsa_sign(IDP_KEY, KID, claims).unwrap()
}

fn oidc_config(c: &mut Config) {
    c.auth.mode = AuthMode::Oidc;
    c.oidc.issuer_url = ISSUER.into();
    c.oidc.audience = "stardag-ui,stardag-sdk".into();
}

/// A server in OIDC mode reading the JWKS from a file in its own temp dir.
async fn file_server(extra: impl FnOnce(&mut Config)) -> (TestServer, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let path = keys.path().join("jwks.json");
    std::fs::write(&path, jwks(&[KID])).unwrap();
    let server = TestServer::start_with(|c| {
        oidc_config(c);
        c.oidc.jwks_file = Some(path);
        extra(c);
    })
    .await;
    (server, keys)
}

async fn me(c: &Client, token: &str) -> TestResponse {
    c.with_bearer(token).get("/api/v1/ui/me").await
}

#[track_caller]
fn assert_401(resp: &TestResponse, detail: &str) {
    assert_eq!(resp.expect(401)["detail"], detail);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
}

/// A loopback JWKS endpoint (`/certs`), plain or TLS, counting the fetches it answers.
struct JwksServer {
    url: String,
    hits: Arc<AtomicUsize>,
    body: Arc<Mutex<String>>,
    task: JoinHandle<()>,
}

impl JwksServer {
    async fn start(body: String, tls: Option<TlsAcceptor>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let hits = Arc::new(AtomicUsize::new(0));
        let body = Arc::new(Mutex::new(body));
        let (h, b) = (hits.clone(), body.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (h, b, tls) = (h.clone(), b.clone(), tls.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (h, b) = (h.clone(), b.clone());
                        async move {
                            let mut resp = Response::new(Full::new(Bytes::new()));
                            if req.uri().path() == "/certs" {
                                h.fetch_add(1, Ordering::SeqCst);
                                let text = b.lock().unwrap().clone();
                                *resp.body_mut() = Full::new(Bytes::from(text));
                            } else {
                                *resp.status_mut() = StatusCode::NOT_FOUND;
                            }
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        JwksServer {
            url: format!("{scheme}://127.0.0.1:{port}/certs"),
            hits,
            body,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// TLS with the fixture certificate for `localhost` / `127.0.0.1`, issued by the
/// fixture CA.
fn tls_acceptor() -> TlsAcceptor {
    let certs = CertificateDer::pem_file_iter(fixture("oidc-test-tls-cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("oidc-test-tls-key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

#[tokio::test]
async fn auth_config_and_local_routes_in_oidc_mode() {
    let (server, _keys) = file_server(|c| {
        c.oidc.external_issuer_url = Some(EXTERNAL_ISSUER.into());
        c.oidc.sdk_client_id = "my-sdk-client".into();
    })
    .await;
    let c = server.client();
    for path in ["/api/v1/auth/config", "/auth/config"] {
        assert_eq!(
            c.get(path).await.expect(200),
            json!({
                "auth_mode": "oidc",
                "oidc_issuer": EXTERNAL_ISSUER,
                "oidc_client_id": "my-sdk-client",
            })
        );
    }
    let resp = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": "a@b.example", "password": "whatever-password"}),
        )
        .await;
    assert_eq!(resp.expect(404)["detail"], "Not Found");
    // No first-start admin in OIDC mode: users come from the identity provider.
    assert!(!server.data_dir().join("initial-credentials").exists());

    let (server, _keys) = file_server(|_| {}).await;
    let cfg = server.client().get("/api/v1/auth/config").await.expect(200);
    assert_eq!(cfg["oidc_issuer"], ISSUER);
    assert_eq!(cfg["oidc_client_id"], "stardag-sdk");
}

#[tokio::test]
async fn ui_me_provisions_a_user_with_a_personal_workspace_once() {
    let (server, _keys) = file_server(|c| {
        c.oidc.external_issuer_url = Some(EXTERNAL_ISSUER.into());
    })
    .await;
    let c = server.client();
    let mut cl = claims("kc-user-1", Some("Jane.Doe@corp.example"));
    cl["given_name"] = json!("Jane");
    cl["family_name"] = json!("Doe");
    let first = me(&c, &token(&cl)).await.expect(200);
    assert_eq!(first["user"]["external_id"], "kc-user-1");
    assert_eq!(first["user"]["email"], "Jane.Doe@corp.example");
    assert_eq!(first["user"]["display_name"], "Jane Doe");
    let ws = first["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["slug"], "jane-doe");
    assert_eq!(ws[0]["name"], "Jane Doe's Workspace");
    assert_eq!(ws[0]["role"], "owner");
    assert_eq!(ws[0]["is_personal"], true);

    // The same identity again (here via the external issuer): the same user, no second
    // workspace.
    cl["iss"] = json!(EXTERNAL_ISSUER);
    let second = me(&c, &token(&cl)).await.expect(200);
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(second["workspaces"], first["workspaces"]);
}

#[tokio::test]
async fn exchange_provisions_like_ui_me_and_mints_internal_tokens() {
    let (server, _keys) = file_server(|_| {}).await;
    let c = server.client();
    let idp = token(&claims("kc-user-2", Some("max.power@corp.example")));
    // The first call of a new user is the exchange: it provisions them with their
    // personal workspace (D15), then refuses a workspace they are not in.
    let resp = c
        .with_bearer(&idp)
        .post(
            "/api/v1/auth/exchange",
            &json!({"workspace_id": "00000000-0000-0000-0000-00000000abcd"}),
        )
        .await;
    assert_eq!(
        resp.expect(403)["detail"],
        "Not a member of the requested workspace"
    );
    let body = me(&c, &idp).await.expect(200);
    let ws = body["workspaces"].as_array().unwrap();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["slug"], "max-power");
    assert_eq!(ws[0]["is_personal"], true);
    let ws_id = ws[0]["id"].as_str().unwrap();

    for path in ["/api/v1/auth/exchange", "/auth/exchange"] {
        let minted = c
            .with_bearer(&idp)
            .post(path, &json!({"workspace_id": ws_id}))
            .await
            .expect(200);
        assert_eq!(minted["token_type"], "Bearer");
        assert_eq!(minted["expires_in"], 600);
        let internal = minted["access_token"].as_str().unwrap();
        // The internal token works on /ui/me (mode F) for the same user ...
        let again = me(&c, internal).await.expect(200);
        assert_eq!(again["user"]["id"], body["user"]["id"]);
        // ... but not on the exchange, which takes identity-provider tokens only.
        let kid = stardag_server::auth::decode_header(internal)
            .unwrap()
            .kid
            .unwrap();
        let resp = c
            .with_bearer(internal)
            .post(path, &json!({"workspace_id": ws_id}))
            .await;
        assert_401(&resp, &format!("Unable to find key with ID: {kid}"));
    }

    // A new identity without email cannot be created, on either route.
    let anonymous = token(&claims("kc-user-3", None));
    for resp in [
        me(&c, &anonymous).await,
        c.with_bearer(&anonymous)
            .post("/api/v1/auth/exchange", &json!({"workspace_id": ws_id}))
            .await,
    ] {
        assert_eq!(
            resp.expect(400)["detail"],
            "Token must contain email claim for user creation"
        );
    }
    c.with_bearer(&idp)
        .post("/api/v1/auth/exchange", &json!({}))
        .await
        .expect(422);
}

#[tokio::test]
async fn claims_rules_and_exact_messages() {
    let (server, _keys) = file_server(|_| {}).await;
    let c = server.client();
    let base = claims("kc-user-4", Some("rules@corp.example"));

    let no_kid =
        rsa_sign_with_header(IDP_KEY, &json!({"alg": "RS256", "typ": "JWT"}), &base).unwrap();
    assert_401(&me(&c, &no_kid).await, "Token missing key ID (kid)");

    let unknown = rsa_sign(IDP_KEY, "rotated-away", &base).unwrap();
    assert_401(
        &me(&c, &unknown).await,
        "Unable to find key with ID: rotated-away",
    );

    let mut wrong_iss = base.clone();
    wrong_iss["iss"] = json!("https://evil.example/realms/stardag");
    assert_401(
        &me(&c, &token(&wrong_iss)).await,
        "Invalid token claims: Invalid issuer",
    );

    let mut wrong_aud = base.clone();
    wrong_aud["aud"] = json!(["account"]);
    let expected =
        "Invalid audience. Expected one of ['stardag-ui', 'stardag-sdk'], got ['account']";
    assert_401(&me(&c, &token(&wrong_aud)).await, expected);
    wrong_aud["aud"] = json!("account");
    assert_401(&me(&c, &token(&wrong_aud)).await, expected);

    let mut expired = base.clone();
    expired["exp"] = json!(now() - 5);
    expired["iat"] = json!(now() - 700);
    assert_401(&me(&c, &token(&expired)).await, "Token has expired");

    let mut no_sub = base.clone();
    no_sub.as_object_mut().unwrap().remove("sub");
    assert_401(
        &me(&c, &token(&no_sub)).await,
        "Token missing required 'sub' (subject) claim",
    );

    // Algorithm confusion: `none` and HS256 (keyed with the public JWK) are refused.
    let none = assemble(
        &json!({"alg": "none", "typ": "JWT", "kid": KID}),
        &base,
        b"",
    );
    let hs256 = {
        let jwk = rsa_jwk(IDP_KEY, KID).unwrap().to_string();
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, jwk.as_bytes());
        let unsigned = assemble(
            &json!({"alg": "HS256", "typ": "JWT", "kid": KID}),
            &base,
            b"",
        );
        let input = unsigned.rsplit_once('.').unwrap().0.to_owned();
        let tag = ring::hmac::sign(&key, input.as_bytes());
        assemble(
            &json!({"alg": "HS256", "typ": "JWT", "kid": KID}),
            &base,
            tag.as_ref(),
        )
    };
    // A valid signature over different claims.
    let tampered = {
        let good = token(&base);
        let other = token(&claims("someone-else", Some("x@corp.example")));
        let (g, o): (Vec<&str>, Vec<&str>) =
            (good.split('.').collect(), other.split('.').collect());
        format!("{}.{}.{}", g[0], o[1], g[2])
    };
    for forged in [none, hs256, tampered] {
        let resp = me(&c, &forged).await;
        let detail = resp.expect(401)["detail"].as_str().unwrap().to_owned();
        assert!(detail.starts_with("Invalid token"), "{detail}");
    }

    // Without `aud` (e.g. Cognito access tokens) the audience is not checked.
    let mut no_aud = base.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    let body = me(&c, &token(&no_aud)).await.expect(200);
    assert_eq!(body["user"]["email"], "rules@corp.example");

    // No credentials at all.
    let resp = c.get("/api/v1/ui/me").await;
    assert_401(&resp, "Not authenticated");
}

#[tokio::test]
async fn email_relinks_a_new_subject_and_updates_follow_the_token() {
    let (server, _keys) = file_server(|_| {}).await;
    let c = server.client();
    let first = me(&c, &token(&claims("old-idp-sub", Some("sam@corp.example"))))
        .await
        .expect(200);
    // Same email (any case) from a new subject: the same user, re-linked, no new workspace.
    let relinked = me(&c, &token(&claims("new-idp-sub", Some("SAM@corp.example"))))
        .await
        .expect(200);
    assert_eq!(relinked["user"]["id"], first["user"]["id"]);
    assert_eq!(relinked["user"]["external_id"], "new-idp-sub");
    assert_eq!(relinked["workspaces"], first["workspaces"]);
    // The subject now owns the identity: a changed email follows the token.
    let mut cl = claims("new-idp-sub", Some("samuel@corp.example"));
    cl["name"] = json!("Samuel");
    let updated = me(&c, &token(&cl)).await.expect(200);
    assert_eq!(updated["user"]["id"], first["user"]["id"]);
    assert_eq!(updated["user"]["email"], "samuel@corp.example");
    assert_eq!(updated["user"]["display_name"], "Samuel");
    assert_eq!(updated["workspaces"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn fetched_jwks_is_cached_and_refetched_on_unknown_kid_at_most_once() {
    let idp = JwksServer::start(jwks(&["k1"]), None).await;
    let server = TestServer::start_with(|c| {
        oidc_config(c);
        c.oidc.jwks_url = Some(idp.url.clone());
    })
    .await;
    let c = server.client();
    assert_eq!(idp.hits(), 0, "fetched lazily");
    let k1 = rsa_sign(
        IDP_KEY,
        "k1",
        &claims("u-cache", Some("cache@corp.example")),
    )
    .unwrap();

    // A cold cache under concurrent requests: one fetch serves them all.
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let (c, t) = (c.clone(), k1.clone());
            tokio::spawn(async move { me(&c, &t).await.status.as_u16() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(idp.hits(), 1);
    me(&c, &k1).await.expect(200);
    assert_eq!(idp.hits(), 1, "served from the cache");

    // The IdP rotates in k2: the unknown kid forces one re-fetch, which finds it.
    idp.serve(jwks(&["k1", "k2"]));
    let k2 = rsa_sign(
        IDP_KEY,
        "k2",
        &claims("u-cache", Some("cache@corp.example")),
    )
    .unwrap();
    me(&c, &k2).await.expect(200);
    assert_eq!(idp.hits(), 2);

    // Another unknown kid within 30 s: no second forced fetch (D12), the kid is refused.
    let k3 = rsa_sign(
        IDP_KEY,
        "k3",
        &claims("u-cache", Some("cache@corp.example")),
    )
    .unwrap();
    for _ in 0..3 {
        assert_401(&me(&c, &k3).await, "Unable to find key with ID: k3");
    }
    assert_eq!(idp.hits(), 2);
    me(&c, &k2).await.expect(200);
    me(&c, &k1).await.expect(200);
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn https_jwks_is_verified_against_the_configured_ca() {
    let idp = JwksServer::start(jwks(&[KID]), Some(tls_acceptor())).await;
    assert!(idp.url.starts_with("https://"));
    let trusting = TestServer::start_with(|c| {
        oidc_config(c);
        c.oidc.jwks_url = Some(idp.url.clone());
        c.oidc.ca_file = Some(fixture("oidc-test-ca.pem"));
    })
    .await;
    let t = token(&claims("u-tls", Some("tls@corp.example")));
    let body = me(&trusting.client(), &t).await.expect(200);
    assert_eq!(body["user"]["email"], "tls@corp.example");
    assert_eq!(idp.hits(), 1);

    // Trusting some other certificate: the handshake fails, nothing is fetched.
    let distrusting = TestServer::start_with(|c| {
        oidc_config(c);
        c.oidc.jwks_url = Some(idp.url.clone());
        c.oidc.ca_file = Some(fixture("oidc-test-tls-cert.pem"));
    })
    .await;
    assert_401(
        &me(&distrusting.client(), &t).await,
        "Unable to validate token (JWKS fetch failed)",
    );
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn an_unreachable_jwks_answers_401_fetch_failed() {
    // A port that was just free: connection refused.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let server = TestServer::start_with(|c| {
        oidc_config(c);
        c.oidc.jwks_url = Some(format!("http://127.0.0.1:{port}/certs"));
    })
    .await;
    let t = token(&claims("u-down", Some("down@corp.example")));
    assert_401(
        &me(&server.client(), &t).await,
        "Unable to validate token (JWKS fetch failed)",
    );
}

#[tokio::test]
async fn bad_oidc_settings_fail_the_start() {
    type Tweak = fn(&mut Config);
    let cases: [(Tweak, &str); 3] = [
        (
            |c| {
                c.oidc.jwks_url = Some("https://127.0.0.1:1/certs".into());
                c.oidc.ca_file = Some("/nonexistent/ca.pem".into());
            },
            "oidc.ca_file",
        ),
        (
            |c| {
                c.oidc.jwks_url = Some("https://127.0.0.1:1/certs".into());
                c.oidc.ca_file = Some(fixture("README.md"));
            },
            "no PEM certificates",
        ),
        (
            |c| c.oidc.jwks_url = Some("ftp://idp.example/certs".into()),
            "oidc.jwks_url",
        ),
    ];
    for (tweak, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::harness::test_config(dir.path());
        oidc_config(&mut config);
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = stardag_server::server::run(Arc::new(config), listener, async {})
            .await
            .expect_err("start must fail");
        assert!(err.to_string().contains(want), "{err}");
    }
}
