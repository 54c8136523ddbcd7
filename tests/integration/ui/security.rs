//! The UI's security rules (ui.md §3.4, §7): cookie flags, `next` kept on this origin,
//! CSRF token and Origin on every POST, strict headers, escaping, tenancy.

use bytes::Bytes;
use http::Method;

use super::{csrf_of, form, seed_dag, text, Browser};
use crate::harness::Client;
use crate::tasks::{hash, register, Fixture};

#[tokio::test]
async fn login_sets_a_strict_cookie_and_keeps_next_on_this_origin() {
    let f = Fixture::start().await;
    let c = f.anonymous();
    let page = c.get("/login").await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("default-src 'self'")
            && !csp.contains("unsafe")
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("same-origin"));
    assert!(text(&page).contains("name=\"password\""));

    let origin = format!("http://{}", f.server.addr);
    let email = f.cred("STARDAG_ADMIN_EMAIL");
    let post = |pw: &'static str, next: &'static str, origin: Option<String>| {
        let c = c.clone();
        let email = email.to_owned();
        async move {
            let mut h = vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            )];
            if let Some(o) = origin {
                h.push(("origin", o));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            c.send(
                Method::POST,
                "/login",
                &h,
                form(&[("email", &email), ("password", pw), ("next", next)]),
            )
            .await
        }
    };
    let wrong = post("wrong-password", "/", Some(origin.clone())).await;
    assert_eq!(wrong.status, 401);
    let html = text(&wrong);
    assert!(html.contains("Invalid email or password"));
    assert!(html.contains(&format!("value=\"{email}\"")), "email kept");
    // No Origin (and no Sec-Fetch-Site) → refused before the password is checked.
    assert_eq!(post("x", "/", None).await.status, 403);
    assert_eq!(
        post("x", "/", Some("http://evil.example".into()))
            .await
            .status,
        403
    );

    let pw = f.cred("STARDAG_ADMIN_PASSWORD").to_owned();
    let ok = c
        .send(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &origin),
            ],
            form(&[
                ("email", email),
                ("password", &pw),
                ("next", "https://evil.example/x"),
            ]),
        )
        .await;
    assert_eq!(ok.status, 303);
    assert_eq!(
        ok.header("location"),
        Some("/"),
        "a foreign next is ignored"
    );
    let cookie = ok.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "no Secure without TLS");
    let ok = c
        .send(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("sec-fetch-site", "same-origin"),
            ],
            form(&[
                ("email", email),
                ("password", &pw),
                ("next", "/ws/x/env/y/builds?page=2"),
            ]),
        )
        .await;
    assert_eq!(ok.header("location"), Some("/ws/x/env/y/builds?page=2"));
}

#[tokio::test]
async fn signed_out_pages_redirect_to_login_and_polls_answer_401() {
    let f = Fixture::start().await;
    let c = f.anonymous();
    let r = c.get("/ws/a/env/b/builds?page=2").await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fws%2Fa%2Fenv%2Fb%2Fbuilds%3Fpage%3D2")
    );
    assert_eq!(c.get("/").await.header("location"), Some("/login"));
    let poll = c
        .get("/ws/a/env/b/builds/0190a000-0000-7000-8000-000000000000/state")
        .await;
    assert_eq!(poll.status, 401);
    let expired = c
        .send(
            Method::GET,
            "/account",
            &[("cookie", "sd_session=not-a-token")],
            Bytes::new(),
        )
        .await;
    assert!(expired.header("location").unwrap().ends_with("&expired=1"));
    // The API's JSON 404 stays outside the UI prefixes; `/ws/…` has an HTML one.
    assert_eq!(
        c.get("/nope").await.header("content-type"),
        Some("application/json")
    );
    let b = Browser::admin(&f).await;
    let r = b.get("/ws/nope/whatever").await;
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
}

/// The number of API keys of the bootstrap environment (through the JSON API).
async fn key_count(f: &Fixture) -> usize {
    let ws = f.cred("STARDAG_WORKSPACE_ID");
    let env = f.env_id();
    let token = f.admin_token().await;
    f.anonymous()
        .with_bearer(&token)
        .get(&format!(
            "/api/v1/ui/workspaces/{ws}/environments/{env}/api-keys"
        ))
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn every_post_needs_the_csrf_token_and_this_origin() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let url = format!("{base}/connect/api-key");
    let csrf = csrf_of(&text(&b.get(&format!("{base}/connect")).await));
    let before = key_count(&f).await;
    let origin = b.origin.clone();
    let cases: Vec<(Vec<(&str, &str)>, Bytes)> = vec![
        (vec![("origin", origin.as_str())], form(&[("name", "x")])),
        (
            vec![("origin", origin.as_str())],
            form(&[("csrf", "forged"), ("name", "x")]),
        ),
        (
            vec![("origin", "http://evil.example")],
            form(&[("csrf", &csrf), ("name", "x")]),
        ),
        (
            vec![("sec-fetch-site", "cross-site")],
            form(&[("csrf", &csrf), ("name", "x")]),
        ),
    ];
    for (headers, body) in cases {
        let r = b.post_raw(&url, &headers, body).await;
        assert_eq!(r.status, 403, "{headers:?}");
    }
    // Logout is a POST too.
    assert_eq!(
        b.post_raw("/logout", &[("origin", &origin)], form(&[]))
            .await
            .status,
        403
    );
    assert_eq!(key_count(&f).await, before, "nothing was created");
    let ok = b.post_form(&url, &csrf, &[("name", "x")]).await;
    assert_eq!(ok.status, 200);
    assert_eq!(key_count(&f).await, before + 1);
    // Another session's token does not fit this session.
    let other = Browser::admin(&f).await;
    let r = other.post_form(&url, &csrf, &[("name", "y")]).await;
    assert_eq!(r.status, 403);
    let out = b.post_form("/logout", &csrf, &[]).await;
    assert_eq!(out.status, 303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn hostile_names_and_markdown_render_inert() {
    let f = Fixture::start().await;
    let b = Browser::admin(&f).await;
    let base = b.home_env().await;
    let sdk = f.sdk();
    let build = crate::tasks::new_build_id(&sdk).await;
    let evil = "<img src=x onerror=alert(1)>";
    let t = hash("evil");
    let mut body = crate::tasks::reg(&t, evil, &[]);
    body["task_data"]["note"] = serde_json::json!("\"><script>alert(2)</script>");
    register(&sdk, &build, &body).await;
    sdk.post(
        &format!("/api/v1/builds/{build}/tasks/{t}/assets"),
        &serde_json::json!([{"type": "markdown", "name": "<b>n</b>", "body": {"content": "<script>alert(3)</script>\n\n[x](javascript:alert(4))"}}]),
    )
    .await
    .expect(201);
    for path in [
        format!("{base}/builds"),
        format!("{base}/builds/{build}"),
        format!("{base}/builds/{build}?tab=tasks"),
        format!("{base}/builds/{build}/graph.svg"),
        format!("{base}/tasks/{t}"),
    ] {
        let html = text(&b.get(&path).await);
        assert!(!html.contains("<img src=x"), "{path}: {html}");
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("javascript:alert"), "{path}");
        assert!(!html.contains("<b>n</b>"), "{path}");
    }
    let task = text(&b.get(&format!("{base}/tasks/{t}")).await);
    assert!(task.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(
        task.contains("&lt;script&gt;alert(3)&lt;/script&gt;"),
        "{task}"
    );
    // No inline script anywhere: every <script> has a src.
    assert!(!task.contains("<script>") && task.matches("<script").count() == 1);
}

#[tokio::test]
async fn another_users_workspace_is_not_found_by_url_guessing() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    let base = admin.home_env().await;
    let (build, [a, ..]) = seed_dag(&f.sdk()).await;
    let anon = f.anonymous();
    anon.post(
        "/api/v1/auth/register",
        &serde_json::json!({"email": "eve@example.org", "password": "correct horse battery"}),
    )
    .await
    .expect(201);
    let eve = Browser::sign_in(&anon, "eve@example.org", "correct horse battery").await;
    let eve_base = eve.home_env().await;
    assert_ne!(eve_base, base);
    let ws = base.split('/').nth(2).unwrap();
    let guesses = [
        format!("{base}/builds"),
        format!("{base}/connect"),
        format!("{base}/builds/{build}"),
        format!("{base}/tasks/{a}"),
        format!("/ws/{ws}/settings/api-keys"),
        // Eve's own environment with the admin's ids.
        format!("{eve_base}/builds/{build}"),
        format!("{eve_base}/tasks/{a}"),
    ];
    let not_found = text(&eve.get(&format!("{base}/builds")).await);
    for path in &guesses {
        let r = eve.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        let html = text(&r);
        assert!(!html.contains(&build) && !html.contains(ws), "{path} leaks");
        assert_eq!(html.len(), not_found.len(), "{path}: the same 404 page");
    }
    for path in [
        format!("{base}/builds/{build}/state"),
        format!("{eve_base}/builds/{build}/state"),
        format!("{base}/builds?state=1"),
    ] {
        assert_eq!(eve.get(&path).await.status, 404, "{path}");
    }
    // A forged POST into the admin's workspace: refused like a missing one.
    let csrf = csrf_of(&text(&eve.get(&format!("{eve_base}/connect")).await));
    let r = eve
        .post_form(&format!("{base}/connect/api-key"), &csrf, &[("name", "x")])
        .await;
    assert_eq!(r.status, 404);
    let r = eve
        .post_form(
            &format!("{base}/builds/{build}/override"),
            &csrf,
            &[("status", "failed")],
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        f.sdk()
            .get(&format!("/api/v1/builds/{build}"))
            .await
            .expect(200)["status"],
        "running"
    );
}

#[tokio::test]
async fn static_assets_are_hashed_and_immutable_and_the_ui_can_be_off() {
    let f = Fixture::start().await;
    let html = text(&f.anonymous().get("/login").await);
    let at = html.find("href=\"/static/app.").unwrap() + 6;
    let css = &html[at..at + html[at..].find('"').unwrap()];
    let r = f.anonymous().get(css).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(f.anonymous().get("/static/app.css").await.status, 404);
    let off = Fixture::start_with(|c| c.ui.enabled = false).await;
    let r = off.anonymous().get("/login").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let _ = Client::new(off.server.addr);
}
