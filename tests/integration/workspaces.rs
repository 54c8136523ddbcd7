//! Workspaces, members and invites through HTTP (v1-identity §4.4–4.6 with D6, D9, D11,
//! D16, D31).

use http::Method;
use serde_json::{json, Value};

use crate::harness::{Client, TestResponse, TestServer};
use crate::identity_support::{
    admin_account, bootstrap_credentials, idp_token, oidc_server, register,
    server_with_registration, Account,
};

const WS: &str = "/api/v1/ui/workspaces";
const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn ws_path(ws: &str) -> String {
    format!("{WS}/{ws}")
}

fn detail(resp: &TestResponse, status: u16) -> Value {
    resp.expect(status)["detail"].clone()
}

#[track_caller]
fn assert_detail(resp: &TestResponse, status: u16, text: &str) {
    assert_eq!(detail(resp, status), json!(text));
}

async fn create_ws(c: &Client, slug: &str) -> Value {
    c.post(WS, &json!({"name": format!("WS {slug}"), "slug": slug}))
        .await
        .expect(201)
}

async fn invite(c: &Client, ws: &str, email: &str, role: &str) -> TestResponse {
    c.post(
        &format!("{WS}/{ws}/invites"),
        &json!({"email": email, "role": role}),
    )
    .await
}

async fn accept(c: &Client, invite_id: &str) -> TestResponse {
    c.post(&format!("{WS}/invites/{invite_id}/accept"), &json!(null))
        .await
}

async fn decline(c: &Client, invite_id: &str) -> TestResponse {
    c.post(&format!("{WS}/invites/{invite_id}/decline"), &json!(null))
        .await
}

async fn members(c: &Client, ws: &str) -> Vec<Value> {
    let body = c.get(&format!("{WS}/{ws}/members")).await.expect(200);
    body.as_array().unwrap().clone()
}

/// The membership id of `user` in `ws`, as the members list shows it.
async fn member_id(c: &Client, ws: &str, user: &Account) -> String {
    members(c, ws)
        .await
        .iter()
        .find(|m| m["user_id"] == json!(user.user_id))
        .map(|m| m["id"].as_str().unwrap().to_string())
        .expect("user is a member")
}

/// `owner` invites `user` with `role`; `user` accepts. Returns the membership id.
async fn join(owner: &Account, ws: &str, user: &Account, role: &str) -> String {
    let inv = invite(&owner.api, ws, &user.email, role).await.expect(201);
    accept(&user.ident, inv["id"].as_str().unwrap())
        .await
        .expect(200);
    member_id(&owner.api, ws, user).await
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn create_workspace_answers_201_and_counts_against_the_limit() {
    let server = TestServer::start().await;
    let admin = admin_account(&server).await;

    let created = admin
        .api
        .post(
            WS,
            &json!({"name": "Team", "slug": "team", "description": "Shared work"}),
        )
        .await
        .expect(201);
    let id = id_of(&created);
    assert_eq!(
        created,
        json!({"id": id, "name": "Team", "slug": "team", "description": "Shared work", "is_personal": false})
    );
    let got = admin.api.get(&ws_path(&id)).await.expect(200);
    assert_eq!(
        got,
        json!({"id": id, "name": "Team", "slug": "team", "description": "Shared work",
               "is_personal": false, "member_count": 1, "environment_count": 1})
    );
    // The D6 mirror answers the same.
    let mirrored = admin
        .api
        .get(&format!("/api/v1/workspaces/{id}"))
        .await
        .expect(200);
    assert_eq!(mirrored, got);
    let mine = admin.workspaces().await;
    let entry = mine.iter().find(|w| w["id"] == json!(id)).unwrap();
    assert_eq!(entry["role"], "owner");
    assert_eq!(entry["is_personal"], false);

    assert_detail(
        &admin
            .api
            .post(WS, &json!({"name": "Other", "slug": "team"}))
            .await,
        409,
        "Workspace slug already exists",
    );
    // Mode F: the session token works as well as an internal token.
    let third = admin
        .ident
        .post(WS, &json!({"name": "Under", "slug": "my_workspace_123"}))
        .await
        .expect(201);
    assert_eq!(third["slug"], "my_workspace_123");
    assert_eq!(third["description"], Value::Null);
    // Personal + 2 created = 3: the limit is checked before the slug.
    for slug in ["fourth", "team"] {
        assert_detail(
            &admin
                .api
                .post(WS, &json!({"name": "x", "slug": slug}))
                .await,
            403,
            "You can create at most 3 workspaces",
        );
    }
}

#[tokio::test]
async fn create_workspace_validates_body_after_authentication() {
    let server = TestServer::start().await;
    let admin = admin_account(&server).await;
    let pattern = "Value error, Slug must be lowercase alphanumeric with hyphens or underscores, cannot start or end with hyphen or underscore";
    let length = "Value error, Slug must be between 2 and 64 characters";
    let long = "a".repeat(65);
    for (slug, msg) in [
        ("Bad", pattern),
        ("-ab", pattern),
        ("ab_", pattern),
        ("", pattern),
        ("a b", pattern),
        ("a", length),
        (long.as_str(), length),
    ] {
        let resp = admin
            .api
            .post(WS, &json!({"name": "n", "slug": slug}))
            .await;
        assert_eq!(
            detail(&resp, 422),
            json!([{"type": "value_error", "loc": ["body", "slug"], "msg": msg, "input": slug}]),
            "{slug:?}"
        );
    }
    // The initial environment slug obeys the same rule (upstream did not check it).
    let resp = admin
        .api
        .post(
            WS,
            &json!({"name": "n", "slug": "ok-slug", "initial_environment_slug": "Prod"}),
        )
        .await;
    assert_eq!(
        detail(&resp, 422)[0]["loc"],
        json!(["body", "initial_environment_slug"])
    );
    let resp = admin.api.post(WS, &json!({"slug": "no-name"})).await;
    let d = detail(&resp, 422);
    assert_eq!(d[0]["type"], "missing");
    assert_eq!(d[0]["loc"], json!(["body", "name"]));
    assert_eq!(
        detail(
            &admin
                .api
                .send(Method::POST, WS, &[], Default::default())
                .await,
            422
        )[0]["type"],
        "missing"
    );
    // Authentication comes first: no credential → 401 even for an invalid body.
    let anon = server.client().post(WS, &json!({"slug": "Bad"})).await;
    assert_detail(&anon, 401, "Not authenticated");
    // Empty initial environment fields fall back to the defaults.
    let created = admin
        .api
        .post(
            WS,
            &json!({"name": "n", "slug": "defaults", "initial_environment_name": "",
                    "initial_environment_slug": "", "initial_target_root_name": "r",
                    "initial_target_root_uri": ""}),
        )
        .await
        .expect(201);
    let got = admin.api.get(&ws_path(&id_of(&created))).await.expect(200);
    assert_eq!(got["environment_count"], 1);
}

#[tokio::test]
async fn workspace_detail_reports_the_true_is_personal() {
    let server = TestServer::start().await;
    let creds = bootstrap_credentials(&server).await;
    let admin = admin_account(&server).await;
    assert_eq!(admin.home_ws, creds.workspace_id);
    let got = admin
        .api
        .get(&ws_path(&creds.workspace_id))
        .await
        .expect(200);
    let listed = &admin.workspaces().await[0];
    assert_eq!(got["is_personal"], true, "D16");
    assert_eq!(got["name"], listed["name"]);
    assert_eq!(got["slug"], listed["slug"]);
    assert_eq!(got["member_count"], 1);
    assert_eq!(got["environment_count"], 1);
}

#[tokio::test]
async fn patch_workspace_changes_only_given_fields() {
    let server = TestServer::start().await;
    let admin = admin_account(&server).await;
    let ws = id_of(&create_ws(&admin.api, "patchme").await);
    let path = ws_path(&ws);

    let body = admin
        .api
        .patch(&path, &json!({"name": "Renamed"}))
        .await
        .expect(200);
    assert_eq!(
        body,
        json!({"id": ws, "name": "Renamed", "slug": "patchme", "description": null, "is_personal": false})
    );
    let body = admin
        .api
        .patch(&path, &json!({"description": "About", "slug": "ignored"}))
        .await
        .expect(200);
    assert_eq!(
        (&body["name"], &body["description"], &body["slug"]),
        (&json!("Renamed"), &json!("About"), &json!("patchme"))
    );
    // Null means unchanged: the description cannot be cleared (upstream).
    let body = admin
        .api
        .patch(&path, &json!({"name": null, "description": null}))
        .await
        .expect(200);
    assert_eq!(
        (&body["name"], &body["description"]),
        (&json!("Renamed"), &json!("About"))
    );
    let got = admin.api.get(&path).await.expect(200);
    assert_eq!(got["name"], "Renamed");
    let no_body = admin
        .api
        .send(Method::PATCH, &path, &[], Default::default())
        .await;
    assert_eq!(detail(&no_body, 422)[0]["type"], "missing");
    assert_eq!(
        detail(&admin.api.patch(&path, &json!({"name": 5})).await, 422)[0]["loc"],
        json!(["body", "name"])
    );
}

#[tokio::test]
async fn role_matrix_for_every_mutating_route() {
    let server = server_with_registration(|_| {}).await;
    let owner = admin_account(&server).await;
    let adam = register(&server, "adam@example.com", Some("Adam")).await;
    let mia = register(&server, "mia@example.com", None).await;
    let ws = id_of(&create_ws(&owner.api, "matrix").await);
    let owner_mid = member_id(&owner.api, &ws, &owner).await;
    let adam_mid = join(&owner, &ws, &adam, "admin").await;
    let mia_mid = join(&owner, &ws, &mia, "member").await;
    let pending = id_of(
        &invite(&owner.api, &ws, "someone@example.com", "member")
            .await
            .expect(201),
    );
    let path = ws_path(&ws);
    let member_path = |m: &str| format!("{path}/members/{m}");
    let invites_path = format!("{path}/invites");
    let admin_needed = "Requires admin role or higher";
    let owner_needed = "Requires owner role or higher";

    // member: reads only.
    let m = &mia.api;
    assert_eq!(m.get(&path).await.expect(200)["member_count"], 3);
    assert_eq!(members(m, &ws).await.len(), 3);
    assert_detail(
        &m.patch(&path, &json!({"name": "x"})).await,
        403,
        admin_needed,
    );
    assert_detail(&m.delete(&path).await, 403, owner_needed);
    assert_detail(
        &m.patch(&member_path(&mia_mid), &json!({"role": "admin"}))
            .await,
        403,
        admin_needed,
    );
    assert_detail(&m.delete(&member_path(&adam_mid)).await, 403, admin_needed);
    assert_detail(&m.delete(&member_path(&mia_mid)).await, 403, admin_needed);
    assert_detail(&m.get(&invites_path).await, 403, admin_needed);
    assert_detail(
        &invite(m, &ws, "x@example.com", "member").await,
        403,
        admin_needed,
    );
    assert_detail(
        &m.delete(&format!("{invites_path}/{pending}")).await,
        403,
        admin_needed,
    );

    // admin: manages non-owners, never owners, cannot delete the workspace.
    let a = &adam.api;
    a.patch(&path, &json!({"name": "By admin"}))
        .await
        .expect(200);
    assert_detail(&a.delete(&path).await, 403, owner_needed);
    let changed = a
        .patch(&member_path(&mia_mid), &json!({"role": "admin"}))
        .await
        .expect(200);
    assert_eq!(
        changed,
        json!({"id": mia_mid, "user_id": mia.user_id, "email": "mia@example.com",
               "display_name": null, "role": "admin"})
    );
    a.patch(&member_path(&mia_mid), &json!({"role": "member"}))
        .await
        .expect(200);
    let owners_only = "Only owners can modify owner roles";
    assert_detail(
        &a.patch(&member_path(&mia_mid), &json!({"role": "owner"}))
            .await,
        403,
        owners_only,
    );
    assert_detail(
        &a.patch(&member_path(&owner_mid), &json!({"role": "admin"}))
            .await,
        403,
        owners_only,
    );
    assert_detail(
        &a.delete(&member_path(&owner_mid)).await,
        403,
        "Only owners can remove owners",
    );
    assert_detail(
        &invite(a, &ws, "boss@example.com", "owner").await,
        403,
        "Only owners can invite owners",
    );
    let listed = a.get(&invites_path).await.expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let by_admin = id_of(&invite(a, &ws, "new@example.com", "admin").await.expect(201));
    a.delete(&format!("{invites_path}/{by_admin}"))
        .await
        .expect(204);
    a.delete(&format!("{invites_path}/{pending}"))
        .await
        .expect(204);
    a.delete(&member_path(&mia_mid)).await.expect(204);
    assert_eq!(members(a, &ws).await.len(), 2);
    // Removed: mia's token now meets the non-member answer.
    assert_detail(&m.get(&path).await, 404, "Workspace not found");

    // owner: everything, including owner roles and deletion.
    let o = &owner.api;
    let boss = invite(o, &ws, "boss@example.com", "owner")
        .await
        .expect(201);
    assert_eq!(boss["role"], "owner");
    o.patch(&member_path(&adam_mid), &json!({"role": "owner"}))
        .await
        .expect(200);
    o.patch(&member_path(&adam_mid), &json!({"role": "admin"}))
        .await
        .expect(200);
    o.delete(&member_path(&adam_mid)).await.expect(204);
    o.delete(&path).await.expect(204);
    assert_detail(&o.get(&path).await, 404, "Workspace not found");
}

#[tokio::test]
async fn owner_safety_rules() {
    let server = server_with_registration(|_| {}).await;
    let owner = admin_account(&server).await;
    let adam = register(&server, "adam@example.com", None).await;
    let ws = id_of(&create_ws(&owner.api, "safety").await);
    let path = ws_path(&ws);
    let owner_mid = member_id(&owner.api, &ws, &owner).await;
    let adam_mid = join(&owner, &ws, &adam, "member").await;
    let member_path = |m: &str| format!("{path}/members/{m}");
    let o = &owner.api;

    // D16: the only owner can neither demote nor remove themselves.
    assert_detail(
        &o.patch(&member_path(&owner_mid), &json!({"role": "admin"}))
            .await,
        400,
        "Workspace must keep at least one owner",
    );
    assert_detail(
        &o.delete(&member_path(&owner_mid)).await,
        400,
        "Cannot remove the last owner",
    );
    // Same role is a no-op, allowed.
    let same = o
        .patch(&member_path(&owner_mid), &json!({"role": "owner"}))
        .await
        .expect(200);
    assert_eq!(same["role"], "owner");

    // With a second owner, demoting oneself works.
    o.patch(&member_path(&adam_mid), &json!({"role": "owner"}))
        .await
        .expect(200);
    let demoted = o
        .patch(&member_path(&owner_mid), &json!({"role": "admin"}))
        .await
        .expect(200);
    assert_eq!(demoted["role"], "admin");
    let a = &adam.api;
    assert_detail(
        &a.patch(&member_path(&adam_mid), &json!({"role": "member"}))
            .await,
        400,
        "Workspace must keep at least one owner",
    );
    assert_detail(
        &a.delete(&member_path(&adam_mid)).await,
        400,
        "Cannot remove the last owner",
    );
    assert_detail(
        &o.patch(&member_path(&adam_mid), &json!({"role": "member"}))
            .await,
        403,
        "Only owners can modify owner roles",
    );
    // Back to two owners; one owner may remove another.
    a.patch(&member_path(&owner_mid), &json!({"role": "owner"}))
        .await
        .expect(200);
    o.delete(&member_path(&adam_mid)).await.expect(204);
    let left = members(o, &ws).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["role"], "owner");

    // Unknown member ids and bad roles.
    assert_detail(
        &o.patch(&member_path(NIL), &json!({"role": "member"})).await,
        404,
        "Member not found",
    );
    assert_detail(
        &o.patch(&member_path(&adam_mid), &json!({"role": "member"}))
            .await,
        404,
        "Member not found",
    );
    assert_detail(
        &o.delete(&member_path(&adam_mid)).await,
        404,
        "Member not found",
    );
    let bad = o
        .patch(&member_path(&owner_mid), &json!({"role": "viewer"}))
        .await;
    assert_eq!(
        detail(&bad, 422),
        json!([{"type": "enum", "loc": ["body", "role"],
                "msg": "Input should be 'owner', 'admin' or 'member'", "input": "viewer"}])
    );
    assert_eq!(
        detail(&o.patch(&member_path(&owner_mid), &json!({})).await, 422)[0]["loc"],
        json!(["body", "role"])
    );
}

#[tokio::test]
async fn invite_accept_decline_cancel_cycle() {
    let server = server_with_registration(|_| {}).await;
    let owner = admin_account(&server).await;
    let ws_body = create_ws(&owner.api, "cycle").await;
    let ws = id_of(&ws_body);
    let invites_path = format!("{WS}/{ws}/invites");
    let o = &owner.api;

    // Invite before the invitee exists; the email is kept as typed.
    let inv = invite(o, &ws, "Bob@Example.com", "member")
        .await
        .expect(201);
    let bob_inv = id_of(&inv);
    assert_eq!(
        inv,
        json!({"id": bob_inv, "email": "Bob@Example.com", "role": "member",
               "status": "pending", "invited_by_email": owner.email})
    );
    // The role defaults to member.
    let carol_inv = o
        .post(&invites_path, &json!({"email": "carol@example.com"}))
        .await
        .expect(201);
    assert_eq!(carol_inv["role"], "member");
    let carol_inv = id_of(&carol_inv);
    // Open invites, oldest first.
    let listed = o.get(&invites_path).await.expect(200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![bob_inv.as_str(), carol_inv.as_str()]);
    assert_eq!(listed[0], inv);
    // D11: duplicates are found case-insensitively.
    assert_detail(
        &invite(o, &ws, "bob@example.COM", "admin").await,
        409,
        "Invite already pending for this email",
    );

    // Bob registers (lower-case) and sees the invite.
    let bob = register(&server, "bob@example.com", Some("Bob")).await;
    let mine = bob.invites().await;
    assert_eq!(
        mine,
        vec![
            json!({"id": bob_inv, "workspace_id": ws, "workspace_name": "WS cycle",
                    "role": "member", "invited_by_email": owner.email})
        ]
    );
    // Another user cannot accept or decline it: it looks absent.
    let carol = register(&server, "carol@example.com", None).await;
    assert_detail(
        &accept(&carol.ident, &bob_inv).await,
        404,
        "Invite not found",
    );
    assert_detail(
        &decline(&carol.ident, &bob_inv).await,
        404,
        "Invite not found",
    );

    // Accept (an internal token works too in mode F).
    let joined = accept(&bob.api, &bob_inv).await.expect(200);
    assert_eq!(joined, ws_body);
    // Oldest workspace first: the shared one predates bob's personal one.
    let bob_ws = bob.workspaces().await;
    assert_eq!(bob_ws.len(), 2);
    assert_eq!(
        (
            &bob_ws[0]["id"],
            &bob_ws[0]["role"],
            &bob_ws[0]["is_personal"]
        ),
        (&json!(ws), &json!("member"), &json!(false))
    );
    assert_eq!(
        (
            &bob_ws[1]["id"],
            &bob_ws[1]["role"],
            &bob_ws[1]["is_personal"]
        ),
        (&json!(bob.home_ws), &json!("owner"), &json!(true))
    );
    assert!(bob.invites().await.is_empty());
    assert_detail(&accept(&bob.ident, &bob_inv).await, 404, "Invite not found");
    let listed = members(o, &ws).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["user_id"], json!(owner.user_id));
    assert_eq!(
        listed[1],
        json!({"id": listed[1]["id"], "user_id": bob.user_id, "email": "bob@example.com",
               "display_name": "Bob", "role": "member"})
    );
    assert_eq!(o.get(&ws_path(&ws)).await.expect(200)["member_count"], 2);
    // The new member's token reaches the workspace (membership decides, D31).
    bob.api.get(&ws_path(&ws)).await.expect(200);
    assert_detail(
        &invite(o, &ws, "BOB@example.com", "member").await,
        409,
        "User is already a member",
    );

    // Decline.
    assert_eq!(carol.invites().await.len(), 1);
    decline(&carol.ident, &carol_inv).await.expect(204);
    assert!(carol.invites().await.is_empty());
    assert!(o
        .get(&invites_path)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .is_empty());
    assert_detail(
        &accept(&carol.ident, &carol_inv).await,
        404,
        "Invite not found",
    );
    assert_detail(
        &decline(&carol.ident, &carol_inv).await,
        404,
        "Invite not found",
    );
    assert_eq!(carol.workspaces().await.len(), 1);

    // Cancel; a cancelled invite frees the email for a new one.
    let dave_inv = id_of(
        &invite(o, &ws, "dave@example.com", "admin")
            .await
            .expect(201),
    );
    let dave = register(&server, "dave@example.com", None).await;
    assert_eq!(dave.invites().await[0]["role"], "admin");
    o.delete(&format!("{invites_path}/{dave_inv}"))
        .await
        .expect(204);
    assert_detail(
        &o.delete(&format!("{invites_path}/{dave_inv}")).await,
        404,
        "Invite not found",
    );
    assert!(dave.invites().await.is_empty());
    assert_detail(
        &accept(&dave.ident, &dave_inv).await,
        404,
        "Invite not found",
    );
    let again = id_of(
        &invite(o, &ws, "dave@example.com", "admin")
            .await
            .expect(201),
    );
    accept(&dave.ident, &again).await.expect(200);
    assert_eq!(dave.workspaces().await[0]["role"], "admin");

    // Personal workspaces take no invites.
    assert_detail(
        &invite(o, &owner.home_ws, "erin@example.com", "member").await,
        403,
        "Cannot invite members to a personal workspace",
    );
    // Body validation.
    let bad = o
        .post(
            &invites_path,
            &json!({"email": "x@example.com", "role": "boss"}),
        )
        .await;
    assert_eq!(detail(&bad, 422)[0]["type"], "enum");
    let bad = o.post(&invites_path, &json!({"role": "member"})).await;
    assert_eq!(detail(&bad, 422)[0]["loc"], json!(["body", "email"]));
    assert_detail(&accept(&bob.ident, NIL).await, 404, "Invite not found");
    let malformed = accept(&bob.ident, "not-a-uuid").await;
    assert_eq!(
        detail(&malformed, 422)[0]["loc"],
        json!(["path", "invite_id"])
    );
}

#[tokio::test]
async fn expired_invites_are_absent() {
    // A zero-day lifetime makes every invite expire at once (D16).
    let server = server_with_registration(|c| c.auth.invite_ttl_days = 0).await;
    let owner = admin_account(&server).await;
    let ws = id_of(&create_ws(&owner.api, "expiry").await);
    let invites_path = format!("{WS}/{ws}/invites");
    let inv = invite(&owner.api, &ws, "late@example.com", "member")
        .await
        .expect(201);
    assert_eq!(inv["status"], "pending");
    let inv = id_of(&inv);
    let late = register(&server, "late@example.com", None).await;

    assert!(owner
        .api
        .get(&invites_path)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .is_empty());
    assert!(late.invites().await.is_empty());
    assert_detail(&accept(&late.ident, &inv).await, 404, "Invite not found");
    assert_detail(&decline(&late.ident, &inv).await, 404, "Invite not found");
    assert_detail(
        &owner.api.delete(&format!("{invites_path}/{inv}")).await,
        404,
        "Invite not found",
    );
    // An expired invite does not block a new one.
    invite(&owner.api, &ws, "late@example.com", "member")
        .await
        .expect(201);
    assert_eq!(late.workspaces().await.len(), 1);
}

#[tokio::test]
async fn foreign_ids_answer_exactly_like_missing_ones() {
    let server = server_with_registration(|_| {}).await;
    let alice = admin_account(&server).await;
    let bob = register(&server, "bob@example.com", None).await;
    let carol = register(&server, "carol@example.com", None).await;
    let a_ws = id_of(&create_ws(&alice.api, "alice-team").await);
    let b_ws = id_of(&create_ws(&bob.api, "bob-team").await);
    let b_owner_mid = member_id(&bob.api, &b_ws, &bob).await;
    let b_inv = id_of(
        &invite(&bob.api, &b_ws, &carol.email, "member")
            .await
            .expect(201),
    );

    // Every workspace route, on a workspace the caller is not in vs. one that does not
    // exist: the same 404.
    let routes = |ws: &str| -> Vec<(Method, String, Value)> {
        let p = ws_path(ws);
        vec![
            (Method::GET, p.clone(), Value::Null),
            (Method::PATCH, p.clone(), json!({"name": "x"})),
            (Method::DELETE, p.clone(), Value::Null),
            (Method::GET, format!("{p}/members"), Value::Null),
            (
                Method::PATCH,
                format!("{p}/members/{b_owner_mid}"),
                json!({"role": "member"}),
            ),
            (
                Method::DELETE,
                format!("{p}/members/{b_owner_mid}"),
                Value::Null,
            ),
            (Method::GET, format!("{p}/invites"), Value::Null),
            (
                Method::POST,
                format!("{p}/invites"),
                json!({"email": "z@example.com"}),
            ),
            (Method::DELETE, format!("{p}/invites/{b_inv}"), Value::Null),
            (Method::GET, format!("/api/v1/workspaces/{ws}"), Value::Null),
        ]
    };
    let send = |c: &Client, m: Method, p: String, body: Value| {
        let c = c.clone();
        async move {
            if body.is_null() {
                c.send(m, &p, &[], Default::default()).await
            } else {
                c.json(m, &p, &body).await
            }
        }
    };
    for (theirs, missing) in routes(&b_ws).into_iter().zip(routes(NIL)) {
        let what = format!("{} {}", theirs.0, theirs.1);
        let r1 = send(&alice.api, theirs.0, theirs.1, theirs.2).await;
        let r2 = send(&alice.api, missing.0, missing.1, missing.2).await;
        assert_eq!(r1.status, r2.status, "{what}");
        assert_eq!(r1.body, r2.body, "{what}");
        assert_detail(&r1, 404, "Workspace not found");
    }

    // Sub-resources of another workspace, addressed through the caller's own workspace.
    let own = ws_path(&a_ws);
    for (m, p, body) in [
        (
            Method::PATCH,
            format!("{own}/members/{b_owner_mid}"),
            json!({"role": "admin"}),
        ),
        (
            Method::DELETE,
            format!("{own}/members/{b_owner_mid}"),
            Value::Null,
        ),
    ] {
        let other = p.replace(&b_owner_mid, NIL);
        let r1 = send(&alice.api, m.clone(), p, body.clone()).await;
        let r2 = send(&alice.api, m, other, body).await;
        assert_eq!(r1.body, r2.body);
        assert_detail(&r1, 404, "Member not found");
    }
    let r1 = alice.api.delete(&format!("{own}/invites/{b_inv}")).await;
    let r2 = alice.api.delete(&format!("{own}/invites/{NIL}")).await;
    assert_eq!(r1.body, r2.body);
    assert_detail(&r1, 404, "Invite not found");
    // Someone else's invite, for accept and decline.
    for r in [
        accept(&alice.ident, &b_inv).await,
        decline(&alice.ident, &b_inv).await,
        accept(&alice.ident, NIL).await,
    ] {
        assert_detail(&r, 404, "Invite not found");
    }

    // Nothing was touched.
    assert_eq!(
        bob.api.get(&ws_path(&b_ws)).await.expect(200)["name"],
        "WS bob-team"
    );
    assert_eq!(members(&bob.api, &b_ws).await.len(), 1);
    assert_eq!(carol.invites().await.len(), 1);

    // Malformed ids are 422 after authentication; without credentials, 401.
    let bad = alice.api.get(&ws_path("not-a-uuid")).await;
    assert_eq!(
        detail(&bad, 422),
        json!([{"type": "uuid_parsing", "loc": ["path", "workspace_id"],
                "msg": "Input should be a valid UUID", "input": "not-a-uuid"}])
    );
    let bad = alice.api.delete(&format!("{own}/members/not-a-uuid")).await;
    assert_eq!(detail(&bad, 422)[0]["loc"], json!(["path", "member_id"]));
    assert_detail(
        &server.client().get(&ws_path("not-a-uuid")).await,
        401,
        "Not authenticated",
    );
    // Mode I takes no session token.
    assert_eq!(alice.ident.get(&ws_path(&a_ws)).await.status.as_u16(), 401);
}

#[tokio::test]
async fn deleting_a_workspace_removes_everything_in_it() {
    let server = server_with_registration(|_| {}).await;
    let creds = bootstrap_credentials(&server).await;
    let admin = admin_account(&server).await;
    let bob = register(&server, "bob@example.com", None).await;
    let carol = register(&server, "carol@example.com", None).await;
    let team = id_of(&create_ws(&admin.api, "team").await);
    join(&admin, &team, &bob, "admin").await;
    invite(&admin.api, &team, &carol.email, "member")
        .await
        .expect(201);
    assert_eq!(carol.invites().await.len(), 1);

    // Admins cannot delete; the owner can.
    assert_detail(
        &bob.api.delete(&ws_path(&team)).await,
        403,
        "Requires owner role or higher",
    );
    admin.api.delete(&ws_path(&team)).await.expect(204);
    assert_detail(
        &admin.api.get(&ws_path(&team)).await,
        404,
        "Workspace not found",
    );
    assert_detail(
        &bob.api.get(&ws_path(&team)).await,
        404,
        "Workspace not found",
    );
    assert_detail(
        &admin.api.get(&format!("{WS}/{team}/members")).await,
        404,
        "Workspace not found",
    );
    assert_detail(
        &admin.api.delete(&ws_path(&team)).await,
        404,
        "Workspace not found",
    );
    assert!(bob
        .workspaces()
        .await
        .iter()
        .all(|w| w["id"] != json!(team)));
    assert_eq!(bob.workspaces().await.len(), 1);
    assert!(carol.invites().await.is_empty(), "invites go with it");
    let refused = bob
        .ident
        .post("/api/v1/auth/exchange", &json!({"workspace_id": team}))
        .await;
    assert_detail(&refused, 403, "Not a member of the requested workspace");
    // The slug is free again, and the deleted workspace no longer counts to the limit.
    create_ws(&admin.api, "team").await;

    // The personal workspace can be deleted too: its environment's API key dies with it.
    let sdk = server.client().with_api_key(&creds.api_key);
    let before = sdk.get("/api/v1/target-roots").await;
    assert_ne!(
        before.status.as_u16(),
        401,
        "the bootstrap key authenticates"
    );
    let personal = admin.workspaces().await[0].clone();
    assert_eq!(personal["is_personal"], true);
    admin
        .api
        .delete(&ws_path(&creds.workspace_id))
        .await
        .expect(204);
    assert_detail(
        &sdk.get("/api/v1/target-roots").await,
        401,
        "Invalid API key",
    );
    let left = admin.workspaces().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["slug"], "team");
    let reused = create_ws(&admin.api, personal["slug"].as_str().unwrap()).await;
    assert_eq!(reused["is_personal"], false);
}

#[tokio::test]
async fn accepting_while_already_a_member_is_409() {
    // Only reachable when a member's email changes (OIDC re-provisioning): an invite to
    // the new address then finds them in the workspace already (D16).
    let server = oidc_server().await;
    let alice = Account::from_identity(&server, &idp_token("alice-sub", "alice@example.com")).await;
    let ws = id_of(&create_ws(&alice.ident, "oidc-team").await);
    let carol_old = idp_token("carol-sub", "carol@example.com");
    let carol = Account::from_identity(&server, &carol_old).await;
    join(&alice, &ws, &carol, "member").await;

    let inv = id_of(
        &invite(&alice.api, &ws, "carol.new@example.com", "admin")
            .await
            .expect(201),
    );
    // The IdP now reports a new email for carol; /ui/me re-provisions it.
    let carol_new = server
        .client()
        .with_bearer(&idp_token("carol-sub", "carol.new@example.com"));
    let me = carol_new.get("/api/v1/ui/me").await.expect(200);
    assert_eq!(me["user"]["email"], "carol.new@example.com");
    assert_detail(
        &accept(&carol_new, &inv).await,
        409,
        "Already a member of this workspace",
    );
    // Refused without side effects: still pending, role unchanged; declining works.
    assert_eq!(
        alice
            .api
            .get(&format!("{WS}/{ws}/invites"))
            .await
            .expect(200)[0]["id"],
        json!(inv)
    );
    let roles: Vec<Value> = members(&alice.api, &ws)
        .await
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(roles, vec![json!("owner"), json!("member")]);
    decline(&carol_new, &inv).await.expect(204);
}

/// The environment, API-key and target-root routes under the role matrix: members read,
/// admins (and owners) also write.
#[tokio::test]
async fn role_matrix_for_environment_key_and_root_routes() {
    let server = server_with_registration(|_| {}).await;
    let owner = admin_account(&server).await;
    let adam = register(&server, "adam@example.com", None).await;
    let mia = register(&server, "mia@example.com", None).await;
    let ws = id_of(&create_ws(&owner.api, "env-matrix").await);
    join(&owner, &ws, &adam, "admin").await;
    join(&owner, &ws, &mia, "member").await;
    let path = ws_path(&ws);
    let envs = owner
        .api
        .get(&format!("{path}/environments"))
        .await
        .expect(200);
    let env = envs[0]["id"].as_str().unwrap().to_string();
    let e = format!("{path}/environments/{env}");
    let key = id_of(
        &owner
            .api
            .post(&format!("{e}/api-keys"), &json!({"name": "k0"}))
            .await
            .expect(201),
    );
    let root = id_of(
        &owner
            .api
            .post(
                &format!("{e}/target-roots"),
                &json!({"name": "r0", "uri_prefix": "s3://r0"}),
            )
            .await
            .expect(201),
    );
    let routes = crate::environments::scoped_routes(&ws, &env, &key, &root);

    for route in &routes {
        let resp = match &route.body {
            Some(b) => mia.api.json(route.method.clone(), &route.path, b).await,
            None => {
                mia.api
                    .send(route.method.clone(), &route.path, &[], Default::default())
                    .await
            }
        };
        if route.admin_only {
            assert_detail(&resp, 403, "Requires admin role or higher");
        } else {
            assert!(
                resp.status.is_success(),
                "{} {}: {}",
                route.method,
                route.path,
                resp.status
            );
        }
    }
    for route in &routes {
        let resp = match &route.body {
            Some(b) => adam.api.json(route.method.clone(), &route.path, b).await,
            None => {
                adam.api
                    .send(route.method.clone(), &route.path, &[], Default::default())
                    .await
            }
        };
        assert!(
            resp.status.is_success(),
            "admin {} {}: {} {}",
            route.method,
            route.path,
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
}

/// D31: a token minted for a workspace stops working there once its user is removed,
/// on SDK routes and workspace routes alike, and no new one can be minted.
#[tokio::test]
async fn a_removed_member_loses_access_with_tokens_already_minted() {
    let server = server_with_registration(|_| {}).await;
    let owner = admin_account(&server).await;
    let mia = register(&server, "mia@example.com", None).await;
    let ws = id_of(&create_ws(&owner.api, "leavers").await);
    let mid = join(&owner, &ws, &mia, "member").await;
    let minted = mia
        .ident
        .post("/api/v1/auth/exchange", &json!({"workspace_id": ws}))
        .await
        .expect(200);
    let token = minted["access_token"].as_str().unwrap();
    let envs = owner
        .api
        .get(&format!("{}/environments", ws_path(&ws)))
        .await
        .expect(200);
    let env = envs[0]["id"].as_str().unwrap();
    let sdk = server.client().with_bearer(token);
    let roots = format!("/api/v1/target-roots?environment_id={env}");
    let builds = format!("/api/v1/builds?environment_id={env}");
    sdk.get(&roots).await.expect(200);
    sdk.get(&builds).await.expect(200);
    sdk.get(&ws_path(&ws)).await.expect(200);

    owner
        .api
        .delete(&format!("{}/members/{mid}", ws_path(&ws)))
        .await
        .expect(204);
    assert_detail(&sdk.get(&roots).await, 404, "Environment not found");
    assert_detail(&sdk.get(&builds).await, 404, "Environment not found");
    assert_detail(&sdk.get(&ws_path(&ws)).await, 404, "Workspace not found");
    assert_detail(
        &mia.ident
            .post("/api/v1/auth/exchange", &json!({"workspace_id": ws}))
            .await,
        403,
        "Not a member of the requested workspace",
    );
}
