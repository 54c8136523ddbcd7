//! Identity helpers for integration tests: the first-start credentials, local login and
//! registration, token exchange, and OIDC tokens signed with the test IdP key.

#![allow(dead_code)]

use serde_json::{json, Value};
use stardag_server::auth::jwt::test_support::{rsa_jwks_json, rsa_sign};
use stardag_server::config::{AuthMode, Config};

pub use crate::harness::{exchange, login};
use crate::harness::{Client, TestServer};

pub const PASSWORD: &str = "correct horse battery staple";

/// What the first start writes to `<data_dir>/initial-credentials` (D4).
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub email: String,
    pub password: String,
    pub api_key: String,
    pub workspace_id: String,
    pub environment_id: String,
}

/// Reads the first-start credentials. A request first: the server bootstraps before it
/// accepts connections, so an answered request means the file exists.
pub async fn bootstrap_credentials(server: &TestServer) -> Bootstrap {
    server.client().get("/health").await.expect(200);
    let text = std::fs::read_to_string(server.data_dir().join("initial-credentials"))
        .expect("initial-credentials written on first start");
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} missing from initial-credentials"))
            .to_string()
    };
    Bootstrap {
        email: get("STARDAG_ADMIN_EMAIL"),
        password: get("STARDAG_ADMIN_PASSWORD"),
        api_key: get("STARDAG_API_KEY"),
        workspace_id: get("STARDAG_WORKSPACE_ID"),
        environment_id: get("STARDAG_ENVIRONMENT_ID"),
    }
}

/// A signed-in user: their identity (session or OIDC) token, an internal token for
/// their first workspace, and clients carrying each.
#[derive(Clone)]
pub struct Account {
    pub user_id: String,
    pub email: String,
    /// The workspace the internal token was minted for (the personal one, normally).
    pub home_ws: String,
    /// Bearer = identity token (modes F and X).
    pub ident: Client,
    /// Bearer = internal token (modes I and F).
    pub api: Client,
}

impl Account {
    /// Completes an account from its identity token: `/ui/me`, then an exchange for the
    /// first listed workspace.
    pub async fn from_identity(server: &TestServer, identity_token: &str) -> Account {
        let ident = server.client().with_bearer(identity_token);
        let me = ident.get("/api/v1/ui/me").await.expect(200);
        let home_ws = me["workspaces"][0]["id"]
            .as_str()
            .expect("a workspace")
            .to_string();
        let internal = exchange(&server.client(), identity_token, &home_ws).await;
        Account {
            user_id: me["user"]["id"].as_str().unwrap().into(),
            email: me["user"]["email"].as_str().unwrap().into(),
            home_ws,
            ident,
            api: server.client().with_bearer(&internal),
        }
    }

    /// `/ui/me`'s `workspaces` entries.
    pub async fn workspaces(&self) -> Vec<Value> {
        let me = self.ident.get("/api/v1/ui/me").await.expect(200);
        me["workspaces"].as_array().unwrap().clone()
    }

    /// `/ui/me/invites`.
    pub async fn invites(&self) -> Vec<Value> {
        let body = self.ident.get("/api/v1/ui/me/invites").await.expect(200);
        body.as_array().unwrap().clone()
    }
}

/// The bootstrap admin, logged in.
pub async fn admin_account(server: &TestServer) -> Account {
    let creds = bootstrap_credentials(server).await;
    let session = login(&server.client(), &creds.email, &creds.password).await;
    Account::from_identity(server, &session).await
}

/// Registers a local user (needs `auth.local_registration = true`) and signs them in.
pub async fn register(server: &TestServer, email: &str, display_name: Option<&str>) -> Account {
    let body = server
        .client()
        .post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": PASSWORD, "display_name": display_name}),
        )
        .await
        .expect(201);
    let session = body["session_token"].as_str().expect("session_token");
    Account::from_identity(server, session).await
}

/// A server with local registration on (and any further tweak).
pub async fn server_with_registration(tweak: impl FnOnce(&mut Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.auth.local_registration = true;
        tweak(c);
    })
    .await
}

// --- OIDC: the test IdP key from tests/fixtures ---

pub const IDP_KEY: &[u8] = include_bytes!("../fixtures/oidc-test-rsa.pk8");
pub const IDP_KID: &str = "test-idp-key";
pub const IDP_ISSUER: &str = "https://idp.test/realms/stardag";

/// A server in OIDC mode trusting the test IdP key through `oidc.jwks_file`.
pub async fn oidc_server() -> TestServer {
    TestServer::start_with(|c| {
        c.auth.mode = AuthMode::Oidc;
        c.oidc.issuer_url = IDP_ISSUER.into();
        let path = c.data_dir.join("idp-jwks.json");
        std::fs::write(&path, rsa_jwks_json(IDP_KEY, IDP_KID).unwrap()).unwrap();
        c.oidc.jwks_file = Some(path);
    })
    .await
}

/// An IdP token for subject `sub` with `email`, valid for ten minutes.
pub fn idp_token(sub: &str, email: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({
        "sub": sub,
        "iss": IDP_ISSUER,
        "aud": "stardag-ui",
        "iat": now,
        "exp": now + 600,
        "email": email,
        "name": sub,
    });
    rsa_sign(IDP_KEY, IDP_KID, &claims).unwrap()
}
