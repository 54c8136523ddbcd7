//! One module per page group (ui.md §5).

pub mod account;
pub mod build;
pub mod builds;
pub mod connect;
pub mod environments;
pub mod explorer;
pub mod home;
pub mod locks;
pub mod login;
pub mod members;
pub mod oidc_login;
pub mod settings;
pub mod task;
pub mod workspace;
