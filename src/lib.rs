//! stardag-server: the Stardag registry API as one self-hosted binary.
//!
//! Request path: `server` (accept, connection limits) → `http` (route, read, answer)
//! → `api` (handlers) → `store` (redb: snapshot reads, one group-commit writer).

/// The crate version: `GET /api/v1/version`, `stardag-server version` and the
/// `stardag_server_build_info` gauge all show this one value.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub mod admin;
pub mod api;
pub mod auth;
pub mod backup_restore;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod logging;
pub mod memory;
pub mod panics;
pub mod server;
pub mod store;
pub mod ui;
