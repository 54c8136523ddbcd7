//! First start, local login and registration, token exchange and token refusal, body
//! limits on real routes, persistence across restarts, and graceful shutdown mid-request.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::TestServer;
pub use crate::harness::{credentials, login};

async fn admin_session(server: &TestServer) -> (String, HashMap<String, String>) {
    let creds = credentials(server.data_dir());
    let token = login(
        &server.client(),
        &creds["STARDAG_ADMIN_EMAIL"],
        &creds["STARDAG_ADMIN_PASSWORD"],
    )
    .await;
    (token, creds)
}

#[tokio::test]
async fn first_start_writes_private_credentials_once() {
    let server = TestServer::start().await;
    let path = server.data_dir().join("initial-credentials");
    let creds = credentials(server.data_dir());
    for key in [
        "STARDAG_API_URL",
        "STARDAG_REGISTRY_URL",
        "STARDAG_API_KEY",
        "STARDAG_ADMIN_EMAIL",
        "STARDAG_ADMIN_PASSWORD",
        "STARDAG_WORKSPACE_ID",
        "STARDAG_ENVIRONMENT_ID",
    ] {
        assert!(creds.contains_key(key), "{key} missing");
    }
    assert_eq!(
        creds["STARDAG_REGISTRY_URL"],
        format!("http://{}", server.addr)
    );
    assert!(creds["STARDAG_API_KEY"].starts_with("sk_"));
    assert_eq!(creds["STARDAG_ADMIN_EMAIL"], "admin@localhost");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // The admin can log in and sees the personal workspace with its environment.
    let (token, _) = admin_session(&server).await;
    let me = server
        .client()
        .with_bearer(&token)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(me["user"]["email"], "admin@localhost");
    let ws = &me["workspaces"][0];
    assert_eq!(ws["id"], creds["STARDAG_WORKSPACE_ID"].as_str());
    assert_eq!(ws["role"], "owner");
    assert_eq!(ws["is_personal"], true);

    // A restart creates nothing new and leaves the file alone.
    let before = std::fs::read(&path).unwrap();
    let server = server.restart().await;
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let (token, _) = admin_session(&server).await;
    let me = server
        .client()
        .with_bearer(&token)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(me["workspaces"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bootstrap_admin_can_be_configured() {
    let server = TestServer::start_with(|c| {
        c.auth.bootstrap_admin_email = Some("ops@example.com".into());
        c.auth.bootstrap_admin_password = Some("correct horse battery".into());
    })
    .await;
    let creds = credentials(server.data_dir());
    assert_eq!(creds["STARDAG_ADMIN_EMAIL"], "ops@example.com");
    login(&server.client(), "OPS@example.com", "correct horse battery").await;
}

#[tokio::test]
async fn login_failures_look_alike_and_are_throttled() {
    let server = TestServer::start().await;
    let c = server.client();
    let wrong = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": "admin@localhost", "password": "not-the-password"}),
        )
        .await;
    assert_eq!(
        wrong.expect(401),
        json!({"detail": "Invalid email or password"})
    );
    let unknown = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": "nobody@example.com", "password": "whatever123"}),
        )
        .await;
    assert_eq!(
        unknown.expect(401),
        json!({"detail": "Invalid email or password"})
    );

    for _ in 0..9 {
        c.post(
            "/api/v1/auth/login",
            &json!({"email": "admin@localhost", "password": "nope-nope"}),
        )
        .await
        .expect(401);
    }
    let limited = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": "admin@localhost", "password": "nope-nope"}),
        )
        .await;
    let body = limited.expect(429);
    assert_eq!(body["detail"]["code"], "RATE_LIMIT");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry));
}

#[tokio::test]
async fn registration_is_off_by_default_and_validates_when_on() {
    let off = TestServer::start().await;
    let resp = off
        .client()
        .post(
            "/api/v1/auth/register",
            &json!({"email": "a@example.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        resp.expect(403),
        json!({"detail": "Registration is disabled"})
    );

    let server = TestServer::start_with(|c| c.auth.local_registration = true).await;
    let c = server.client();
    let created = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": "Jane.Doe@example.com", "password": "password123", "display_name": "Jane"}),
        )
        .await
        .expect(201);
    assert_eq!(created["token_type"], "Bearer");
    let token = created["session_token"].as_str().unwrap();
    let me = c.with_bearer(token).get("/api/v1/ui/me").await.expect(200);
    assert_eq!(me["user"]["display_name"], "Jane");
    assert!(me["user"]["external_id"]
        .as_str()
        .unwrap()
        .starts_with("local:"));
    let ws = &me["workspaces"][0];
    assert_eq!(ws["slug"], "jane-doe");
    assert_eq!(ws["name"], "Jane's Workspace");

    let dup = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": "jane.doe@EXAMPLE.com", "password": "password123"}),
        )
        .await;
    assert_eq!(
        dup.expect(409),
        json!({"detail": "Email already registered"})
    );
    let short = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": "b@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(
        short.expect(422)["detail"][0]["loc"],
        json!(["body", "password"])
    );
    let bad_email = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": "not-an-email", "password": "password123"}),
        )
        .await;
    assert_eq!(bad_email.status.as_u16(), 422);
}

#[tokio::test]
async fn exchange_mints_internal_tokens_for_members_only() {
    let server = TestServer::start_with(|c| c.auth.local_registration = true).await;
    let c = server.client();
    let (session, creds) = admin_session(&server).await;
    let ws = creds["STARDAG_WORKSPACE_ID"].clone();

    let resp = c
        .with_bearer(&session)
        .post("/api/v1/auth/exchange", &json!({"workspace_id": ws}))
        .await
        .expect(200);
    assert_eq!(resp["token_type"], "Bearer");
    assert_eq!(resp["expires_in"], 600);
    let internal = resp["access_token"].as_str().unwrap().to_string();
    // Mode F accepts the internal token too.
    let me = c
        .with_bearer(&internal)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(me["user"]["email"], "admin@localhost");
    // The root mount works the same.
    c.with_bearer(&session)
        .post("/auth/exchange", &json!({"workspace_id": ws}))
        .await
        .expect(200);

    // An internal token is not an identity token.
    let resp = c
        .with_bearer(&internal)
        .post("/api/v1/auth/exchange", &json!({"workspace_id": ws}))
        .await;
    assert_eq!(resp.status.as_u16(), 401);
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));

    // Another user's workspace: not a member.
    let other = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": "eve@example.com", "password": "password123"}),
        )
        .await
        .expect(201);
    let eve = other["session_token"].as_str().unwrap();
    let resp = c
        .with_bearer(eve)
        .post("/api/v1/auth/exchange", &json!({"workspace_id": ws}))
        .await;
    assert_eq!(
        resp.expect(403),
        json!({"detail": "Not a member of the requested workspace"})
    );
    let resp = c
        .with_bearer(eve)
        .post(
            "/api/v1/auth/exchange",
            &json!({"workspace_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 403);

    // Validation comes after authentication, broken JSON before it.
    let resp = c
        .with_bearer(&session)
        .post("/api/v1/auth/exchange", &json!({}))
        .await;
    assert_eq!(resp.expect(422)["detail"][0]["type"], "missing");
    let resp = c.post("/api/v1/auth/exchange", &json!({})).await;
    assert_eq!(resp.expect(401), json!({"detail": "Not authenticated"}));
    let resp = c
        .send(
            Method::POST,
            "/api/v1/auth/exchange",
            &[("content-type", "application/json")],
            Bytes::from_static(b"{\"workspace_id\":"),
        )
        .await;
    assert_eq!(resp.expect(422)["detail"][0]["type"], "json_invalid");
}

fn forged(header: Value, claims: Value) -> String {
    use base64::Engine;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        e.encode(header.to_string()),
        e.encode(claims.to_string()),
        e.encode(b"signature")
    )
}

#[tokio::test]
async fn bad_tokens_are_refused_with_upstream_messages() {
    let server = TestServer::start().await;
    let c = server.client();
    let (_, creds) = admin_session(&server).await;
    let me = |t: String| {
        let c = c.clone();
        async move { c.with_bearer(&t).get("/api/v1/ui/me").await }
    };

    let resp = c.get("/api/v1/ui/me").await;
    assert_eq!(resp.expect(401), json!({"detail": "Not authenticated"}));
    assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
    let basic = c
        .with_header("authorization", "Basic YTpi")
        .get("/api/v1/ui/me")
        .await;
    assert_eq!(basic.expect(401), json!({"detail": "Not authenticated"}));

    let garbage = me("not-a-jwt".into()).await;
    assert!(garbage.expect(401)["detail"]
        .as_str()
        .unwrap()
        .starts_with("Invalid token"));

    let now = chrono_now();
    let claims = json!({"sub": uuid::Uuid::now_v7(), "workspace_id": creds["STARDAG_WORKSPACE_ID"],
        "iss": "stardag-api", "aud": "stardag", "iat": now, "exp": now + 600});
    let none = me(forged(json!({"alg": "none", "typ": "JWT"}), claims.clone())).await;
    assert_eq!(none.status.as_u16(), 401);
    let hs = me(forged(
        json!({"alg": "HS256", "typ": "JWT", "kid": "x"}),
        claims.clone(),
    ))
    .await;
    assert_eq!(hs.status.as_u16(), 401);

    // A token signed by a key this server does not have.
    let foreign_key =
        stardag_server::auth::jwt::SigningKey::generate(&ring::rand::SystemRandom::new()).unwrap();
    let foreign =
        stardag_server::auth::jwt::test_support::es256_sign_json(&foreign_key, &claims).unwrap();
    assert_eq!(me(foreign).await.status.as_u16(), 401);
}

#[tokio::test]
async fn expired_session_tokens_say_expired() {
    let server = TestServer::start_with(|c| c.auth.session_ttl_seconds = 0).await;
    let (token, _) = admin_session(&server).await;
    let resp = server
        .client()
        .with_bearer(&token)
        .get("/api/v1/ui/me")
        .await;
    assert_eq!(resp.expect(401), json!({"detail": "Token has expired"}));
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn jwks_and_auth_config_are_mounted_twice() {
    let server = TestServer::start().await;
    let c = server.client();
    let a = c.get("/.well-known/jwks.json").await.expect(200);
    let b = c.get("/api/v1/.well-known/jwks.json").await.expect(200);
    assert_eq!(a, b);
    let key = &a["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    let expected = json!({"auth_mode": "local", "oidc_issuer": null, "oidc_client_id": null});
    assert_eq!(c.get("/auth/config").await.expect(200), expected);
    assert_eq!(c.get("/api/v1/auth/config").await.expect(200), expected);

    // The signing key survives a restart: the JWKS is the same.
    let server = server.restart().await;
    assert_eq!(
        server
            .client()
            .get("/.well-known/jwks.json")
            .await
            .expect(200),
        a
    );
}

#[tokio::test]
async fn sessions_and_users_survive_a_restart() {
    let server = TestServer::start_with(|c| c.auth.local_registration = true).await;
    let c = server.client();
    let created = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": "kim@example.com", "password": "password123"}),
        )
        .await
        .expect(201);
    let token = created["session_token"].as_str().unwrap().to_string();
    let server = server.restart().await;
    let c = server.client();
    let me = c.with_bearer(&token).get("/api/v1/ui/me").await.expect(200);
    assert_eq!(me["user"]["email"], "kim@example.com");
    login(&c, "kim@example.com", "password123").await;
}

#[tokio::test]
async fn body_limits_gzip_and_content_types() {
    let server = TestServer::start_with(|c| c.http.max_body_bytes = 1024).await;
    let c = server.client();
    let big = json!({"email": "x".repeat(2000), "password": "p"});
    let resp = c.post("/api/v1/auth/login", &big).await;
    assert_eq!(
        resp.expect(413),
        json!({"detail": "Request body too large"})
    );

    // gzip is accepted, and its decoded size is limited too.
    let gz = |v: &Value| {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(v.to_string().as_bytes()).unwrap();
        Bytes::from(enc.finish().unwrap())
    };
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let ok_body = json!({"email": "nobody@example.com", "password": "whatever123"});
    let resp = c
        .send(Method::POST, "/api/v1/auth/login", &headers, gz(&ok_body))
        .await;
    assert_eq!(
        resp.expect(401),
        json!({"detail": "Invalid email or password"})
    );
    let bomb = json!({"email": "a".repeat(100_000), "password": "p"});
    let compressed = gz(&bomb);
    assert!(compressed.len() < 1024);
    let resp = c
        .send(Method::POST, "/api/v1/auth/login", &headers, compressed)
        .await;
    assert_eq!(resp.status.as_u16(), 413);
    let resp = c
        .send(
            Method::POST,
            "/api/v1/auth/login",
            &headers,
            Bytes::from_static(b"not gzip"),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 400);

    // Missing body, wrong field types.
    let resp = c
        .send(Method::POST, "/api/v1/auth/login", &[], Bytes::new())
        .await;
    assert_eq!(resp.expect(422)["detail"][0]["loc"], json!(["body"]));
    let resp = c
        .post("/api/v1/auth/login", &json!({"email": 5, "password": "x"}))
        .await;
    assert_eq!(
        resp.expect(422)["detail"][0]["loc"],
        json!(["body", "email"])
    );
    let resp = c
        .send(
            Method::POST,
            "/api/v1/auth/login",
            &[("content-type", "text/plain")],
            Bytes::from_static(b"{}"),
        )
        .await;
    assert_eq!(resp.status.as_u16(), 422);
}

#[tokio::test]
async fn graceful_shutdown_finishes_a_request_in_flight() {
    let mut server = TestServer::start().await;
    let body = json!({"email": "admin@localhost", "password": "wrong-password"}).to_string();
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (first, rest) = body.split_at(10);
    stream.write_all(first.as_bytes()).await.unwrap();
    // Give the server time to start reading this request, then ask it to stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(async move {
        server.stop().await;
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "server stopped with a request in flight"
    );
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    assert!(text.contains("Invalid email or password"), "{text}");
    tokio::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("server stops after the request")
        .unwrap();
}
