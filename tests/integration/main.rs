//! The one integration-test binary (one binary keeps link time down on 2 cores).

mod env_support;
mod harness;
mod identity_support;

mod auth;
mod config_cli;
mod environments;
mod foundation;
mod store_writer;
mod transport;
mod workspaces;
