//! First start (D4): on an empty database in local auth mode, create the admin user,
//! their personal workspace (environment `local`, target root `default`) and one API
//! key, write them to `<data_dir>/initial-credentials` (0600) and say so once.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use redb::ReadableTableMetadata;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use crate::api::provisioning;
use crate::auth::{api_key, b64, password};
use crate::clock;
use crate::config::{AuthMode, Config};
use crate::http::response::ApiError;
use crate::store::identity::{self, ApiKeyRow, UserRow, USERS};
use crate::store::{Store, StoreError};

pub const CREDENTIALS_FILE: &str = "initial-credentials";
const DEFAULT_ADMIN_EMAIL: &str = "admin@localhost";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl From<ApiError> for BootstrapError {
    fn from(e: ApiError) -> Self {
        BootstrapError::Other(e.to_string())
    }
}

/// What the first start created; `api_key` and `password` exist only here and in the file.
pub struct Created {
    pub email: String,
    pub password: String,
    pub api_key: String,
    pub workspace_id: Uuid,
    pub environment_id: Uuid,
}

/// Runs the first-start bootstrap if the database has no users yet. Later starts (and
/// OIDC mode, where users come from the identity provider) do nothing.
pub fn first_start(config: &Config, store: &Store, url: &str) -> Result<(), BootstrapError> {
    if config.auth.mode != AuthMode::Local || has_users(store)? {
        return Ok(());
    }
    let email = config
        .auth
        .bootstrap_admin_email
        .clone()
        .unwrap_or_else(|| DEFAULT_ADMIN_EMAIL.into());
    let password = match &config.auth.bootstrap_admin_password {
        Some(p) => p.clone(),
        None => random_password()?,
    };
    let hash = password::hash_password(&password)
        .map_err(|e| BootstrapError::Other(format!("auth.bootstrap_admin_password: {e}")))?;
    let Some(created) = create_admin(store, email, password, hash)? else {
        return Ok(());
    };
    let path = write_credentials(&config.data_dir, url, &created)?;
    announce(&path, url, &created);
    Ok(())
}

fn has_users(store: &Store) -> Result<bool, StoreError> {
    store.read_blocking(|tx| Ok(tx.open_table(USERS)?.len()? > 0))
}

/// 18 random bytes as base64url: 24 characters, 144 bits.
pub(crate) fn random_password() -> Result<String, BootstrapError> {
    let mut bytes = [0u8; 18];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| BootstrapError::Other("no randomness available".into()))?;
    Ok(b64::encode(&bytes))
}

fn create_admin(
    store: &Store,
    email: String,
    password: String,
    hash: String,
) -> Result<Option<Created>, BootstrapError> {
    let id = Uuid::now_v7();
    let user = UserRow {
        id,
        external_id: format!("local:{id}"),
        email,
        display_name: Some("Admin".into()),
        password_hash: Some(hash),
        created_at: clock::now_micros(),
    };
    let created = store.write_blocking(move |tx| -> Result<Option<Created>, ApiError> {
        // Checked again inside the write: two racing starts cannot both bootstrap.
        if tx
            .open_table(USERS)
            .map_err(StoreError::from)?
            .len()
            .map_err(StoreError::from)?
            > 0
        {
            return Ok(None);
        }
        let (ws, env) = provisioning::create_user_with_workspace(tx, &user)?;
        let key = api_key::generate(&env.id, &SystemRandom::new())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        identity::put_api_key(
            tx,
            &ApiKeyRow {
                id: Uuid::now_v7(),
                environment_id: env.id,
                name: "initial".into(),
                key_prefix: key.key_prefix.clone(),
                key_hash: key.hash,
                created_by: Some(user.id),
                created_at: clock::now_micros(),
                last_used_at: None,
                revoked_at: None,
            },
        )?;
        Ok(Some(Created {
            email: user.email.clone(),
            password,
            api_key: key.key,
            workspace_id: ws.id,
            environment_id: env.id,
        }))
    })?;
    Ok(created)
}

fn credentials_text(url: &str, c: &Created) -> String {
    format!(
        "STARDAG_API_URL={url}\nSTARDAG_REGISTRY_URL={url}\nSTARDAG_API_KEY={}\n\
         STARDAG_ADMIN_EMAIL={}\nSTARDAG_ADMIN_PASSWORD={}\n\
         STARDAG_WORKSPACE_ID={}\nSTARDAG_ENVIRONMENT_ID={}\n",
        c.api_key, c.email, c.password, c.workspace_id, c.environment_id
    )
}

/// Written to a temporary file with mode 0600 and renamed into place.
fn write_credentials(dir: &Path, url: &str, c: &Created) -> Result<PathBuf, BootstrapError> {
    let path = dir.join(CREDENTIALS_FILE);
    let tmp = dir.join(format!("{CREDENTIALS_FILE}.tmp"));
    let io =
        |e: std::io::Error| BootstrapError::Other(format!("cannot write {}: {e}", path.display()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&tmp).map_err(io)?;
    file.write_all(credentials_text(url, c).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    Ok(path)
}

/// Secrets go to the terminal only; under systemd or CI only the file's path is printed.
fn announce(path: &Path, url: &str, c: &Created) {
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let _ = writeln!(
            out,
            "\nstardag-server is ready at {url}\n\n  admin login: {} / {}\n\n  \
             export STARDAG_API_URL={url} STARDAG_REGISTRY_URL={url} STARDAG_API_KEY={}\n\n\
             (saved in {})\n",
            c.email,
            c.password,
            c.api_key,
            path.display()
        );
    } else {
        let _ = writeln!(
            out,
            "first start: initial credentials written to {}",
            path.display()
        );
    }
    let _ = out.flush();
}
