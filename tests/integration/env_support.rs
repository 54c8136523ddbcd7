//! Accounts for identity tests, made only through the HTTP interface: the bootstrap
//! admin (from `<data_dir>/initial-credentials`), registered users (each with a personal
//! workspace and its `local` environment), login, exchange.

#![allow(dead_code)]

use std::collections::HashMap;

use serde_json::{json, Value};

pub use crate::harness::{exchange, login};
use crate::harness::{Client, TestServer};

/// A user acting in one workspace through an internal token.
pub struct Account {
    pub user_id: String,
    pub email: String,
    pub password: String,
    /// Session token (local login): modes F and X only (D31).
    pub session: String,
    pub ws: String,
    /// The workspace's first environment (`local` for personal workspaces).
    pub env: String,
    /// Sends the internal token for `ws` (modes I and S).
    pub client: Client,
    pub access_token: String,
}

impl Account {
    /// `/api/v1/ui/workspaces/{ws}` + `tail`.
    pub fn ws_path(&self, tail: &str) -> String {
        format!("/api/v1/ui/workspaces/{}{tail}", self.ws)
    }

    /// `/api/v1/ui/workspaces/{ws}/environments/{env}` + `tail`.
    pub fn env_path(&self, tail: &str) -> String {
        format!(
            "/api/v1/ui/workspaces/{}/environments/{}{tail}",
            self.ws, self.env
        )
    }
}

/// Starts a server that allows local registration (to get more than one user).
pub async fn start_with_registration() -> TestServer {
    TestServer::start_with(|c| c.auth.local_registration = true).await
}

/// The `KEY=value` lines of `initial-credentials`. Waits for one answered request
/// first: the bootstrap runs before the server accepts.
pub async fn initial_credentials(server: &TestServer) -> HashMap<String, String> {
    server.client().get("/health").await.expect(200);
    crate::harness::credentials(server.data_dir())
}

/// Registers a user (needs `auth.local_registration`); returns the session token.
pub async fn register(c: &Client, email: &str, password: &str) -> String {
    let body = c
        .post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": password}),
        )
        .await
        .expect(201);
    body["session_token"]
        .as_str()
        .expect("session_token")
        .to_owned()
}

/// `/ui/me` with the session.
pub async fn me(c: &Client, session: &str) -> Value {
    c.with_bearer(session)
        .get("/api/v1/ui/me")
        .await
        .expect(200)
}

/// Logs in and acts in the user's first workspace and its oldest environment.
pub async fn account(c: &Client, email: &str, password: &str, session: String) -> Account {
    let me = me(c, &session).await;
    let user_id = me["user"]["id"].as_str().expect("user id").to_owned();
    let ws = me["workspaces"][0]["id"]
        .as_str()
        .expect("a workspace")
        .to_owned();
    let access_token = exchange(c, &session, &ws).await;
    let client = c.with_bearer(&access_token);
    let envs = client
        .get(&format!("/api/v1/ui/workspaces/{ws}/environments"))
        .await
        .expect(200);
    let env = envs[0]["id"].as_str().expect("an environment").to_owned();
    Account {
        user_id,
        email: email.to_owned(),
        password: password.to_owned(),
        session,
        ws,
        env,
        client,
        access_token,
    }
}

/// The bootstrap admin in their personal workspace, plus the initial API key.
pub async fn admin(server: &TestServer) -> (Account, String) {
    let creds = initial_credentials(server).await;
    let c = server.client();
    let email = &creds["STARDAG_ADMIN_EMAIL"];
    let password = &creds["STARDAG_ADMIN_PASSWORD"];
    let session = login(&c, email, password).await;
    let acct = account(&c, email, password, session).await;
    assert_eq!(acct.ws, creds["STARDAG_WORKSPACE_ID"]);
    assert_eq!(acct.env, creds["STARDAG_ENVIRONMENT_ID"]);
    (acct, creds["STARDAG_API_KEY"].clone())
}

/// A newly registered user in their personal workspace.
pub async fn new_user(server: &TestServer, email: &str) -> Account {
    let c = server.client();
    let password = "correct horse battery";
    let session = register(&c, email, password).await;
    account(&c, email, password, session).await
}
