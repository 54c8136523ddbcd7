//! Workspace management in the UI (ui.md P9–P12): settings pages and every form, the
//! API's refusals shown inline with its status, typed confirmations, role gating
//! (a member sees no admin forms and is refused admin actions), tenancy (every settings
//! URL of another workspace is the same 404 page), create workspace, my invites, and
//! the change-password route (API and form) ending older sessions.

use http::Method;
use serde_json::json;

use super::{csrf_of, text, Browser};
use crate::harness::{login, Client, TestResponse};
use crate::tasks::Fixture;

const PW: &str = "correct horse battery";

async fn registered(f: &Fixture, email: &str) -> Browser {
    f.anonymous()
        .post(
            "/api/v1/auth/register",
            &json!({"email": email, "password": PW}),
        )
        .await
        .expect(201);
    Browser::sign_in(&f.anonymous(), email, PW).await
}

/// A page's CSRF token.
async fn csrf(b: &Browser, path: &str) -> String {
    let r = b.get(path).await;
    assert_eq!(r.status, 200, "{path}: {}", text(&r));
    csrf_of(&text(&r))
}

/// POSTs a form with the CSRF token of `/account` (any page of the session has it).
async fn post(b: &Browser, path: &str, pairs: &[(&str, &str)]) -> TestResponse {
    let token = csrf(b, "/account").await;
    b.post_form(path, &token, pairs).await
}

/// The table row (`<tr …>…</tr>`) that holds `marker`.
fn row<'a>(page: &'a str, marker: &str) -> &'a str {
    let at = page
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} in {page}"));
    let end = at + page[at..].find("</tr>").unwrap();
    &page[at..end]
}

fn location(r: &TestResponse) -> &str {
    r.header("location").unwrap_or("")
}

/// The admin's team workspace `team` (env `main`), created through P10.
async fn team(admin: &Browser) {
    let r = post(
        admin,
        "/workspaces/new",
        &[
            ("name", "Team"),
            ("slug", "team"),
            ("initial_environment_name", "Main"),
            ("initial_environment_slug", "main"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(location(&r), "/ws/team/env/main/connect");
}

/// Invites `email` into `team` as `role` and accepts as `user`.
async fn join(admin: &Browser, user: &Browser, email: &str, role: &str) {
    let r = post(
        admin,
        "/ws/team/settings/invites",
        &[("email", email), ("role", role)],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&user.get("/invites").await);
    let at = page.find("action=\"/invites/").expect("an invite") + 17;
    let id = &page[at..at + 36];
    let r = post(user, &format!("/invites/{id}/accept"), &[]).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(location(&r), "/ws/team/env/main/builds");
}

#[tokio::test]
async fn create_workspace_keeps_the_form_on_refusal_and_counts_the_limit() {
    let f = Fixture::start().await;
    let admin = Browser::admin(&f).await;
    let page = text(&admin.get("/workspaces/new").await);
    assert!(page.contains("You have created"), "{page}");
    team(&admin).await;
    let connect = admin.get("/ws/team/env/main/connect").await;
    assert_eq!(connect.status, 200);
    // A taken slug: the API's 409 inline, what was typed kept.
    let r = post(
        &admin,
        "/workspaces/new",
        &[
            ("name", "Other <b>"),
            ("slug", "team"),
            ("description", "kept"),
        ],
    )
    .await;
    assert_eq!(r.status, 409);
    let html = text(&r);
    assert!(html.contains("Workspace slug already exists"), "{html}");
    assert!(html.contains("value=\"Other &lt;b&gt;\"") && html.contains("value=\"kept\""));
    // A bad slug: the API's 422 text.
    let r = post(&admin, "/workspaces/new", &[("name", "X"), ("slug", "-x")]).await;
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("slug"), "{}", text(&r));
    // Up to the limit (3 created, the personal workspace counts), then the form is
    // replaced by the explanation and a forged POST gets the API's 403.
    for slug in ["two", "three"] {
        if text(&admin.get("/workspaces/new").await).contains("reached the limit") {
            break;
        }
        let r = post(&admin, "/workspaces/new", &[("name", slug), ("slug", slug)]).await;
        assert_eq!(r.status, 303, "{}", text(&r));
    }
    let page = text(&admin.get("/workspaces/new").await);
    assert!(
        page.contains("You have created 3 of 3 workspaces"),
        "{page}"
    );
    assert!(page.contains("reached the limit") && !page.contains("name=\"slug\""));
    let r = post(
        &admin,
        "/workspaces/new",
        &[("name", "4"), ("slug", "four")],
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("at most 3 workspaces"), "{}", text(&r));
}

#[tokio::test]
async fn an_owner_manages_members_and_invites_with_the_api_rules() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    let admin_email = f.cred("STARDAG_ADMIN_EMAIL").to_owned();
    team(&admin).await;
    let bob = registered(&f, "bob@example.org").await;
    assert!(text(&bob.get("/invites").await).contains("No pending invites"));
    assert_eq!(bob.get("/ws/team/settings").await.status, 404);

    // Invite bob; a duplicate is the API's 409 inline.
    let r = post(
        &admin,
        "/ws/team/settings/invites",
        &[("email", "bob@example.org"), ("role", "member")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/ws/team/settings/invites?done=invited");
    let page = text(&admin.get("/ws/team/settings/invites?done=invited").await);
    assert!(page.contains("data-invite=\"bob@example.org\"") && page.contains("Invite created"));
    let r = post(
        &admin,
        "/ws/team/settings/invites",
        &[("email", "bob@example.org"), ("role", "member")],
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(text(&r).contains("Invite already pending for this email"));
    // Invite carol and cancel it: the row goes.
    post(
        &admin,
        "/ws/team/settings/invites",
        &[("email", "carol@example.org"), ("role", "admin")],
    )
    .await;
    let page = text(&admin.get("/ws/team/settings/invites").await);
    let pos = page.find("data-invite=\"carol@example.org\"").unwrap();
    let at = pos + page[pos..].find("/invites/").unwrap() + 9;
    let id = page[at..at + 36].to_owned();
    let r = post(
        &admin,
        &format!("/ws/team/settings/invites/{id}/cancel"),
        &[],
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(!text(&admin.get("/ws/team/settings/invites").await).contains("carol@"));

    // Bob accepts on /invites and lands in the workspace.
    let page = text(&bob.get("/invites").await);
    assert!(page.contains("data-invite=\"Team\""), "{page}");
    let at = page.find("action=\"/invites/").unwrap() + 17;
    let id = page[at..at + 36].to_owned();
    let r = post(&bob, &format!("/invites/{id}/accept"), &[]).await;
    assert_eq!(location(&r), "/ws/team/env/main/builds");
    assert_eq!(bob.get("/ws/team/env/main/builds").await.status, 200);
    assert!(text(&bob.get("/invites").await).contains("No pending invites"));

    // Members: bob member → admin.
    let page = text(&admin.get("/ws/team/settings/members").await);
    let member_id = |page: &str, email: &str| {
        let pos = page.find(&format!("data-member=\"{email}\"")).unwrap();
        let at = pos + page[pos..].find("/members/").unwrap() + 9;
        page[at..at + 36].to_owned()
    };
    let bob_id = member_id(&page, "bob@example.org");
    let r = post(
        &admin,
        &format!("/ws/team/settings/members/{bob_id}/role"),
        &[("role", "admin")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&admin.get("/ws/team/settings/members").await);
    assert!(row(&page, "data-member=\"bob@example.org\"").contains("<td class=\"role\">admin</td>"));
    // The only owner cannot step down or leave: the API's 400 texts inline.
    let me = member_id(&page, &admin_email);
    let r = post(
        &admin,
        &format!("/ws/team/settings/members/{me}/role"),
        &[("role", "member")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Workspace must keep at least one owner"));
    let r = post(
        &admin,
        &format!("/ws/team/settings/members/{me}/remove"),
        &[],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Cannot remove the last owner"));
    // An admin (bob) cannot touch the owner: no form for that row, and the API's 403.
    let page = text(&bob.get("/ws/team/settings/members").await);
    assert!(page.contains(&format!("/members/{bob_id}/role")));
    assert!(!page.contains(&format!("/members/{me}/role")));
    let r = post(&bob, &format!("/ws/team/settings/members/{me}/remove"), &[]).await;
    assert_eq!(r.status, 403);
    assert!(text(&r).contains("Only owners can remove owners"));
    // Removing bob: his next page in the workspace is the 404 page.
    let r = post(
        &admin,
        &format!("/ws/team/settings/members/{bob_id}/remove"),
        &[],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(bob.get("/ws/team/settings").await.status, 404);
    assert_eq!(bob.get("/ws/team/env/main/builds").await.status, 404);
    // Decline: bob invited again declines; the row goes.
    post(
        &admin,
        "/ws/team/settings/invites",
        &[("email", "bob@example.org"), ("role", "member")],
    )
    .await;
    let page = text(&bob.get("/invites").await);
    let at = page.find("action=\"/invites/").unwrap() + 17;
    let id = page[at..at + 36].to_owned();
    let r = post(&bob, &format!("/invites/{id}/decline"), &[]).await;
    assert_eq!(location(&r), "/invites?done=declined");
    assert!(text(&bob.get("/invites").await).contains("No pending invites"));
    assert_eq!(bob.get("/ws/team/settings").await.status, 404);
}

#[tokio::test]
async fn environments_target_roots_and_workspace_edits_with_typed_confirmation() {
    let f = Fixture::start().await;
    let admin = Browser::admin(&f).await;
    team(&admin).await;
    let envs = "/ws/team/settings/environments";
    // The last environment: disabled delete, and a forged POST gets the API's 400.
    let page = text(&admin.get(envs).await);
    assert!(
        page.contains("The last environment cannot be deleted"),
        "{page}"
    );
    let r = post(
        &admin,
        &format!("{envs}/main/delete"),
        &[("confirm", "main")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(text(&r).contains("Cannot delete the last environment"));
    // Create staging; a duplicate slug and a bad lock limit are the API's refusals.
    let r = post(
        &admin,
        envs,
        &[
            ("name", "Staging"),
            ("slug", "staging"),
            ("max_concurrent_locks", ""),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(admin.get("/ws/team/env/staging/builds").await.status, 200);
    let r = post(&admin, envs, &[("name", "Again"), ("slug", "staging")]).await;
    assert_eq!(r.status, 409);
    assert!(text(&r).contains("Environment slug already exists in this workspace"));
    let r = post(
        &admin,
        envs,
        &[
            ("name", "L"),
            ("slug", "locks"),
            ("max_concurrent_locks", "many"),
        ],
    )
    .await;
    assert_eq!(r.status, 422, "{}", text(&r));
    // Edit: rename and a lock limit; the API stores both.
    let r = post(
        &admin,
        &format!("{envs}/staging/edit"),
        &[
            ("name", "Staging 2"),
            ("description", "pre-prod"),
            ("max_concurrent_locks", "3"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&admin.get(envs).await);
    let cells = row(&page, "data-env=\"staging\"");
    assert!(
        cells.contains("Staging 2") && cells.contains("pre-prod") && cells.contains("<td>3</td>"),
        "{cells}"
    );
    // Delete with a wrong slug: 422, nothing deleted; with the slug: gone.
    let r = post(
        &admin,
        &format!("{envs}/staging/delete"),
        &[("confirm", "Staging")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("Type staging exactly to confirm"));
    assert_eq!(admin.get("/ws/team/env/staging/builds").await.status, 200);
    let r = post(
        &admin,
        &format!("{envs}/staging/delete"),
        &[("confirm", "staging")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), format!("{envs}?done=env-deleted"));
    assert_eq!(admin.get("/ws/team/env/staging/builds").await.status, 404);
    // An unknown environment slug in a form path is the 404 page.
    let r = post(&admin, &format!("{envs}/nope/edit"), &[("name", "x")]).await;
    assert_eq!(r.status, 404);

    // Target roots of main: add, duplicate (409), edit, delete; Connect shows them.
    let roots = "/ws/team/settings/target-roots";
    let r = post(
        &admin,
        roots,
        &[
            ("env", "main"),
            ("name", "data"),
            ("uri_prefix", "s3://bucket/x/"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(location(&r), format!("{roots}?env=main&done=root-created"));
    let page = text(&admin.get(&format!("{roots}?env=main")).await);
    assert!(page.contains("s3://bucket/x/"));
    assert!(text(&admin.get("/ws/team/env/main/connect").await).contains("s3://bucket/x/"));
    let r = post(
        &admin,
        roots,
        &[
            ("env", "main"),
            ("name", "data"),
            ("uri_prefix", "s3://other/"),
        ],
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(
        text(&r).contains("Target root with name 'data' already exists"),
        "{}",
        text(&r)
    );
    let pos = page.find("data-root=\"data\"").unwrap();
    let at = pos + page[pos..].find("/target-roots/").unwrap() + 14;
    let root = page[at..at + 36].to_owned();
    let r = post(
        &admin,
        &format!("{roots}/{root}/edit"),
        &[
            ("env", "main"),
            ("name", "data"),
            ("uri_prefix", "gs://moved/"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    let page = text(&admin.get(&format!("{roots}?env=main")).await);
    assert!(page.contains("gs://moved/") && !page.contains("s3://bucket/x/"));
    let r = post(
        &admin,
        &format!("{roots}/{root}/delete"),
        &[("env", "main")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert!(text(&admin.get(&format!("{roots}?env=main")).await).contains("No target roots"));
    assert_eq!(admin.get(&format!("{roots}?env=nope")).await.status, 404);

    // General: rename (the switcher shows it), an empty description keeps the old one.
    let r = post(
        &admin,
        "/ws/team/settings",
        &[("name", "Team B"), ("description", "ours")],
    )
    .await;
    assert_eq!(location(&r), "/ws/team/settings?done=saved");
    let page = text(&admin.get("/ws/team/settings?done=saved").await);
    assert!(page.contains("<span class=\"ws-name\">Team B</span>") && page.contains("Saved."));
    post(
        &admin,
        "/ws/team/settings",
        &[("name", "Team B"), ("description", "")],
    )
    .await;
    assert!(text(&admin.get("/ws/team/settings").await).contains("ours"));
    let long = "x".repeat(300);
    let r = post(&admin, "/ws/team/settings", &[("name", &long)]).await;
    assert_eq!(r.status, 422);

    // Danger zone: a wrong slug keeps everything; the slug deletes it.
    let r = post(&admin, "/ws/team/settings/danger", &[("confirm", "Team B")]).await;
    assert_eq!(r.status, 422);
    assert_eq!(admin.get("/ws/team/settings").await.status, 200);
    let r = post(&admin, "/ws/team/settings/danger", &[("confirm", "team")]).await;
    assert_eq!(r.status, 303);
    assert_eq!(location(&r), "/");
    assert_eq!(admin.get("/ws/team/settings").await.status, 404);
    assert!(!text(&admin.get("/account").await).contains("Team B"));
}

#[tokio::test]
async fn a_member_sees_no_admin_forms_and_is_refused_admin_actions() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    team(&admin).await;
    let bob = registered(&f, "bob@example.org").await;
    join(&admin, &bob, "bob@example.org", "member").await;
    for (path, admin_only) in [
        ("/ws/team/settings", "action=\"/ws/team/settings\""),
        ("/ws/team/settings/members", "/role\""),
        (
            "/ws/team/settings/environments",
            "action=\"/ws/team/settings/environments",
        ),
        ("/ws/team/settings/target-roots", "Add a target root"),
        ("/ws/team/settings/danger", "name=\"confirm\""),
    ] {
        let r = bob.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        let html = text(&r);
        assert!(!html.contains(admin_only), "{path} shows {admin_only}");
        // The menu offers neither invites nor the danger zone to a member.
        assert!(
            !html.contains("href=\"/ws/team/settings/invites\""),
            "{path}"
        );
        assert!(
            !html.contains("href=\"/ws/team/settings/danger\""),
            "{path}"
        );
    }
    // The invites list is the API's 403, shown as such.
    let r = bob.get("/ws/team/settings/invites").await;
    assert_eq!(r.status, 403);
    // Forged admin POSTs: the API's 403 inline, nothing changed.
    for (path, pairs) in [
        ("/ws/team/settings", vec![("name", "Bob's")]),
        (
            "/ws/team/settings/environments",
            vec![("name", "B"), ("slug", "bee")],
        ),
        (
            "/ws/team/settings/environments/main/edit",
            vec![("name", "B")],
        ),
        (
            "/ws/team/settings/environments/main/delete",
            vec![("confirm", "main")],
        ),
        (
            "/ws/team/settings/target-roots",
            vec![("env", "main"), ("name", "r"), ("uri_prefix", "s3://r/")],
        ),
        (
            "/ws/team/settings/invites",
            vec![("email", "x@example.org"), ("role", "member")],
        ),
        ("/ws/team/settings/danger", vec![("confirm", "team")]),
    ] {
        let r = post(&bob, path, &pairs).await;
        assert_eq!(r.status, 403, "{path}: {}", text(&r));
        assert!(text(&r).contains("notice error"), "{path}");
    }
    let page = text(&admin.get("/ws/team/settings").await);
    assert!(page.contains("<dd class=\"ws-title\">Team</dd>"), "{page}");
    let envs = text(&admin.get("/ws/team/settings/environments").await);
    assert!(!envs.contains("data-env=\"bee\"") && envs.contains("data-env=\"main\""));
    let roots = text(&admin.get("/ws/team/settings/target-roots").await);
    assert!(roots.contains("No target roots"));
}

#[tokio::test]
async fn another_workspaces_settings_are_the_same_404_page() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    team(&admin).await;
    let eve = registered(&f, "eve@example.org").await;
    let not_found = text(&eve.get("/ws/team/env/main/builds").await);
    let page = text(&admin.get("/ws/team/settings/members").await);
    let at = page.find("/members/").unwrap() + 9;
    let member = page[at..at + 36].to_owned();
    for path in [
        "/ws/team/settings",
        "/ws/team/settings/members",
        "/ws/team/settings/invites",
        "/ws/team/settings/environments",
        "/ws/team/settings/target-roots",
        "/ws/team/settings/target-roots?env=main",
        "/ws/team/settings/danger",
        "/ws/team/settings/api-keys",
        "/ws/team/settings/nope",
    ] {
        let r = eve.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(text(&r).len(), not_found.len(), "{path}: the same 404 page");
    }
    let member_role = format!("/ws/team/settings/members/{member}/role");
    let member_remove = format!("/ws/team/settings/members/{member}/remove");
    for (path, pairs) in [
        ("/ws/team/settings", vec![("name", "Eve's")]),
        (member_role.as_str(), vec![("role", "member")]),
        (member_remove.as_str(), vec![]),
        (
            "/ws/team/settings/invites",
            vec![("email", "eve@example.org")],
        ),
        (
            "/ws/team/settings/environments",
            vec![("name", "E"), ("slug", "eve")],
        ),
        (
            "/ws/team/settings/environments/main/delete",
            vec![("confirm", "main")],
        ),
        (
            "/ws/team/settings/target-roots",
            vec![("env", "main"), ("name", "e"), ("uri_prefix", "s3://e/")],
        ),
        ("/ws/team/settings/danger", vec![("confirm", "team")]),
    ] {
        let r = post(&eve, path, &pairs).await;
        assert_eq!(r.status, 404, "{path}");
    }
    assert!(text(&admin.get("/ws/team/settings/invites").await).contains("No pending invites"));
    assert_eq!(admin.get("/ws/team/env/main/builds").await.status, 200);
    assert_eq!(admin.get("/ws/team/env/eve/builds").await.status, 404);
}

async fn change(c: &Client, session: &str, current: &str, new: &str) -> TestResponse {
    c.with_bearer(session)
        .json(
            Method::POST,
            "/api/v1/auth/change-password",
            &json!({"current_password": current, "new_password": new}),
        )
        .await
}

#[tokio::test]
async fn change_password_route_checks_the_current_one_and_ends_older_sessions() {
    let f = Fixture::start().await;
    let c = f.anonymous();
    let email = f.cred("STARDAG_ADMIN_EMAIL").to_owned();
    let old_pw = f.cred("STARDAG_ADMIN_PASSWORD").to_owned();
    let old = login(&c, &email, &old_pw).await;
    let other = login(&c, &email, &old_pw).await;
    // No credential: 401; a wrong current password: 401; a short new one: 422.
    let r = c
        .post(
            "/api/v1/auth/change-password",
            &json!({"current_password": old_pw, "new_password": "new password 1"}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = change(&c, &old, "wrong password", "new password 1").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["detail"], "Current password is incorrect");
    let r = change(&c, &old, &old_pw, "short").await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.json()["detail"][0]["loc"],
        json!(["body", "new_password"])
    );
    let r = change(&c, &old, &old_pw, &"x".repeat(1025)).await;
    assert_eq!(r.status, 422);
    let r = change(&c, &old, &old_pw, "new password 1").await;
    let body = r.expect(200);
    let fresh = body["session_token"].as_str().unwrap().to_owned();
    assert_eq!(body["token_type"], "Bearer");
    // Every earlier session is refused; the one handed out with the change works.
    for token in [&old, &other] {
        let r = c.with_bearer(token).get("/api/v1/ui/me").await;
        assert_eq!(r.status, 401, "an old session still works");
    }
    c.with_bearer(&fresh).get("/api/v1/ui/me").await.expect(200);
    // The old password no longer signs in; the new one does, right away.
    let r = c
        .post(
            "/api/v1/auth/login",
            &json!({"email": email, "password": old_pw}),
        )
        .await;
    assert_eq!(r.status, 401);
    let newer = login(&c, &email, "new password 1").await;
    c.with_bearer(&newer).get("/api/v1/ui/me").await.expect(200);
    // Wrong current passwords are throttled with the login attempts (10 per email and IP).
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            change(&c, &newer, "wrong password", "another one 2")
                .await
                .status,
        );
    }
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn the_account_form_changes_the_password_and_keeps_this_browser_signed_in() {
    let f = Fixture::start().await;
    let admin = Browser::admin(&f).await;
    let other = Browser::admin(&f).await;
    let old_pw = f.cred("STARDAG_ADMIN_PASSWORD").to_owned();
    let page = text(&admin.get("/account").await);
    assert!(page.contains("action=\"/account/password\""), "{page}");
    // The two new passwords differ: 422, nothing changed.
    let r = post(
        &admin,
        "/account/password",
        &[
            ("current_password", &old_pw),
            ("new_password", "new password 1"),
            ("new_password_again", "new password 2"),
        ],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(text(&r).contains("do not match"));
    // A wrong current password: the API's 401 text inline, still signed in.
    let r = post(
        &admin,
        "/account/password",
        &[
            ("current_password", "not it at all"),
            ("new_password", "new password 1"),
            ("new_password_again", "new password 1"),
        ],
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(text(&r).contains("Current password is incorrect"));
    assert_eq!(admin.get("/account").await.status, 200);
    // Success: a new cookie; the old one (and other browsers) go to the login form.
    let r = post(
        &admin,
        "/account/password",
        &[
            ("current_password", &old_pw),
            ("new_password", "new password 1"),
            ("new_password_again", "new password 1"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(location(&r), "/account?done=password");
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(cookie, admin.cookie);
    let renewed = Browser {
        c: admin.c.clone(),
        cookie,
        origin: admin.origin.clone(),
    };
    let page = renewed.get("/account?done=password").await;
    assert_eq!(page.status, 200);
    assert!(text(&page).contains("Password changed"));
    for stale in [&admin, &other] {
        let r = stale.get("/account").await;
        assert_eq!(r.status, 303);
        assert!(location(&r).starts_with("/login?next="), "{}", location(&r));
    }
    Browser::sign_in(
        &f.anonymous(),
        f.cred("STARDAG_ADMIN_EMAIL"),
        "new password 1",
    )
    .await;
}

/// The `<tr data-key="…">` row of a key id, if the page lists it.
fn key_row<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let at = page.find(&format!("data-key=\"{id}\""))?;
    Some(&page[at..at + page[at..].find("</tr>").unwrap()])
}

/// The id (`data-key`) of the row named `name`.
fn key_id(page: &str, name: &str) -> String {
    let name_at = page
        .find(&format!("<td>{name}</td>"))
        .unwrap_or_else(|| panic!("{name} in {page}"));
    let at = page[..name_at].rfind("data-key=\"").unwrap() + 10;
    page[at..at + 36].to_owned()
}

#[tokio::test]
async fn api_keys_hide_revoked_ones_unless_asked_and_mark_them() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    team(&admin).await;
    let keys = "/ws/team/settings/api-keys";
    for name in ["old-ci", "new-ci"] {
        let r = post(&admin, keys, &[("env", "main"), ("name", name)]).await;
        assert_eq!(r.status, 200, "{}", text(&r));
    }
    let page = text(&admin.get(keys).await);
    let (old, new) = (key_id(&page, "old-ci"), key_id(&page, "new-ci"));
    let r = post(&admin, &format!("{keys}/{old}/revoke"), &[("env", "main")]).await;
    assert_eq!(r.status, 303, "{}", text(&r));
    // After a revoke the list shows revoked keys, so the row can say so.
    assert_eq!(
        location(&r),
        "/ws/team/settings/api-keys?include_revoked=true&done=key-revoked"
    );
    // Default: the revoked key is not listed; the toggle links to the full list.
    let page = text(&admin.get(keys).await);
    assert!(key_row(&page, &old).is_none(), "{page}");
    let active = key_row(&page, &new).expect("the active key");
    assert!(active.contains(">active<") && active.contains(">Revoke<"));
    assert!(page.contains(&format!(
        "href=\"{keys}?include_revoked=true\">Show revoked keys"
    )));
    // With include_revoked=true both are listed; the revoked one says so and has no
    // Revoke button.
    let all = admin.get(&format!("{keys}?include_revoked=true")).await;
    assert_eq!(all.status, 200);
    let all = text(&all);
    let revoked = key_row(&all, &old).expect("the revoked key");
    assert!(
        revoked.contains("data-state=\"revoked\"") && revoked.contains(">revoked<"),
        "{revoked}"
    );
    assert!(!revoked.contains(">Revoke<"));
    assert!(key_row(&all, &new).unwrap().contains(">active<"));
    assert!(all.contains(&format!("href=\"{keys}\">Hide revoked keys")));
    // The page after the revoke confirms it.
    let done = text(
        &admin
            .get(&format!("{keys}?include_revoked=true&done=key-revoked"))
            .await,
    );
    assert!(done.contains("Key revoked."), "{done}");
    // A member lists keys too (the API allows it), revoked ones on request, and gets
    // no Revoke button.
    let bob = registered(&f, "bob@example.org").await;
    join(&admin, &bob, "bob@example.org", "member").await;
    let page = text(&bob.get(keys).await);
    assert!(key_row(&page, &old).is_none() && key_row(&page, &new).is_some());
    let all = text(&bob.get(&format!("{keys}?include_revoked=true")).await);
    assert!(key_row(&all, &old).unwrap().contains(">revoked<"));
    assert!(!all.contains(">Revoke<") && !all.contains("Create a key"));
}

#[tokio::test]
async fn an_empty_slug_is_made_from_the_name() {
    let f = Fixture::start().await;
    let admin = Browser::admin(&f).await;
    // The create forms leave the slug optional and tell the script where the name is.
    let form = text(&admin.get("/workspaces/new").await);
    assert!(form.contains("name=\"slug\" maxlength=\"64\""), "{form}");
    assert!(
        form.contains("data-slug-from=\"nw-name\"")
            && form.contains("data-slug-from=\"nw-env-name\"")
    );
    // P10: both slugs left empty are made from the names (the slug rules of
    // domain::slug).
    let r = post(
        &admin,
        "/workspaces/new",
        &[
            ("name", "Data Science!"),
            ("slug", ""),
            ("initial_environment_name", "EU Staging"),
            ("initial_environment_slug", " "),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(location(&r), "/ws/data-science/env/eu-staging/connect");
    // A typed environment slug is kept even without an environment name.
    let r = post(
        &admin,
        "/workspaces/new",
        &[
            ("name", "Ops"),
            ("initial_environment_name", ""),
            ("initial_environment_slug", "prod"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    assert_eq!(location(&r), "/ws/ops/env/prod/connect");
    // P9d: the same for a new environment; a typed slug is kept as typed.
    let envs = "/ws/data-science/settings/environments";
    assert!(text(&admin.get(envs).await).contains("data-slug-from=\"env-name\""));
    for (name, slug) in [("Prod  EU (2)", ""), ("Other", "mine")] {
        let r = post(&admin, envs, &[("name", name), ("slug", slug)]).await;
        assert_eq!(r.status, 303, "{}", text(&r));
    }
    let page = text(&admin.get(envs).await);
    assert!(page.contains("data-env=\"prod-eu-2\""), "{page}");
    assert!(page.contains("data-env=\"mine\"") && !page.contains("data-env=\"other\""));
    // A name that gives no slug: the API's slug 422, nothing created.
    let r = post(&admin, envs, &[("name", "!!"), ("slug", "")]).await;
    assert_eq!(r.status, 422, "{}", text(&r));
    assert!(text(&r).contains("Slug must be"), "{}", text(&r));
    assert_eq!(
        text(&admin.get(envs).await)
            .matches("<tr data-env=")
            .count(),
        3
    );
}

#[tokio::test]
async fn pending_invites_show_in_the_header_and_once_after_sign_in() {
    let f = Fixture::start_with(|c| c.auth.local_registration = true).await;
    let admin = Browser::admin(&f).await;
    team(&admin).await;
    let bob = registered(&f, "bob@example.org").await;
    // No invites: no badge, no notice.
    let page = text(&bob.get("/account").await);
    assert!(!page.contains("invites-badge") && !page.contains("invites-notice"));
    let r = post(
        &admin,
        "/ws/team/settings/invites",
        &[("email", "bob@example.org"), ("role", "member")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", text(&r));
    // The header counts the open invites on every page, linked to /invites.
    let page = text(&bob.get("/account").await);
    assert!(
        page.contains("<a class=\"invites-badge\" href=\"/invites\">Invites (1)</a>"),
        "{page}"
    );
    assert!(!page.contains("invites-notice"), "only after signing in");
    // Signing in sets the notice cookie next to the session.
    let r = f
        .anonymous()
        .send(
            Method::POST,
            "/login",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", &bob.origin),
            ],
            super::form(&[
                ("email", "bob@example.org"),
                ("password", PW),
                ("next", "/account"),
            ]),
        )
        .await;
    assert_eq!(r.status, 303);
    let cookies: Vec<String> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    assert!(
        cookies.contains(&"sd_invites_notice=1".to_owned()),
        "{cookies:?}"
    );
    let jar = cookies.join("; ");
    let session = cookies
        .iter()
        .find(|c| c.starts_with("sd_session="))
        .unwrap();
    // A poll (JSON) neither shows nor uses up the notice.
    let home = bob.home_env().await;
    let poll = bob
        .c
        .send(
            Method::GET,
            &format!("{home}/builds?state=1"),
            &[("cookie", &jar)],
            Default::default(),
        )
        .await;
    assert_eq!(poll.status, 200);
    assert!(poll.header("set-cookie").is_none());
    // The first page offers the invites once and clears the cookie.
    let first = bob
        .c
        .send(
            Method::GET,
            "/account",
            &[("cookie", &jar)],
            Default::default(),
        )
        .await;
    assert_eq!(first.status, 200);
    let html = text(&first);
    assert!(html.contains("invites-notice"), "{html}");
    assert!(html.contains("You are invited to 1 workspace."));
    let cleared = first.header("set-cookie").unwrap_or("");
    assert!(
        cleared.starts_with("sd_invites_notice=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // Without the cookie (the browser dropped it) the badge stays, the notice does not.
    let next = bob
        .c
        .send(
            Method::GET,
            "/account",
            &[("cookie", session)],
            Default::default(),
        )
        .await;
    let html = text(&next);
    assert!(html.contains("Invites (1)") && !html.contains("invites-notice"));
    // Accepted: no badge, and a later sign-in offers nothing.
    let page = text(&bob.get("/invites").await);
    let at = page.find("action=\"/invites/").expect("an invite") + 17;
    let r = post(
        &bob,
        &format!("/invites/{}/accept", &page[at..at + 36]),
        &[],
    )
    .await;
    assert_eq!(r.status, 303);
    let html = text(
        &bob.c
            .send(
                Method::GET,
                "/account",
                &[("cookie", &jar)],
                Default::default(),
            )
            .await,
    );
    assert!(!html.contains("invites-badge") && !html.contains("invites-notice"));
}
