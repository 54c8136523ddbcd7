//! `stardag-server admin …` through the real binary on a temporary data dir, with the
//! results checked over HTTP on a server started afterwards on the same data dir.

use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::{json, Value};
use stardag_server::config::Config;
use tokio::io::AsyncWriteExt;

use crate::harness::{binary, TestServer};
use crate::harness::{exchange, login};

const ADMIN_PASSWORD: &str = "bootstrap-admin-pw";

fn command(data_dir: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.arg("--data-dir").arg(data_dir).arg("admin").args(args);
    // Nothing from the developer's shell leaks in.
    for (k, _) in std::env::vars() {
        if k.starts_with("STARDAG_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

async fn admin(data_dir: &Path, args: &[&str]) -> Output {
    command(data_dir, args).output().await.expect("run admin")
}

async fn admin_with_stdin(data_dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = command(data_dir, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn admin");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    child.wait_with_output().await.expect("admin output")
}

/// Runs `admin --json …`, asserts success and returns the parsed output.
#[track_caller]
fn parse_ok(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

async fn admin_json(data_dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    parse_ok(&admin(data_dir, &all).await)
}

/// A failed `--json` run: exit 1 and `{"error": {"kind", "message"}}` on stderr.
#[track_caller]
fn json_error(out: &Output) -> (String, String) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err: Value = serde_json::from_slice(&out.stderr).unwrap_or_else(|e| {
        panic!(
            "stderr is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        err["error"]["kind"].as_str().unwrap_or_default().to_owned(),
        err["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn tweak(dir: &Path) -> impl FnOnce(&mut Config) {
    let dir = dir.to_path_buf();
    move |c: &mut Config| {
        c.data_dir = dir;
        c.auth.bootstrap_admin_password = Some(ADMIN_PASSWORD.into());
    }
}

/// Starts the server on `dir` (first start bootstraps `admin@localhost`) and waits until
/// it answers, so the database is open (and held) when this returns.
async fn start_on(dir: &Path) -> TestServer {
    let server = TestServer::start_with(tweak(dir)).await;
    server.client().get("/health").await.expect(200);
    server
}

/// A data dir whose database exists: the server started once and stopped.
async fn initialised_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    start_on(dir.path()).await.stop().await;
    dir
}

fn kid_of(token: &str) -> String {
    stardag_server::auth::decode_header(token)
        .expect("token header")
        .kid
        .expect("kid")
}

#[tokio::test]
async fn help_on_every_level_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let levels: &[&[&str]] = &[
        &[],
        &["user"],
        &["user", "add"],
        &["user", "list"],
        &["user", "set-password"],
        &["workspace"],
        &["workspace", "list"],
        &["workspace", "create"],
        &["environment"],
        &["environment", "list"],
        &["environment", "create"],
        &["environment", "set-lock-limit"],
        &["api-key"],
        &["api-key", "create"],
        &["api-key", "list"],
        &["api-key", "revoke"],
        &["rotate-signing-key"],
    ];
    for level in levels {
        let mut args = level.to_vec();
        args.push("--help");
        let out = admin(dir.path(), &args).await;
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            text.contains("Usage: stardag-server admin"),
            "{args:?}: {text}"
        );
    }
    for bad in [
        &[][..],
        &["user"][..],
        &["user", "add"][..],
        &[
            "user",
            "add",
            "--email",
            "a@b.c",
            "--password",
            "x",
            "--password-stdin",
        ][..],
        &["environment", "set-lock-limit", "--environment", "x"][..],
        &[
            "environment",
            "set-lock-limit",
            "--environment",
            "x",
            "--limit",
            "2",
            "--unlimited",
        ][..],
        &["api-key", "revoke", "--id", "not-a-uuid"][..],
        &["frobnicate"][..],
    ] {
        let out = admin(dir.path(), bad).await;
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // The top level lists the admin command too.
    let out = tokio::process::Command::new(binary())
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin"));
}

#[tokio::test]
async fn a_missing_database_is_reported_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("typo");
    let out = admin(&data, &["user", "list"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no database at"));
    let (kind, _) = json_error(&admin(&data, &["--json", "user", "list"]).await);
    assert_eq!(kind, "no_database");
    assert!(!data.join("stardag.redb").exists());
}

#[tokio::test]
async fn refuses_clearly_while_the_server_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_on(dir.path()).await;
    let out = admin(dir.path(), &["user", "add", "--email", "late@example.com"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("held by another process") && err.contains("stop the server"),
        "{err}"
    );
    let (kind, message) = json_error(&admin(dir.path(), &["--json", "user", "list"]).await);
    assert_eq!(kind, "locked");
    assert!(message.contains("stardag.redb"), "{message}");
    // Nothing was written: once the server is gone the user does not exist.
    server.stop().await;
    let users = admin_json(dir.path(), &["user", "list"]).await;
    let emails: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["admin@localhost"]);
}

#[tokio::test]
async fn an_added_user_gets_a_personal_workspace_and_can_log_in() {
    let dir = initialised_dir().await;
    let added = admin_json(
        dir.path(),
        &[
            "user",
            "add",
            "--email",
            "Carol.Smith@Example.com",
            "--display-name",
            "Carol",
        ],
    )
    .await;
    let password = added["password"].as_str().expect("generated password");
    assert!(password.len() >= 16);
    assert_eq!(added["user"]["email"], "Carol.Smith@Example.com");
    assert_eq!(added["user"]["has_password"], true);
    assert!(added["user"]["external_id"]
        .as_str()
        .unwrap()
        .starts_with("local:"));
    let ws = &added["workspace"];
    assert_eq!(ws["slug"], "carol-smith");
    assert_eq!(ws["name"], "Carol's Workspace");
    assert_eq!(ws["is_personal"], true);
    assert_eq!(ws["environments"][0]["slug"], "local");
    assert_eq!(ws["members"][0]["role"], "owner");

    // A second user with the same email (any case) is refused.
    let (kind, message) = json_error(
        &admin(
            dir.path(),
            &[
                "--json",
                "user",
                "add",
                "--email",
                "carol.smith@example.com",
            ],
        )
        .await,
    );
    assert_eq!(kind, "conflict");
    assert!(message.contains("already exists"), "{message}");
    // Bad input is a failure (1), not a usage error.
    let (kind, _) = json_error(
        &admin(
            dir.path(),
            &[
                "--json",
                "user",
                "add",
                "--email",
                "x@y.z",
                "--password",
                "short",
            ],
        )
        .await,
    );
    assert_eq!(kind, "invalid");

    let mut server = start_on(dir.path()).await;
    let c = server.client();
    let session = login(&c, "carol.smith@example.com", password).await;
    let me = c
        .with_bearer(&session)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(me["user"]["id"], added["user"]["id"]);
    assert_eq!(me["workspaces"][0]["id"], ws["id"]);
    assert_eq!(me["workspaces"][0]["is_personal"], true);
    assert_eq!(me["workspaces"][0]["role"], "owner");
    server.stop().await;

    // set-password from stdin replaces the password.
    let out = admin_with_stdin(
        dir.path(),
        &[
            "--json",
            "user",
            "set-password",
            "--email",
            "carol.smith@example.com",
            "--password-stdin",
        ],
        "a-new-password-42\n",
    )
    .await;
    let set = parse_ok(&out);
    assert_eq!(
        set["password"],
        Value::Null,
        "a given password is not echoed"
    );
    let mut server = start_on(dir.path()).await;
    let c = server.client();
    login(&c, "carol.smith@example.com", "a-new-password-42").await;
    c.post(
        "/api/v1/auth/login",
        &json!({"email": "carol.smith@example.com", "password": password}),
    )
    .await
    .expect(401);
    server.stop().await;

    let users = admin_json(dir.path(), &["user", "list"]).await;
    let carol = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "Carol.Smith@Example.com")
        .expect("listed");
    assert_eq!(carol["workspaces"][0]["workspace_slug"], "carol-smith");
    assert_eq!(carol["workspaces"][0]["role"], "owner");
    let (kind, _) = json_error(
        &admin(
            dir.path(),
            &[
                "--json",
                "user",
                "set-password",
                "--email",
                "nobody@example.com",
            ],
        )
        .await,
    );
    assert_eq!(kind, "not_found");
}

#[tokio::test]
async fn workspaces_and_environments_are_created_with_the_api_rules() {
    let dir = initialised_dir().await;
    admin_json(
        dir.path(),
        &[
            "user",
            "add",
            "--email",
            "dana@example.com",
            "--password",
            "dana-password",
        ],
    )
    .await;
    let ws = admin_json(
        dir.path(),
        &[
            "workspace",
            "create",
            "--name",
            "Data Team",
            "--slug",
            "data_team",
            "--owner",
            "dana@example.com",
            "--description",
            "shared",
        ],
    )
    .await;
    assert_eq!(ws["slug"], "data_team");
    assert_eq!(ws["is_personal"], false);
    assert_eq!(ws["members"][0]["email"], "dana@example.com");
    assert_eq!(ws["members"][0]["role"], "owner");
    assert_eq!(ws["environments"][0]["slug"], "default");
    assert_eq!(ws["environments"][0]["name"], "Default");
    assert_eq!(ws["environments"][0]["description"], "Default environment");
    let ws_id = ws["id"].as_str().unwrap().to_owned();

    let env = admin_json(
        dir.path(),
        &[
            "environment",
            "create",
            "--workspace",
            "data_team",
            "--name",
            "Production",
            "--slug",
            "prod",
        ],
    )
    .await;
    assert_eq!(env["workspace_id"], ws_id.as_str());
    assert_eq!(env["max_concurrent_locks"], Value::Null);
    let env_id = env["id"].as_str().unwrap().to_owned();

    // Lock limit (D19), by id and by slug within the workspace.
    let set = admin_json(
        dir.path(),
        &[
            "environment",
            "set-lock-limit",
            "--environment",
            &env_id,
            "--limit",
            "4",
        ],
    )
    .await;
    assert_eq!(set["max_concurrent_locks"], 4);
    let listed = admin_json(dir.path(), &["environment", "list", "--workspace", &ws_id]).await;
    let prod = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["slug"] == "prod")
        .unwrap();
    assert_eq!(prod["max_concurrent_locks"], 4);
    let cleared = admin_json(
        dir.path(),
        &[
            "environment",
            "set-lock-limit",
            "--workspace",
            "data_team",
            "--environment",
            "prod",
            "--unlimited",
        ],
    )
    .await;
    assert_eq!(cleared["max_concurrent_locks"], Value::Null);

    // Failures: each exits 1 with a typed kind.
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "workspace",
                "create",
                "--name",
                "X",
                "--slug",
                "data_team",
                "--owner",
                "dana@example.com",
            ],
            "conflict",
        ),
        (
            &[
                "workspace",
                "create",
                "--name",
                "X",
                "--slug",
                "Bad Slug",
                "--owner",
                "dana@example.com",
            ],
            "invalid",
        ),
        (
            &[
                "workspace",
                "create",
                "--name",
                "X",
                "--slug",
                "xyz",
                "--owner",
                "ghost@example.com",
            ],
            "not_found",
        ),
        (
            &[
                "environment",
                "create",
                "--workspace",
                "data_team",
                "--name",
                "P",
                "--slug",
                "prod",
            ],
            "conflict",
        ),
        (
            &[
                "environment",
                "create",
                "--workspace",
                "nope",
                "--name",
                "P",
                "--slug",
                "p2",
            ],
            "not_found",
        ),
        (
            &[
                "environment",
                "set-lock-limit",
                "--environment",
                "prod",
                "--limit",
                "2",
            ],
            "invalid",
        ),
        (
            &[
                "environment",
                "set-lock-limit",
                "--environment",
                &env_id,
                "--limit",
                "0",
            ],
            "invalid",
        ),
        (
            &[
                "environment",
                "set-lock-limit",
                "--workspace",
                "dana",
                "--environment",
                &env_id,
                "--limit",
                "2",
            ],
            "not_found",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let (kind, message) = json_error(&admin(dir.path(), &all).await);
        assert_eq!(&kind, want, "{args:?}: {message}");
    }

    let workspaces = admin_json(dir.path(), &["workspace", "list"]).await;
    let slugs: Vec<&str> = workspaces
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["admin", "dana", "data_team"]);

    // The owner sees the workspace and can get a token for it.
    let mut server = start_on(dir.path()).await;
    let c = server.client();
    let session = login(&c, "dana@example.com", "dana-password").await;
    let me = c
        .with_bearer(&session)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    let entry = me["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == ws_id.as_str())
        .expect("workspace listed in /ui/me");
    assert_eq!(entry["role"], "owner");
    assert_eq!(entry["is_personal"], false);
    exchange(&c, &session, &ws_id).await;
    server.stop().await;
}

#[tokio::test]
async fn api_keys_are_created_listed_and_revoked() {
    let dir = initialised_dir().await;
    let created = admin_json(
        dir.path(),
        &[
            "api-key",
            "create",
            "--workspace",
            "admin",
            "--environment",
            "local",
            "--name",
            "ci",
        ],
    )
    .await;
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    let env_id = created["environment_id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("sk_") && key.len() == 42, "{key}");
    assert_eq!(created["key_prefix"], &key[3..11]);
    assert_eq!(created["revoked_at"], Value::Null);
    assert_eq!(created["created_by_id"], Value::Null);

    let listed = admin_json(dir.path(), &["api-key", "list", "--environment", &env_id]).await;
    let listed = listed.as_array().unwrap();
    // The first-start key and ours, newest first; the secret is never listed.
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], key_id.as_str());
    assert!(listed.iter().all(|k| k.get("key").is_none()));

    // The key authenticates on an SDK route (mode S); a made-up one does not.
    let mut server = start_on(dir.path()).await;
    let c = server.client();
    let resp = c.with_api_key(&key).get("/api/v1/target-roots").await;
    assert_ne!(resp.status.as_u16(), 401, "{:?}", resp.body);
    let bogus = "sk_000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let resp = c.with_api_key(bogus).get("/api/v1/target-roots").await;
    assert_eq!(resp.expect(401)["detail"], "Invalid API key");
    server.stop().await;

    let revoked = admin_json(dir.path(), &["api-key", "revoke", "--id", &key_id]).await;
    assert_eq!(revoked["already_revoked"], false);
    let revoked_at = revoked["revoked_at"]
        .as_str()
        .expect("revoked_at")
        .to_owned();
    let again = admin_json(dir.path(), &["api-key", "revoke", "--id", &key_id]).await;
    assert_eq!(again["already_revoked"], true);
    assert_eq!(again["revoked_at"], revoked_at.as_str());
    let listed = admin_json(
        dir.path(),
        &[
            "api-key",
            "list",
            "--workspace",
            "admin",
            "--environment",
            "local",
        ],
    )
    .await;
    assert_eq!(listed[0]["revoked_at"], revoked_at.as_str());
    assert_eq!(listed[1]["revoked_at"], Value::Null);
    let (kind, _) = json_error(
        &admin(
            dir.path(),
            &[
                "--json",
                "api-key",
                "revoke",
                "--id",
                "00000000-0000-0000-0000-000000000001",
            ],
        )
        .await,
    );
    assert_eq!(kind, "not_found");

    let mut server = start_on(dir.path()).await;
    let resp = server
        .client()
        .with_api_key(&key)
        .get("/api/v1/target-roots")
        .await;
    assert_eq!(resp.expect(401)["detail"], "Invalid API key");
    server.stop().await;
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_old_tokens_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start_on(dir.path()).await;
    let c = server.client();
    let session = login(&c, "admin@localhost", ADMIN_PASSWORD).await;
    let me = c
        .with_bearer(&session)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    let ws = me["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let old_token = exchange(&c, &session, &ws).await;
    let old_kid = kid_of(&old_token);
    let jwks = c.get("/.well-known/jwks.json").await.expect(200);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    server.stop().await;

    let rotated = admin_json(dir.path(), &["rotate-signing-key"]).await;
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let keys = rotated["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let old_row = keys.iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
    assert!(old_row["retired_at"].is_string());
    let new_row = keys.iter().find(|k| k["kid"] == new_kid.as_str()).unwrap();
    assert_eq!(new_row["retired_at"], Value::Null);

    let mut server = start_on(dir.path()).await;
    let c = server.client();
    // Tokens signed by the retired key still verify: internal and session alike.
    let me = c
        .with_bearer(&old_token)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(me["user"]["email"], "admin@localhost");
    c.with_bearer(&session)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    // New tokens carry the new kid; JWKS publishes both.
    let new_token = exchange(&c, &login(&c, "admin@localhost", ADMIN_PASSWORD).await, &ws).await;
    assert_eq!(kid_of(&new_token), new_kid);
    c.with_bearer(&new_token)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    let jwks = c.get("/.well-known/jwks.json").await.expect(200);
    let mut kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    kids.sort_unstable();
    let mut want = vec![old_kid.as_str(), new_kid.as_str()];
    want.sort_unstable();
    assert_eq!(kids, want);
    server.stop().await;
}

#[tokio::test]
async fn text_output_is_readable_and_shows_secrets_once() {
    let dir = initialised_dir().await;
    let out = admin(dir.path(), &["user", "add", "--email", "eve@example.com"]).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("created user eve@example.com"), "{text}");
    assert!(text.contains("password (shown once): "), "{text}");
    let out = admin(
        dir.path(),
        &[
            "api-key",
            "create",
            "--workspace",
            "eve",
            "--environment",
            "local",
            "--name",
            "k",
        ],
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("key (shown once): sk_"), "{text}");
    let out = admin(dir.path(), &["user", "list"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("eve@example.com") && !text.contains("sk_"),
        "{text}"
    );
}

#[tokio::test]
async fn in_oidc_mode_added_users_are_linked_on_first_sign_in() {
    use stardag_server::auth::jwt::test_support::rsa_jwks_json;
    use stardag_server::auth::jwt::test_support::rsa_sign;
    const IDP_KEY: &[u8] = include_bytes!("../fixtures/oidc-test-rsa.pk8");
    let issuer = "http://idp.test/realms/stardag";
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, rsa_jwks_json(IDP_KEY, "k").unwrap()).unwrap();
    let data = dir.path().join("data");
    let oidc = {
        let (data, jwks) = (data.clone(), jwks.clone());
        move |c: &mut Config| {
            c.data_dir = data;
            c.auth.mode = stardag_server::config::AuthMode::Oidc;
            c.oidc.issuer_url = issuer.into();
            c.oidc.jwks_file = Some(jwks);
        }
    };
    TestServer::start_with(oidc.clone()).await.stop().await;

    let run = |args: &'static [&'static str]| {
        let mut cmd = command(&data, args);
        cmd.env("STARDAG_SERVER_AUTH__MODE", "oidc");
        async move { cmd.output().await.unwrap() }
    };
    let (kind, message) = json_error(
        &run(&[
            "--json",
            "user",
            "add",
            "--email",
            "olga@corp.example",
            "--password",
            "pw-pw-pw-pw",
        ])
        .await,
    );
    assert_eq!(kind, "invalid");
    assert!(message.contains("oidc"), "{message}");
    let added = parse_ok(&run(&["--json", "user", "add", "--email", "olga@corp.example"]).await);
    assert_eq!(added["password"], Value::Null);
    assert_eq!(added["user"]["has_password"], false);

    let mut server = TestServer::start_with(oidc).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = rsa_sign(
        IDP_KEY,
        "k",
        &json!({"sub": "idp-olga", "iss": issuer, "exp": now + 600, "email": "olga@corp.example"}),
    )
    .unwrap();
    let me = server
        .client()
        .with_bearer(&token)
        .get("/api/v1/ui/me")
        .await
        .expect(200);
    assert_eq!(me["user"]["id"], added["user"]["id"]);
    assert_eq!(me["user"]["external_id"], "idp-olga");
    assert_eq!(me["workspaces"][0]["id"], added["workspace"]["id"]);
    assert_eq!(me["workspaces"].as_array().unwrap().len(), 1);
    server.stop().await;
}
