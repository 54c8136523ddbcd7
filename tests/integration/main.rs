//! The one integration-test binary (one binary keeps link time down on 2 cores).

mod env_support;
mod harness;
mod identity_support;

mod admin_cli;
mod auth;
mod backup;
mod before_auth;
mod config_cli;
mod crash;
mod disk;
mod environments;
mod foundation;
mod limits;
mod locks;
mod oidc;
mod openapi;
mod request_heads;
mod search;
mod search_property;
mod store_writer;
mod tasks;
mod transport;
mod ui;
mod upgrade;
mod v2;
mod workspaces;
