//! Signing in to the web UI through an OIDC provider (ui.md §3.4, §10.1): the
//! authorization code flow with PKCE against a small provider started here. It serves
//! discovery, `/authorize` (answers at once with a code, as if the user had signed in),
//! `/token` (checks client, redirect URI and S256(verifier) == challenge) and the JWKS,
//! and signs ID tokens with the test RSA key in tests/fixtures.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use stardag_server::auth::jwt::test_support::{rsa_jwk, rsa_sign};
use stardag_server::config::{AuthMode, Config};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::text;
use crate::harness::{Client, TestResponse, TestServer};

const IDP_KEY: &[u8] = include_bytes!("../../fixtures/oidc-test-rsa.pk8");
const KID: &str = "ui-idp-key";
const CLIENT: &str = "stardag-ui";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

fn params(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// What `/authorize` was asked for, kept until the code is redeemed.
#[derive(Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    method: String,
    nonce: String,
}

#[derive(Default)]
struct IdpState {
    issuer: String,
    authorize_params: Mutex<Vec<HashMap<String, String>>>,
    grants: Mutex<HashMap<String, Grant>>,
    token_calls: AtomicUsize,
    /// Claims merged into the next ID tokens (`null` removes one).
    tweak: Mutex<Value>,
    /// `/authorize` answers this `error` instead of a code.
    deny: Mutex<Option<String>>,
    user: Mutex<(String, String)>,
}

/// The test identity provider.
struct Idp {
    issuer: String,
    state: Arc<IdpState>,
    task: JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    async fn start() -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(IdpState {
            issuer: issuer.clone(),
            user: Mutex::new(("idp-sub-1".into(), "Jane.Doe@example.com".into())),
            tweak: Mutex::new(json!({})),
            ..IdpState::default()
        });
        let st = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let st = st.clone();
                        async move { Ok::<_, Infallible>(serve(&st, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Idp {
            issuer,
            state,
            task,
        }
    }

    fn tweak(&self, claims: Value) {
        *self.state.tweak.lock().unwrap() = claims;
    }

    fn token_calls(&self) -> usize {
        self.state.token_calls.load(Ordering::SeqCst)
    }
}

fn answer(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

fn found(location: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut()
        .insert("location", location.parse().unwrap());
    r
}

async fn serve(st: &IdpState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = params(req.uri().query().unwrap_or(""));
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/.well-known/openid-configuration") => answer(
            StatusCode::OK,
            json!({
                "issuer": st.issuer,
                "authorization_endpoint": format!("{}/authorize", st.issuer),
                "token_endpoint": format!("{}/token", st.issuer),
                "jwks_uri": format!("{}/certs", st.issuer),
                "code_challenge_methods_supported": ["S256"],
            }),
        ),
        (Method::GET, "/certs") => answer(
            StatusCode::OK,
            json!({ "keys": [rsa_jwk(IDP_KEY, KID).unwrap()] }),
        ),
        (Method::GET, "/authorize") => {
            st.authorize_params.lock().unwrap().push(query.clone());
            let get = |k: &str| query.get(k).cloned().unwrap_or_default();
            let redirect = get("redirect_uri");
            let state = enc(&get("state"));
            if let Some(error) = st.deny.lock().unwrap().clone() {
                return found(&format!(
                    "{redirect}?error={error}&error_description=User+cancelled+the+sign-in&state={state}"
                ));
            }
            let code = format!("code-{}", st.grants.lock().unwrap().len() + 1);
            st.grants.lock().unwrap().insert(
                code.clone(),
                Grant {
                    client_id: get("client_id"),
                    redirect_uri: redirect.clone(),
                    challenge: get("code_challenge"),
                    method: get("code_challenge_method"),
                    nonce: get("nonce"),
                },
            );
            found(&format!("{redirect}?code={code}&state={state}"))
        }
        (Method::POST, "/token") => {
            st.token_calls.fetch_add(1, Ordering::SeqCst);
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let form = params(std::str::from_utf8(&body).unwrap());
            token(st, &form)
        }
        _ => answer(StatusCode::NOT_FOUND, json!({})),
    }
}

/// The token endpoint: a public client with PKCE (RFC 7636 §4.6).
fn token(st: &IdpState, form: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let refuse = |why: &str| {
        answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": why}),
        )
    };
    let Some(grant) = st.grants.lock().unwrap().get(get("code")).cloned() else {
        return refuse("unknown code");
    };
    if get("grant_type") != "authorization_code"
        || get("client_id") != grant.client_id
        || get("redirect_uri") != grant.redirect_uri
    {
        return refuse("client or redirect_uri mismatch");
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, get("code_verifier").as_bytes());
    let computed = stardag_server::auth::b64::encode(digest.as_ref());
    if grant.method != "S256" || computed != grant.challenge {
        return refuse("PKCE verification failed");
    }
    let (sub, email) = st.user.lock().unwrap().clone();
    let mut claims = json!({
        "iss": st.issuer,
        "sub": sub,
        "aud": grant.client_id,
        "exp": now() + 300,
        "iat": now(),
        "nonce": grant.nonce,
        "email": email,
        "name": "Jane Doe",
    });
    for (k, v) in st.tweak.lock().unwrap().as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    let id_token = rsa_sign(IDP_KEY, KID, &claims).unwrap();
    answer(
        StatusCode::OK,
        json!({"access_token": "opaque", "token_type": "Bearer", "id_token": id_token}),
    )
}

fn oidc_ui_config(c: &mut Config, issuer: &str) {
    c.auth.mode = AuthMode::Oidc;
    c.oidc.issuer_url = issuer.into();
    c.oidc.jwks_url = Some(format!("{issuer}/certs"));
    c.oidc.ui_client_id = CLIENT.into();
    c.oidc.ui_provider_name = Some("Test IdP".into());
}

async fn setup() -> (Idp, TestServer) {
    let idp = Idp::start().await;
    let server = TestServer::start_with(|c| oidc_ui_config(c, &idp.issuer)).await;
    (idp, server)
}

/// Every `Set-Cookie` of an answer.
fn set_cookies(r: &TestResponse) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_named(r: &TestResponse, name: &str) -> Option<String> {
    set_cookies(r)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// `name=value` of a `Set-Cookie` line.
fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A browser half-way through: the login cookie and the provider's redirect back.
struct Attempt {
    login_cookie: String,
    /// Path and query of the callback the provider sent the browser to.
    callback: String,
}

/// `GET /login/oidc?next=…` and the provider's `/authorize`, as a browser follows them.
async fn begin(server: &TestServer, idp: &Idp, next: &str) -> Attempt {
    begin_with(server, idp, next, |url| url.to_owned()).await
}

/// Like [`begin`], with the URL to the provider changed on the way (an attacker's edit).
async fn begin_with(
    server: &TestServer,
    idp: &Idp,
    next: &str,
    edit: impl Fn(&str) -> String,
) -> Attempt {
    let c = server.client();
    let r = c.get(&format!("/login/oidc?next={}", enc(next))).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let to = r.header("location").unwrap().to_owned();
    // The provider's own address, or its second name in the external-issuer test.
    let base = to.split("/authorize?").next().unwrap();
    assert!(
        base == idp.issuer || base == idp.issuer.replace("127.0.0.1", "localhost"),
        "{to}"
    );
    let login = cookie_named(&r, "sd_oidc_login").expect("login cookie");
    for flag in [
        "HttpOnly",
        "SameSite=Lax",
        "Path=/login/callback",
        "Max-Age=600",
    ] {
        assert!(login.contains(flag), "{login}");
    }
    let to = edit(&to);
    let path = &to[base.len()..];
    let back = Client::new(idp.issuer[7..].parse().unwrap())
        .get(path)
        .await;
    assert_eq!(back.status, 302);
    let callback = back.header("location").unwrap().to_owned();
    let origin = format!("http://{}", server.addr);
    assert!(
        callback.starts_with(&format!("{origin}/login/callback?")),
        "{callback}"
    );
    Attempt {
        login_cookie: pair(&login),
        callback: callback[origin.len()..].to_owned(),
    }
}

async fn finish(server: &TestServer, a: &Attempt) -> TestResponse {
    server
        .client()
        .send(
            Method::GET,
            &a.callback,
            &[("cookie", &a.login_cookie)],
            Bytes::new(),
        )
        .await
}

async fn get_signed_in(server: &TestServer, cookie: &str, path: &str) -> TestResponse {
    server
        .client()
        .send(Method::GET, path, &[("cookie", cookie)], Bytes::new())
        .await
}

/// A refused callback: the login page with `status` and `message`, no session, and the
/// login cookie cleared.
#[track_caller]
fn assert_refused(r: &TestResponse, status: u16, message: &str) {
    let html = text(r);
    assert_eq!(r.status.as_u16(), status, "{html}");
    assert!(html.contains(message), "{message:?} not in {html}");
    assert!(html.contains("Sign in with Test IdP"), "{html}");
    assert!(cookie_named(r, "sd_session").is_none());
    let cleared = cookie_named(r, "sd_oidc_login").expect("login cookie cleared");
    assert!(
        cleared.starts_with("sd_oidc_login=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn oidc_sign_in_provisions_the_user_and_opens_the_ui() {
    let (idp, server) = setup().await;
    let c = server.client();
    let page = c.get("/login?next=/account").await;
    assert_eq!(page.status, 200);
    let html = text(&page);
    assert!(
        html.contains(r#"href="/login/oidc?next=%2Faccount""#),
        "{html}"
    );
    assert!(html.contains("Sign in with Test IdP"));
    assert!(
        !html.contains("type=\"password\""),
        "no password form: {html}"
    );

    let a = begin(&server, &idp, "/account").await;
    let asked = idp.state.authorize_params.lock().unwrap()[0].clone();
    let origin = format!("http://{}", server.addr);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], CLIENT);
    assert_eq!(asked["redirect_uri"], format!("{origin}/login/callback"));
    assert_eq!(asked["scope"], "openid email profile");
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["code_challenge"].len(), 43);
    assert!(asked["state"].len() >= 43 && asked["nonce"].len() >= 43);
    assert_ne!(asked["state"], asked["nonce"]);

    let r = finish(&server, &a).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(r.header("location"), Some("/account"));
    let session = cookie_named(&r, "sd_session").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(session.contains(flag), "{session}");
    }
    let cleared = cookie_named(&r, "sd_oidc_login").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(idp.token_calls(), 1);

    // Signed in as the provisioned user, with a personal workspace (D15).
    let cookie = pair(&session);
    let account = get_signed_in(&server, &cookie, "/account").await;
    assert_eq!(account.status, 200);
    let html = text(&account);
    assert!(html.contains("Jane.Doe@example.com"), "{html}");
    assert!(html.contains("Jane Doe"), "{html}");
    let home = get_signed_in(&server, &cookie, "/").await;
    assert_eq!(home.status, 303);
    assert_eq!(
        home.header("location"),
        Some("/ws/jane-doe/env/local/connect")
    );
    let connect = get_signed_in(&server, &cookie, "/ws/jane-doe/env/local/connect").await;
    assert_eq!(connect.status, 200, "{}", text(&connect));

    // The same callback again: refused by this server before the provider is asked,
    // both with the copied login cookie and without it (the browser cleared it).
    assert_refused(&finish(&server, &a).await, 400, "already used");
    let no_cookie = Attempt {
        login_cookie: String::new(),
        callback: a.callback.clone(),
    };
    assert_refused(&finish(&server, &no_cookie).await, 400, "already used");
    assert_eq!(idp.token_calls(), 1);

    // A second sign-in of the same provider subject finds the same user.
    let again = finish(
        &server,
        &begin(&server, &idp, "https://evil.example/").await,
    )
    .await;
    assert_eq!(again.status, 303);
    assert_eq!(
        again.header("location"),
        Some("/"),
        "next is same-origin only"
    );
    let cookie = pair(&cookie_named(&again, "sd_session").unwrap());
    let home = get_signed_in(&server, &cookie, "/").await;
    assert_eq!(
        home.header("location"),
        Some("/ws/jane-doe/env/local/connect")
    );
}

#[tokio::test]
async fn the_provider_checks_the_pkce_verifier_and_a_refused_code_is_shown() {
    let (idp, server) = setup().await;
    // The challenge swapped on the way to the provider (as by an attacker who wants the
    // code for their own verifier): this server's verifier no longer matches.
    let other = stardag_server::auth::oidc_login::pkce_challenge("someone-else's verifier");
    let a = begin_with(&server, &idp, "/", |url| {
        let (base, query) = url.split_once('?').unwrap();
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("code_challenge", _)) => format!("code_challenge={other}"),
                _ => kv.to_owned(),
            })
            .collect();
        format!("{base}?{}", query.join("&"))
    })
    .await;
    assert_eq!(
        idp.state.grants.lock().unwrap()["code-1"].challenge,
        other,
        "the edit reached the provider"
    );
    let r = finish(&server, &a).await;
    assert_refused(
        &r,
        502,
        "did not accept the sign-in code (invalid_grant: PKCE verification failed)",
    );
    assert_eq!(idp.token_calls(), 1);
}

#[tokio::test]
async fn a_callback_with_another_state_is_refused() {
    let (idp, server) = setup().await;
    let a = begin(&server, &idp, "/").await;
    let p = params(a.callback.split_once('?').unwrap().1);
    let forged = Attempt {
        login_cookie: a.login_cookie.clone(),
        callback: format!("/login/callback?code={}&state=forged", p["code"]),
    };
    assert_refused(&finish(&server, &forged).await, 400, "state mismatch");
    // A login cookie signed by someone else is no cookie at all.
    let tampered = Attempt {
        login_cookie: format!("{}x", a.login_cookie),
        callback: a.callback.clone(),
    };
    assert_refused(
        &finish(&server, &tampered).await,
        400,
        "expired or was already used",
    );
    assert_eq!(idp.token_calls(), 0, "the code was never sent");
}

#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_audience_issuer_or_expiry_are_refused() {
    let (idp, server) = setup().await;
    let cases = [
        (
            json!({"nonce": "another-attempt"}),
            "its nonce is not this sign-in's",
        ),
        (json!({"nonce": null}), "its nonce is not this sign-in's"),
        (
            json!({"aud": "stardag-sdk"}),
            "Invalid audience. Expected one of ['stardag-ui'], got ['stardag-sdk']",
        ),
        (
            json!({"aud": null}),
            "its audience does not name the client",
        ),
        (
            json!({"aud": ["stardag-ui", "other"], "azp": "other"}),
            "issued to another client",
        ),
        (json!({"exp": now() - 10}), "Token has expired"),
        (json!({"iss": "https://evil.example"}), "Invalid issuer"),
    ];
    for (tweak, message) in cases {
        idp.tweak(tweak.clone());
        let r = finish(&server, &begin(&server, &idp, "/").await).await;
        assert_refused(&r, 401, message);
        assert!(text(&r).contains("ID token was refused"), "{tweak}");
    }
    // No user was created by any of them.
    idp.tweak(json!({}));
    let ok = finish(&server, &begin(&server, &idp, "/").await).await;
    assert_eq!(ok.status, 303, "{}", text(&ok));
}

#[tokio::test]
async fn a_provider_error_is_shown_only_for_this_browsers_attempt() {
    let (idp, server) = setup().await;
    *idp.state.deny.lock().unwrap() = Some("access_denied".into());
    let a = begin(&server, &idp, "/").await;
    let r = finish(&server, &a).await;
    assert_refused(
        &r,
        400,
        "The identity provider refused the sign-in: access_denied: User cancelled the sign-in",
    );
    // A forged error link (no attempt of this browser): the provider's text is not shown.
    let forged = server
        .client()
        .get("/login/callback?error=x&error_description=Call+0800+EVIL&state=s")
        .await;
    assert_refused(&forged, 400, "expired or was already used");
    assert!(!text(&forged).contains("EVIL"));
    assert_eq!(idp.token_calls(), 0);
}

#[tokio::test]
async fn no_password_sign_in_in_oidc_mode_and_an_unreachable_provider_is_a_page() {
    let (idp, server) = setup().await;
    let origin = format!("http://{}", server.addr);
    let r = server
        .client()
        .send(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &origin),
            ],
            Bytes::from("email=a%40b.c&password=secret-password&next=%2F"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("accepts no passwords"), "{}", text(&r));
    assert!(set_cookies(&r).is_empty());
    drop(idp);

    // The provider is gone: a page that says so, not a 500.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let server = TestServer::start_with(|c| oidc_ui_config(c, &dead)).await;
    let r = server.client().get("/login/oidc").await;
    assert_eq!(r.status, 502);
    assert!(text(&r).contains("cannot be reached"), "{}", text(&r));
}

#[tokio::test]
async fn the_browser_goes_to_the_external_issuer_and_the_server_to_the_internal_one() {
    let idp = Idp::start().await;
    // The same provider under a second name: `localhost` for browsers, 127.0.0.1 for
    // the server. Discovery is fetched from the internal URL and names it as issuer.
    let external = idp.issuer.replace("127.0.0.1", "localhost");
    let server = TestServer::start_with(|c| {
        oidc_ui_config(c, &idp.issuer);
        c.oidc.external_issuer_url = Some(external.clone());
        c.oidc.ui_provider_name = None;
    })
    .await;
    let page = text(&server.client().get("/login").await);
    assert!(page.contains("Sign in with localhost"), "{page}");
    let r = server.client().get("/login/oidc").await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let to = r.header("location").unwrap();
    assert!(to.starts_with(&format!("{external}/authorize?")), "{to}");
    // The rest of the flow works through the internal token endpoint.
    let a = begin(&server, &idp, "/").await;
    let ok = finish(&server, &a).await;
    assert_eq!(ok.status, 303, "{}", text(&ok));
    assert_eq!(idp.token_calls(), 1);
}
