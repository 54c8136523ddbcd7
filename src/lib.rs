//! stardag-server: the Stardag registry API as one self-hosted binary.
//!
//! Request path: `server` (accept, connection limits) → `http` (route, read, answer)
//! → `api` (handlers) → `store` (redb: snapshot reads, one group-commit writer).

pub mod admin;
pub mod api;
pub mod auth;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod logging;
pub mod memory;
pub mod server;
pub mod store;
pub mod ui;
