//! The one integration-test binary (one binary keeps link time down on 2 cores).

mod harness;

mod config_cli;
mod foundation;
mod store_writer;
mod tasks;
