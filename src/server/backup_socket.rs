//! The backup socket: `<data_dir>/backup.sock`, a Unix socket through which
//! `stardag-server backup` asks the running server for a dump (the database file is
//! locked by the server, so the command cannot read it itself).
//!
//! Why a socket and not an HTTP route: it needs no token and no TLS client, and who may
//! back up is decided by file permissions — the socket is mode 0600, so only the
//! server's user (and root) can connect. Automation runs `stardag-server backup` on the
//! host (a systemd timer; docs/operations.md). Protocol: the client sends the line
//! `backup`; the server streams the dump (`store/backup.rs`) and closes. On an error
//! before the first byte it sends `error: <message>`; a dump cut off later fails the
//! client's checksum check.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use crate::store::BackupSource;

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("backup.sock")
}

/// The listening socket and its accept task; dropping it removes both.
pub struct BackupSocket {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for BackupSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Starts listening. Only one server can have the data dir (the database is locked), so
/// a socket file already there is a leftover of a process that died: it is replaced.
pub fn listen(data_dir: &Path, source: BackupSource) -> std::io::Result<BackupSocket> {
    let path = socket_path(data_dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "backup socket: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let source = source.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = serve_one(stream, &source) {
                    tracing::warn!(error = %e, "backup socket: backup failed");
                }
            });
        }
    });
    Ok(BackupSocket { path, task })
}

fn serve_one(stream: tokio::net::UnixStream, source: &BackupSource) -> Result<(), String> {
    let stream = stream.into_std().map_err(|e| e.to_string())?;
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new((&stream).take(256))
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let mut out = &stream;
    if line.trim_end() != "backup" {
        let _ = writeln!(out, "error: unknown command (send `backup`)");
        return Ok(());
    }
    let started = std::time::Instant::now();
    match source.backup_to(&stream) {
        Ok(s) => {
            tracing::info!(
                tables = s.tables,
                rows = s.rows,
                bytes = s.bytes,
                journal_lsn = s.header.journal_lsn,
                sha256 = %s.sha256,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "backup streamed"
            );
            Ok(())
        }
        Err(e) => {
            // Before the first byte this reaches the client as text; later, the cut-off
            // dump fails its checksum there.
            let _ = writeln!(out, "error: {e}");
            Err(e.to_string())
        }
    }
}
