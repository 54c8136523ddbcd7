//! The `stardag-server` command line (D1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use stardag_server::config::{self, Config, FlagOverrides, Sources};

#[derive(Parser)]
#[command(
    name = "stardag-server",
    version,
    about = "Self-hosted Stardag registry server"
)]
struct Cli {
    /// TOML config file (else $STARDAG_SERVER_CONFIG, else /etc/stardag-server/config.toml if present).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8000 (config key `listen`).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
    /// Data directory holding the database (config key `data_dir`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the effective configuration, secrets masked, with each value's source.
    CheckConfig,
    /// Administer users, workspaces, environments, API keys and signing keys
    /// (works on the data dir directly; stop the server first).
    Admin(stardag_server::admin::AdminArgs),
    /// Write a consistent backup of the database (works while the server runs: it
    /// streams a snapshot through <data_dir>/backup.sock; writes go on meanwhile).
    Backup {
        /// The backup file ("-" for standard output). Written as FILE.partial and
        /// renamed once its checksum is verified.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a backup into the data dir (which must be empty unless --force).
    Restore {
        /// A file written by `stardag-server backup`.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Replace the database and journal of a non-empty data dir (server stopped).
        #[arg(long)]
        force: bool,
    },
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A panic (redb meets a damaged page) is one log line, never a trace on stderr.
    stardag_server::panics::install_hook();
    let sources = Sources {
        config_file: cli.config.clone(),
        flags: FlagOverrides {
            listen: cli.listen.clone(),
            data_dir: cli.data_dir.clone(),
        },
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(&sources),
        Command::CheckConfig => {
            print_ignored_env_vars();
            check_config(&sources)
        }
        Command::Admin(args) => {
            print_ignored_env_vars();
            stardag_server::admin::main(&sources, args)
        }
        Command::Backup { out } => backup(&sources, &out),
        Command::Restore { from, force } => restore(&sources, &from, force),
        Command::Version => {
            println!("stardag-server {}", stardag_server::VERSION);
            ExitCode::SUCCESS
        }
    }
}

fn ignored_env_warning(var: &str) -> String {
    format!("ignoring {var}: not a configuration key")
}

fn print_ignored_env_vars() {
    for var in config::ignored_env_vars() {
        eprintln!("stardag-server: warning: {}", ignored_env_warning(&var));
    }
}

fn load(sources: &Sources) -> Result<Config, ExitCode> {
    Config::load(sources).map_err(|e| {
        eprintln!("stardag-server: {e}");
        ExitCode::from(2)
    })
}

fn check_config(sources: &Sources) -> ExitCode {
    match config::describe(sources) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stardag-server: {e}");
            ExitCode::from(2)
        }
    }
}

fn backup(sources: &Sources, out: &std::path::Path) -> ExitCode {
    let config = match load(sources) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match stardag_server::backup_restore::backup(&config, out) {
        Ok(s) => {
            let line = format!(
                "backup: wrote {}: {} tables, {} rows, {} bytes, schema version {}, journal LSN {}, sha256 {}",
                out.display(),
                s.tables,
                s.rows,
                s.bytes,
                s.header.schema_version,
                s.header.journal_lsn,
                s.sha256
            );
            // With --out -, standard output is the backup itself.
            if out == std::path::Path::new("-") {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stardag-server: backup failed: {}", e.0);
            ExitCode::FAILURE
        }
    }
}

fn restore(sources: &Sources, from: &std::path::Path, force: bool) -> ExitCode {
    let config = match load(sources) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match stardag_server::backup_restore::restore(&config, from, force) {
        Ok(s) => {
            println!(
                "restore: {} into {}: {} tables, {} rows, backup of {} (schema version {}, journal LSN {}), sha256 {} verified",
                from.display(),
                config.data_dir.display(),
                s.tables,
                s.rows,
                s.header.created_at,
                s.header.schema_version,
                s.header.journal_lsn,
                s.sha256
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("stardag-server: restore failed: {}", e.0);
            ExitCode::FAILURE
        }
    }
}

fn serve(sources: &Sources) -> ExitCode {
    let config = match load(sources) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _log_writer = stardag_server::logging::init(&config.log);
    for var in config::ignored_env_vars() {
        tracing::warn!(variable = %var, "{}", ignored_env_warning(&var));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("stardag-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let addr = match config.listen_addr() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("stardag-server: {e}");
                return ExitCode::from(2);
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("stardag-server: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let config = Arc::new(config);
        let shutdown = async {
            stop_signal().await;
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        };
        let scheme = if config.tls.cert.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!(data_dir = %config.data_dir.display(), "listening on {scheme}://{local}");
        match stardag_server::server::run(config, listener, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("stardag-server: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// SIGTERM or SIGINT. The streams are created once, before waiting.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
