//! The one integration-test binary (one binary keeps link time down on 2 cores).

mod harness;

mod admin_cli;
mod config_cli;
mod foundation;
mod oidc;
mod store_writer;
