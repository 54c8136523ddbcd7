//! The page shell (header with the workspace ▸ environment switcher, navigation, footer)
//! and the small pieces every page uses: status badges, times, ids with copy buttons.

use maud::{html, Markup, DOCTYPE};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::scope::Scope;
use super::session::Session;
use crate::http::AppState;

/// Characters kept as they are in a path segment or query value.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes a path segment (slugs, task ids).
pub fn seg(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

/// Percent-encodes a query value.
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

/// The text of an API `detail` (a string, or the message of a structured detail, or
/// the first 422 item's `msg`).
pub fn detail_text(detail: &serde_json::Value) -> String {
    match detail {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| detail.to_string()),
        serde_json::Value::Array(items) => items
            .iter()
            .filter_map(|i| {
                let msg = i.get("msg")?.as_str()?;
                let field = i
                    .get("loc")
                    .and_then(|l| l.as_array())
                    .and_then(|l| l.last())
                    .and_then(|f| f.as_str())
                    .unwrap_or("");
                Some(format!("{field}: {msg}"))
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Builds,
    Tasks,
    Locks,
    Connect,
    Settings,
    Account,
}

/// A signed-in page: header, navigation, main content, footer.
pub fn page(
    state: &AppState,
    who: &Session,
    scope: Option<&Scope>,
    nav: Nav,
    title: &str,
    body: Markup,
) -> Markup {
    let assets = &state.ui.assets;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · stardag" }
                link rel="stylesheet" href=(assets.url("app.css"));
                link rel="icon" href=(assets.url("favicon.svg")) type="image/svg+xml";
                script type="module" src=(assets.url("app.js")) {}
            }
            body data-poll-ms=(state.config.ui.poll_ms) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { span.logo aria-hidden="true" { "✦" } " stardag" }
                    @if let Some(scope) = scope { (switcher(scope)) (nav_links(scope, nav)) }
                    div.user {
                        @if who.pending_invites > 0 {
                            a.invites-badge href="/invites" { "Invites (" (who.pending_invites) ")" }
                        }
                        details.menu {
                            summary { (who.user.email) }
                            div.menu-body {
                                a href="/account" { "Account" }
                                a href="/invites" { "Invites" }
                                a href="/workspaces/new" { "New workspace" }
                                form method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(who.csrf(state));
                                    button.linkish type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    @if who.invites_notice && who.pending_invites > 0 { (invites_notice(who.pending_invites)) }
                    (body)
                }
                (footer(state))
            }
        }
    }
}

/// The notice on the first page after signing in while invites are open (ui.md P11:
/// offered once, in the page, never a modal).
fn invites_notice(n: usize) -> Markup {
    let workspaces = if n == 1 { "workspace" } else { "workspaces" };
    notice(
        "info invites-notice",
        html! {
            "You are invited to " (n) " " (workspaces) ". "
            a href="/invites" { "Review your invites" }
        },
    )
}

/// A page without a session (login, errors).
pub fn bare(state: &AppState, title: &str, body: Markup) -> Markup {
    let assets = &state.ui.assets;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · stardag" }
                link rel="stylesheet" href=(assets.url("app.css"));
                link rel="icon" href=(assets.url("favicon.svg")) type="image/svg+xml";
            }
            body.bare {
                a.skip href="#main" { "Skip to content" }
                header.top { a.brand href="/" { span.logo aria-hidden="true" { "✦" } " stardag" } }
                main #main tabindex="-1" { (body) }
                (footer(state))
            }
        }
    }
}

fn footer(state: &AppState) -> Markup {
    let mode = match state.config.auth.mode {
        crate::config::AuthMode::Local => "local",
        crate::config::AuthMode::Oidc => "oidc",
    };
    html! {
        footer.foot {
            "stardag-server v" (env!("CARGO_PKG_VERSION")) " · auth: " (mode)
            " · TLS " (if state.tls { "on" } else { "off" })
        }
    }
}

/// The workspace ▸ environment menu: a `<details>`, so it works without JS.
fn switcher(scope: &Scope) -> Markup {
    let ws = scope.ws();
    html! {
        details.menu.switcher {
            summary {
                span.ws-name { (ws.ws.name) }
                @if let Some(env) = &scope.env { span.sep { "▸" } span.env-name { (env.name) } }
            }
            div.menu-body {
                @for w in &scope.mine {
                    div.menu-ws {
                        span.menu-ws-name { (w.ws.name) }
                        span.tag { (w.role.as_str()) }
                        @if w.ws.is_personal { span.tag { "personal" } }
                    }
                    @for e in &w.envs {
                        a.menu-env href=(format!("/ws/{}/env/{}/builds", seg(&w.ws.slug), seg(&e.slug))) {
                            (e.name)
                        }
                    }
                }
            }
        }
    }
}

fn nav_links(scope: &Scope, nav: Nav) -> Markup {
    let ws = seg(&scope.ws().ws.slug);
    let env_base = scope
        .env
        .as_ref()
        .or_else(|| scope.ws().envs.first())
        .map(|e| format!("/ws/{ws}/env/{}", seg(&e.slug)));
    html! {
        nav.main-nav aria-label="Main" {
            @if let Some(base) = &env_base {
                a.current[nav == Nav::Builds] href=(format!("{base}/builds")) aria-current=[current(nav, Nav::Builds)] { "Builds" }
                a.current[nav == Nav::Tasks] href=(format!("{base}/tasks")) aria-current=[current(nav, Nav::Tasks)] { "Explorer" }
                a.current[nav == Nav::Locks] href=(format!("{base}/locks")) aria-current=[current(nav, Nav::Locks)] { "Locks" }
                a.current[nav == Nav::Connect] href=(format!("{base}/connect")) aria-current=[current(nav, Nav::Connect)] { "Connect" }
            }
            a.current[nav == Nav::Settings] href=(format!("/ws/{ws}/settings")) aria-current=[current(nav, Nav::Settings)] { "Settings" }
        }
    }
}

/// `aria-current="page"` on the navigation entry of the page shown.
fn current(nav: Nav, entry: Nav) -> Option<&'static str> {
    (nav == entry).then_some("page")
}

/// Status text plus icon plus colour (ui.md §3.6), never colour alone.
pub fn badge(status: &str) -> Markup {
    html! {
        span class=(format!("badge st-{status}")) data-status=(status) {
            span.icon aria-hidden="true" { (status_icon(status)) } " " (status.replace('_', " "))
        }
    }
}

pub fn status_icon(status: &str) -> &'static str {
    match status {
        "pending" => "○",
        "running" => "◐",
        "suspended" => "‖",
        "completed" => "✓",
        "failed" => "✕",
        "cancelled" => "⊘",
        "exit_early" => "⤴",
        "skipped" => "»",
        _ => "·",
    }
}

/// `<time datetime="…">2026-12-05 07:12:03 UTC</time>`.
pub fn time(micros: i64) -> Markup {
    let iso = crate::clock::format_micros(micros);
    let shown = format!("{} {} UTC", &iso[..10], &iso[11..19]);
    html! { time datetime=(iso) { (shown) } }
}

pub fn time_opt(micros: Option<i64>) -> Markup {
    match micros {
        Some(m) => time(m),
        None => html! { span.muted { "—" } },
    }
}

/// A human duration between two instants (µs).
pub fn duration(from: i64, to: i64) -> String {
    let secs = (to - from).max(0) / 1_000_000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min {} s", s / 60, s % 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// An id in a read-only field (selectable without JS) with a copy button (JS).
pub fn copy_field(label: &str, value: &str) -> Markup {
    html! {
        span.copy {
            input.copy-value type="text" readonly value=(value) aria-label=(label) size=(value.len().clamp(8, 60));
            button.copy-btn type="button" data-copy=(value) title="Copy" { "Copy" }
        }
    }
}

/// The hidden CSRF field of a POST form.
pub fn csrf_field(state: &AppState, who: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(who.csrf(state)); }
}

/// A notice box.
pub fn notice(kind: &str, text: Markup) -> Markup {
    html! { div class=(format!("notice {kind}")) role="status" { (text) } }
}

/// Short ids shown in tables.
pub fn short(id: &str) -> &str {
    let end = id.char_indices().nth(8).map(|(i, _)| i).unwrap_or(id.len());
    &id[..end]
}
