//! The web UI through plain HTTP (ui.md §7): sign-in and the session cookie, CSRF and
//! Origin checks on every POST, security headers, pages of both protocols, live state
//! with ETag/304, escaping of hostile names and markdown, and tenancy (a foreign
//! workspace, environment or build is the same 404 page).

mod explorer;
mod lists;
mod oidc_login;
mod pages;
mod security;
mod settings;

use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};

use crate::harness::{Client, TestResponse};
use crate::tasks::Fixture;

/// A signed-in browser: the session cookie, the page origin and the CSRF token.
pub struct Browser {
    pub c: Client,
    pub cookie: String,
    pub origin: String,
}

/// The value of `name="csrf"` in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &html[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

pub fn text(r: &TestResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// `application/x-www-form-urlencoded` of the pairs.
pub fn form(pairs: &[(&str, &str)]) -> Bytes {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Bytes::from(
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

impl Browser {
    /// Signs in through the login form.
    pub async fn sign_in(c: &Client, email: &str, password: &str) -> Browser {
        let origin = format!("http://{}", c.addr);
        let r = c
            .send(
                Method::POST,
                "/login",
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", &origin),
                ],
                form(&[("email", email), ("password", password), ("next", "/")]),
            )
            .await;
        assert_eq!(r.status, 303, "{}", text(&r));
        let set = r.header("set-cookie").expect("session cookie").to_owned();
        let cookie = set.split(';').next().unwrap().to_owned();
        Browser {
            c: c.clone(),
            cookie,
            origin,
        }
    }

    pub async fn admin(f: &Fixture) -> Browser {
        Browser::sign_in(
            &f.anonymous(),
            f.cred("STARDAG_ADMIN_EMAIL"),
            f.cred("STARDAG_ADMIN_PASSWORD"),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.c
            .send(Method::GET, path, &[("cookie", &self.cookie)], Bytes::new())
            .await
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> TestResponse {
        let mut h = vec![("cookie", self.cookie.as_str())];
        h.extend_from_slice(headers);
        self.c.send(Method::GET, path, &h, Bytes::new()).await
    }

    /// A form POST as a browser sends it: cookie, same Origin, the page's CSRF token.
    pub async fn post_form(&self, path: &str, csrf: &str, pairs: &[(&str, &str)]) -> TestResponse {
        let mut all = vec![("csrf", csrf)];
        all.extend_from_slice(pairs);
        self.post_raw(path, &[("origin", &self.origin)], form(&all))
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> TestResponse {
        let mut h = vec![
            ("cookie", self.cookie.as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        h.extend_from_slice(headers);
        self.c.send(Method::POST, path, &h, body).await
    }

    /// `/ws/<slug>/env/<env>` of the signed-in user's home environment (from `/`).
    pub async fn home_env(&self) -> String {
        let r = self.get("/").await;
        assert_eq!(r.status, 303);
        let loc = r.header("location").unwrap();
        let parts: Vec<&str> = loc.split('/').collect();
        assert_eq!(parts[1], "ws", "{loc}");
        format!("/ws/{}/env/{}", parts[2], parts[4])
    }
}

/// A v1 build with the DAG A→B→C, D→C registered through the API; its id.
pub async fn seed_dag(sdk: &Client) -> (String, [String; 4]) {
    let build = crate::tasks::new_build_id(sdk).await;
    let [a, b, c, d] = ["a", "b", "c", "d"].map(crate::tasks::hash);
    crate::tasks::register(sdk, &build, &crate::tasks::reg(&a, "A", &[])).await;
    crate::tasks::register(sdk, &build, &crate::tasks::reg(&b, "B", &[&a])).await;
    crate::tasks::register(sdk, &build, &crate::tasks::reg(&d, "D", &[])).await;
    crate::tasks::register(sdk, &build, &crate::tasks::reg(&c, "C", &[&b, &d])).await;
    (build, [a, b, c, d])
}

pub fn json_of(r: &TestResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(json!(null))
}
