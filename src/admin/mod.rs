//! `stardag-server admin …` (D1): users, workspaces, environments, API keys and signing
//! keys, worked on the data directory directly while the server is stopped.
//!
//! The database allows one process at a time, so a running server makes every command
//! fail with a message saying so (exit 1) instead of waiting or corrupting anything.
//! Exit codes: 0 done, 1 failed, 2 usage or configuration error. `--json` prints the
//! result (or `{"error": {"kind", "message"}}` on stderr) for scripts.

pub mod ops;

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::config::{Config, Sources};
use crate::store::{Store, StoreOptions};
use ops::{AdminError, EnvRef};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Print results as JSON (errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Users: add, list, set passwords.
    #[command(subcommand)]
    User(UserCommand),
    /// Workspaces: list, create.
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Environments: list, create, set the lock limit.
    #[command(subcommand)]
    Environment(EnvironmentCommand),
    /// Environment API keys: create, list, revoke.
    #[command(subcommand, name = "api-key")]
    ApiKey(ApiKeyCommand),
    /// Add a new token signing key; the old one keeps verifying until its tokens expire.
    RotateSigningKey,
    /// Write a self-signed TLS certificate and key (PEM) for tests and air-gapped hosts.
    SelfSignedCert(SelfSignedArgs),
    /// Check the database file: every page's checksum, every row of every table, and
    /// that index entries point at rows. Exit 0 when clean, 1 when damaged.
    Verify,
}

#[derive(Debug, Args)]
pub struct SelfSignedArgs {
    /// Host names or IP addresses the certificate is valid for (repeatable).
    #[arg(long = "host", value_name = "NAME", required = true)]
    pub hosts: Vec<String>,
    /// Where to write the certificate.
    #[arg(long, value_name = "PATH", default_value = "stardag-server.crt")]
    pub cert_out: std::path::PathBuf,
    /// Where to write the private key (created with mode 0600).
    #[arg(long, value_name = "PATH", default_value = "stardag-server.key")]
    pub key_out: std::path::PathBuf,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}

/// A password from the command line or, safer (not visible in the process list), stdin.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (8..1024 bytes). Visible to other local users in the process list;
    /// prefer --password-stdin. Without either, a password is generated and printed once.
    #[arg(long, value_name = "PASSWORD", conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with their personal workspace (environment `local`).
    Add {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[arg(long, value_name = "NAME")]
        display_name: Option<String>,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// List users with their workspaces and roles.
    List,
    /// Set a user's password (local auth mode).
    SetPassword {
        #[arg(long, value_name = "EMAIL")]
        email: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// List workspaces with their members and environments.
    List,
    /// Create a shared workspace owned by an existing user, with a first environment.
    Create {
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Lower-case letters, digits, `-` and `_`; 2..64 characters; globally unique.
        #[arg(long, value_name = "SLUG")]
        slug: String,
        /// Email of the user who becomes the owner.
        #[arg(long, value_name = "EMAIL")]
        owner: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Name of the first environment [default: Default].
        #[arg(long, value_name = "NAME")]
        environment_name: Option<String>,
        /// Slug of the first environment [default: default].
        #[arg(long, value_name = "SLUG")]
        environment_slug: Option<String>,
    },
}

/// An environment by id, or by slug together with its workspace.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Environment id, or its slug when --workspace is given.
    #[arg(long, value_name = "ID|SLUG")]
    pub environment: String,
    /// Workspace id or slug (needed when --environment is a slug).
    #[arg(long, value_name = "ID|SLUG")]
    pub workspace: Option<String>,
}

impl From<EnvArgs> for EnvRef {
    fn from(a: EnvArgs) -> Self {
        EnvRef {
            environment: a.environment,
            workspace: a.workspace,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    /// List environments (of one workspace, or all).
    List {
        /// Workspace id or slug.
        #[arg(long, value_name = "ID|SLUG")]
        workspace: Option<String>,
    },
    /// Create an environment in a workspace.
    Create {
        /// Workspace id or slug.
        #[arg(long, value_name = "ID|SLUG")]
        workspace: String,
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Lower-case letters, digits, `-` and `_`; 2..64 characters; unique in the workspace.
        #[arg(long, value_name = "SLUG")]
        slug: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Set how many locks the environment may hold at once, or remove the limit.
    #[command(group(ArgGroup::new("lock_limit").required(true).args(["limit", "unlimited"])))]
    SetLockLimit {
        #[command(flatten)]
        env: EnvArgs,
        /// The most locks held at once (at least 1).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Remove the limit.
        #[arg(long)]
        unlimited: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a key for an environment; the key is printed once and cannot be shown again.
    Create {
        #[command(flatten)]
        env: EnvArgs,
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List an environment's keys, revoked ones included (newest first).
    List {
        #[command(flatten)]
        env: EnvArgs,
    },
    /// Revoke a key by id: requests with it answer 401 from then on.
    Revoke {
        #[arg(long, value_name = "KEY_ID")]
        id: Uuid,
    },
}

/// Entry point from `main`: load the config, run one command, print, and exit.
pub fn main(sources: &Sources, args: AdminArgs) -> ExitCode {
    let json = args.json;
    let config = match Config::load(sources) {
        Ok(c) => c,
        Err(e) => {
            report_error(json, "config", &e.to_string());
            return ExitCode::from(2);
        }
    };
    match run(&config, args.command) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            let text = if json {
                // Serializing a `Value` cannot fail.
                serde_json::to_string_pretty(&out.json).unwrap_or_default()
            } else {
                out.text
            };
            let _ = writeln!(stdout, "{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            report_error(json, e.kind(), &e.to_string());
            ExitCode::FAILURE
        }
    }
}

fn report_error(json: bool, kind: &str, message: &str) {
    if json {
        eprintln!("{}", json!({"error": {"kind": kind, "message": message}}));
    } else {
        eprintln!("stardag-server: {message}");
    }
}

/// What a command prints: the same result as JSON and as text.
struct Printed {
    json: Value,
    text: String,
}

fn printed(value: &impl Serialize, text: String) -> Result<Printed, AdminError> {
    let json = serde_json::to_value(value).map_err(|e| AdminError::Internal(e.to_string()))?;
    Ok(Printed { json, text })
}

/// Closes the store (commits, stops the writer) on every way out.
struct OpenStore(Store);

impl Drop for OpenStore {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// Opens an existing database. A missing one is an error rather than created, so a
/// mistyped `--data-dir` cannot quietly make an empty installation.
fn open_store(config: &Config) -> Result<OpenStore, AdminError> {
    let path = config.db_path();
    if !path.is_file() {
        return Err(AdminError::NoDatabase(path.display().to_string()));
    }
    Ok(OpenStore(Store::open(
        &path,
        &StoreOptions::from(&config.store),
    )?))
}

/// `admin verify`: a file that does not even open is reported like damage found inside.
fn verify(config: &Config) -> Result<Printed, AdminError> {
    let store = open_store(config)?;
    let report = crate::store::verify::verify(&store.0)?;
    let rows: u64 = report.tables.iter().map(|(_, n)| n).sum();
    if !report.is_clean() {
        return Err(AdminError::Damaged(format!(
            "{} is damaged:\n  {}\nrestore your last backup (docs/operations.md, \"Damaged database file\")",
            config.db_path().display(),
            report.problems.join("\n  ")
        )));
    }
    let text = format!(
        "{}: no damage found ({} tables, {rows} rows, page checksums and index entries checked)",
        config.db_path().display(),
        report.tables.len()
    );
    printed(
        &json!({"clean": true, "tables": report.tables.len(), "rows": rows}),
        text,
    )
}

fn read_password(args: PasswordArgs) -> Result<Option<String>, AdminError> {
    if !args.password_stdin {
        return Ok(args.password);
    }
    let mut input = String::new();
    std::io::stdin()
        .lock()
        .read_to_string(&mut input)
        .map_err(|e| AdminError::Invalid(format!("cannot read the password from stdin: {e}")))?;
    let line = input.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(AdminError::Invalid("no password on stdin".into()));
    }
    Ok(Some(line.to_owned()))
}

/// Needs no database: writes the two PEM files (rcgen on ring, the provider rustls
/// already uses, so no second crypto stack).
fn self_signed_cert(args: SelfSignedArgs) -> Result<Printed, AdminError> {
    for path in [&args.cert_out, &args.key_out] {
        if path.exists() && !args.force {
            return Err(AdminError::Conflict(format!(
                "{} exists; pass --force to overwrite",
                path.display()
            )));
        }
    }
    let (cert, key) = crate::server::tls::self_signed(&args.hosts)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    let io = |p: &std::path::Path, e: std::io::Error| {
        AdminError::Internal(format!("cannot write {}: {e}", p.display()))
    };
    std::fs::write(&args.cert_out, cert).map_err(|e| io(&args.cert_out, e))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(&args.key_out)
        .and_then(|mut f| f.write_all(key.as_bytes()))
        .map_err(|e| io(&args.key_out, e))?;
    let out = json!({
        "cert": args.cert_out,
        "key": args.key_out,
        "hosts": args.hosts,
    });
    let text = format!(
        "wrote {} and {} (valid for {})\nuse them with tls.cert / tls.key",
        args.cert_out.display(),
        args.key_out.display(),
        args.hosts.join(", ")
    );
    printed(&out, text)
}

fn run(config: &Config, command: AdminCommand) -> Result<Printed, AdminError> {
    // Read stdin before opening the database, so a waiting prompt never holds the lock.
    let command = match command {
        AdminCommand::SelfSignedCert(args) => return self_signed_cert(args),
        AdminCommand::Verify => return verify(config),
        AdminCommand::User(UserCommand::Add {
            email,
            display_name,
            password,
        }) => Resolved::UserAdd(ops::NewUser {
            email,
            password: read_password(password)?,
            display_name,
        }),
        AdminCommand::User(UserCommand::SetPassword { email, password }) => {
            Resolved::SetPassword(email, read_password(password)?)
        }
        AdminCommand::User(UserCommand::List) => Resolved::UserList,
        AdminCommand::Workspace(c) => Resolved::Workspace(c),
        AdminCommand::Environment(c) => Resolved::Environment(c),
        AdminCommand::ApiKey(c) => Resolved::ApiKey(c),
        AdminCommand::RotateSigningKey => Resolved::RotateSigningKey,
    };
    let store = open_store(config)?;
    let store = &store.0;
    let mode = config.auth.mode;
    match command {
        Resolved::UserAdd(new) => {
            let added = ops::add_user(store, mode, new)?;
            let mut text = format!(
                "created user {} (id {})\npersonal workspace {} (id {})",
                added.user.email, added.user.id, added.workspace.slug, added.workspace.id
            );
            for env in &added.workspace.environments {
                text.push_str(&format!("\nenvironment {} (id {})", env.slug, env.id));
            }
            if let Some(p) = &added.password {
                text.push_str(&format!("\npassword (shown once): {p}"));
            }
            printed(&added, text)
        }
        Resolved::SetPassword(email, password) => {
            let set = ops::set_password(store, mode, &email, password)?;
            let mut text = format!("password set for {}", set.email);
            if let Some(p) = &set.password {
                text.push_str(&format!("\npassword (shown once): {p}"));
            }
            printed(&set, text)
        }
        Resolved::UserList => {
            let users = ops::list_users(store)?;
            let mut text = String::new();
            for u in &users {
                let ws: Vec<String> = u
                    .workspaces
                    .iter()
                    .map(|w| format!("{}:{}", w.workspace_slug, w.role))
                    .collect();
                text.push_str(&format!(
                    "{}  {}  {}  {}\n",
                    u.id,
                    u.email,
                    u.display_name.as_deref().unwrap_or("-"),
                    ws.join(",")
                ));
            }
            if users.is_empty() {
                text.push_str("no users");
            }
            printed(&users, text)
        }
        Resolved::Workspace(cmd) => workspace(store, cmd),
        Resolved::Environment(cmd) => environment(store, cmd),
        Resolved::ApiKey(cmd) => api_key(store, cmd),
        Resolved::RotateSigningKey => {
            let rotated = ops::rotate_signing_key(store)?;
            let mut text = format!(
                "new signing key {}; it signs from the next server start\n",
                rotated.kid
            );
            for k in rotated.keys.iter().filter(|k| k.retired_at.is_some()) {
                text.push_str(&format!(
                    "retired {} at {} (still verifies the tokens it signed until they expire)\n",
                    k.kid,
                    k.retired_at.as_deref().unwrap_or_default()
                ));
            }
            printed(&rotated, text)
        }
    }
}

/// A command with its stdin input already read.
enum Resolved {
    UserAdd(ops::NewUser),
    SetPassword(String, Option<String>),
    UserList,
    Workspace(WorkspaceCommand),
    Environment(EnvironmentCommand),
    ApiKey(ApiKeyCommand),
    RotateSigningKey,
}

fn workspace(store: &Store, cmd: WorkspaceCommand) -> Result<Printed, AdminError> {
    match cmd {
        WorkspaceCommand::List => {
            let list = ops::list_workspaces(store)?;
            let mut text = String::new();
            for w in &list {
                text.push_str(&format!(
                    "{}  {}  {:?}{}\n",
                    w.id,
                    w.slug,
                    w.name,
                    if w.is_personal { "  (personal)" } else { "" }
                ));
                for m in &w.members {
                    text.push_str(&format!(
                        "    member {} {}\n",
                        m.email.as_deref().unwrap_or("?"),
                        m.role
                    ));
                }
                for e in &w.environments {
                    text.push_str(&format!("    environment {}  {}\n", e.id, e.slug));
                }
            }
            if list.is_empty() {
                text.push_str("no workspaces");
            }
            printed(&list, text)
        }
        WorkspaceCommand::Create {
            name,
            slug,
            owner,
            description,
            environment_name,
            environment_slug,
        } => {
            let ws = ops::create_workspace(
                store,
                ops::NewWorkspace {
                    name,
                    slug,
                    owner_email: owner,
                    description,
                    environment_name,
                    environment_slug,
                },
            )?;
            let mut text = format!("created workspace {} (id {})", ws.slug, ws.id);
            for e in &ws.environments {
                text.push_str(&format!("\nenvironment {} (id {})", e.slug, e.id));
            }
            printed(&ws, text)
        }
    }
}

fn environment(store: &Store, cmd: EnvironmentCommand) -> Result<Printed, AdminError> {
    match cmd {
        EnvironmentCommand::List { workspace } => {
            let list = ops::list_environments(store, workspace.as_deref())?;
            let mut text = String::new();
            for e in &list {
                text.push_str(&format!(
                    "{}  {}  {:?}  workspace {}  locks {}\n",
                    e.id,
                    e.slug,
                    e.name,
                    e.workspace_id,
                    lock_limit_text(e.max_concurrent_locks)
                ));
            }
            if list.is_empty() {
                text.push_str("no environments");
            }
            printed(&list, text)
        }
        EnvironmentCommand::Create {
            workspace,
            name,
            slug,
            description,
        } => {
            let env = ops::create_environment(
                store,
                ops::NewEnvironment {
                    workspace,
                    name,
                    slug,
                    description,
                },
            )?;
            let text = format!("created environment {} (id {})", env.slug, env.id);
            printed(&env, text)
        }
        EnvironmentCommand::SetLockLimit {
            env,
            limit,
            unlimited,
        } => {
            // clap's group makes exactly one of the two present.
            let limit = if unlimited { None } else { limit };
            let env = ops::set_lock_limit(store, env.into(), limit)?;
            let text = format!(
                "environment {} (id {}): lock limit {}",
                env.slug,
                env.id,
                lock_limit_text(env.max_concurrent_locks)
            );
            printed(&env, text)
        }
    }
}

fn lock_limit_text(limit: Option<u32>) -> String {
    limit.map_or_else(|| "unlimited".into(), |n| n.to_string())
}

fn api_key(store: &Store, cmd: ApiKeyCommand) -> Result<Printed, AdminError> {
    match cmd {
        ApiKeyCommand::Create { env, name } => {
            let created = ops::create_api_key(store, env.into(), &name)?;
            let text = format!(
                "created API key {} ({}) for environment {}\nkey (shown once): {}",
                created.meta.id, created.meta.key_prefix, created.meta.environment_id, created.key
            );
            printed(&created, text)
        }
        ApiKeyCommand::List { env } => {
            let keys = ops::list_api_keys(store, &env.into())?;
            let mut text = String::new();
            for k in &keys {
                text.push_str(&format!(
                    "{}  {}  {:?}  created {}  {}\n",
                    k.id,
                    k.key_prefix,
                    k.name,
                    k.created_at,
                    match &k.revoked_at {
                        Some(at) => format!("revoked {at}"),
                        None => "active".into(),
                    }
                ));
            }
            if keys.is_empty() {
                text.push_str("no API keys");
            }
            printed(&keys, text)
        }
        ApiKeyCommand::Revoke { id } => {
            let revoked = ops::revoke_api_key(store, id)?;
            let text = if revoked.already_revoked {
                format!(
                    "API key {} was already revoked at {}",
                    revoked.meta.id,
                    revoked.meta.revoked_at.as_deref().unwrap_or_default()
                )
            } else {
                format!("revoked API key {}", revoked.meta.id)
            };
            printed(&revoked, text)
        }
    }
}
