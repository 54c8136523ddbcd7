//! Config layering through the real binary's `check-config`: defaults < file < env <
//! flags, secrets masked, unknown keys refused by name.

use std::process::Output;

use crate::harness::binary;

async fn check_config(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(binary());
    cmd.arg("check-config").args(args);
    // Nothing from the developer's shell leaks in.
    for (k, _) in std::env::vars() {
        if k.starts_with("STARDAG_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn line<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{out}"))
}

#[tokio::test]
async fn layers_defaults_file_env_and_flags_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9000\"\ndata_dir = \"/from/file\"\n\
         [http]\nmax_body_bytes = 1234\n[auth]\nbootstrap_admin_password = \"hunter22hunter\"\n\
         [store]\ncache_bytes = 1000000\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let out = check_config(
        &["--config", path, "--listen", "127.0.0.1:9100"],
        &[
            ("STARDAG_SERVER_DATA_DIR", "/from/env"),
            ("STARDAG_SERVER_STORE__CACHE_BYTES", "2000000"),
            // The SDK's own variables share the stem and must be ignored.
            ("STARDAG_API_KEY", "sk_abcdef_x"),
            ("STARDAG_REGISTRY_URL", "http://x"),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let listen = line(&text, "listen");
    assert!(
        listen.contains("127.0.0.1:9100") && listen.contains("command-line"),
        "{listen}"
    );
    let data_dir = line(&text, "data_dir");
    assert!(
        data_dir.contains("/from/env") && data_dir.contains("environment"),
        "{data_dir}"
    );
    let cache = line(&text, "store.cache_bytes");
    assert!(
        cache.contains("2000000") && cache.contains("environment"),
        "{cache}"
    );
    let body = line(&text, "http.max_body_bytes");
    assert!(body.contains("1234") && body.contains("TOML"), "{body}");
    let timeout = line(&text, "http.header_read_timeout_seconds");
    assert!(
        timeout.contains("30") && timeout.contains("default"),
        "{timeout}"
    );
    let pw = line(&text, "auth.bootstrap_admin_password");
    assert!(
        !pw.contains("hunter22") && pw.contains("****"),
        "secret not masked: {pw}"
    );
}

#[tokio::test]
async fn unknown_keys_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[http]\nmax_body_bites = 5\n").unwrap();
    let out = check_config(&["--config", file.to_str().unwrap()], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_body_bites"), "{err}");
}

/// The environment is shared with other software: an unknown `STARDAG_SERVER_*`
/// variable is named in a warning and left out, for every command.
#[tokio::test]
async fn unknown_environment_variables_are_named_and_ignored() {
    let out = check_config(
        &[],
        &[
            ("STARDAG_SERVER_LISTN", "1.2.3.4:5"),
            ("STARDAG_SERVER_BIN", "/usr/bin/stardag-server"),
            ("STARDAG_SERVER_TLS__CERT", "/etc/ssl/x.pem"),
            ("STARDAG_SERVER_TLS__KEY", "/etc/ssl/x.key"),
        ],
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: ignoring STARDAG_SERVER_LISTN: not a configuration key"),
        "{err}"
    );
    assert!(err.contains("STARDAG_SERVER_BIN"), "{err}");
    assert!(
        !err.contains("TLS__CERT"),
        "known nested keys are not warned about: {err}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(line(&text, "listen").contains("127.0.0.1:8000"), "{text}");
    assert!(line(&text, "tls.cert").contains("/etc/ssl/x.pem"), "{text}");

    let data = tempfile::tempdir().unwrap();
    let server = crate::harness::BinaryServer::start_with_env(
        data.path(),
        &[],
        &[("STARDAG_SERVER_BIN", "/usr/bin/stardag-server")],
    )
    .await;
    server
        .assert_logged("ignoring STARDAG_SERVER_BIN: not a configuration key")
        .await;
    server.client().get("/health").await.expect(200);
}

/// The journal's checkpoint interval is a store key like the others; 0 would never
/// checkpoint and is refused.
#[tokio::test]
async fn the_checkpoint_interval_is_configurable_and_must_be_positive() {
    // The default is the one README and docs/performance.md give.
    let out = check_config(&[], &[]).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        line(&text, "store.checkpoint_ms").contains("= 2000"),
        "{text}"
    );

    let out = check_config(&[], &[("STARDAG_SERVER_STORE__CHECKPOINT_MS", "250")]).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        line(&text, "store.checkpoint_ms").contains("= 250"),
        "{text}"
    );

    let out = check_config(&[], &[("STARDAG_SERVER_STORE__CHECKPOINT_MS", "0")]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.checkpoint_ms must be > 0"), "{err}");
}

/// The metrics scrape token is a secret like the passwords, and an empty one is refused
/// rather than read as "no token".
#[tokio::test]
async fn the_metrics_token_is_masked_and_must_not_be_empty() {
    let out = check_config(&[], &[("STARDAG_SERVER_METRICS__TOKEN", "scrape-me-42")]).await;
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let token = line(&text, "metrics.token");
    assert!(
        !token.contains("scrape-me-42") && token.contains("****"),
        "secret not masked: {token}"
    );

    let out = check_config(&[], &[("STARDAG_SERVER_METRICS__TOKEN", " ")]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("metrics.token must not be empty"), "{err}");
}

#[tokio::test]
async fn a_missing_named_config_file_is_an_error() {
    let out = check_config(&["--config", "/nonexistent/stardag.toml"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/stardag.toml"));
}

#[tokio::test]
async fn version_prints_the_crate_version() {
    let out = tokio::process::Command::new(binary())
        .arg("version")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn the_packaged_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/config.toml");
    let out = check_config(&["--config", path], &[]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(line(&text, "auth.mode").contains("TOML"), "{text}");
}
