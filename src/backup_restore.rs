//! `stardag-server backup` and `restore` (D27, D35; docs/operations.md).
//!
//! `backup` asks the running server for a dump through its backup socket
//! (`server/backup_socket.rs`); with no server running it opens the database itself
//! (replaying a crash's journal first, like a start). The dump is checked while it
//! arrives and lands under its final name only when its checksum matched. `restore`
//! writes a dump into a new database file in an empty data dir.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::server::backup_socket::socket_path;
use crate::store::backup::{self, BackupSummary};
use crate::store::{Store, StoreError, StoreOptions};

/// A failed command: the message for the operator.
#[derive(Debug)]
pub struct Failed(pub String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.to_string())
    }
}

/// Where a backup goes: a file (written as `<name>.partial`, renamed when complete) or
/// standard output.
enum Dest {
    File { tmp: PathBuf, to: PathBuf, f: File },
    Stdout(io::Stdout),
}

impl Dest {
    fn open(out: &Path) -> Result<Dest, Failed> {
        if out == Path::new("-") {
            return Ok(Dest::Stdout(io::stdout()));
        }
        let mut tmp = out.as_os_str().to_os_string();
        tmp.push(".partial");
        let tmp = PathBuf::from(tmp);
        // The dump holds password hashes and signing keys: owner only.
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Failed(format!("cannot write {}: {e}", tmp.display())))?;
        Ok(Dest::File {
            tmp,
            to: out.to_path_buf(),
            f,
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Dest::File { f, .. } => f,
            Dest::Stdout(s) => s,
        }
    }

    fn commit(self) -> Result<(), Failed> {
        match self {
            Dest::File { tmp, to, f } => {
                f.sync_all()?;
                fs::rename(&tmp, &to)?;
                Ok(())
            }
            Dest::Stdout(mut s) => Ok(s.flush()?),
        }
    }

    fn abandon(self) {
        if let Dest::File { tmp, .. } = self {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Copies everything read into `out`, so the parser checks exactly the bytes stored.
struct Tee<'a, R: Read> {
    inner: R,
    out: &'a mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// `stardag-server backup --out FILE`.
pub fn backup(config: &Config, out: &Path) -> Result<BackupSummary, Failed> {
    let mut dest = Dest::open(out)?;
    let result = match UnixStream::connect(socket_path(&config.data_dir)) {
        Ok(stream) => from_server(stream, dest.writer()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            offline(config, dest.writer())
        }
        Err(e) => Err(Failed(format!(
            "cannot connect to {}: {e}",
            socket_path(&config.data_dir).display()
        ))),
    };
    match result {
        Ok(summary) => {
            dest.commit()?;
            Ok(summary)
        }
        Err(e) => {
            dest.abandon();
            Err(e)
        }
    }
}

fn from_server(mut stream: UnixStream, out: &mut dyn Write) -> Result<BackupSummary, Failed> {
    stream.write_all(b"backup\n")?;
    let mut reader = BufReader::with_capacity(256 << 10, stream);
    if reader.fill_buf()?.starts_with(b"error:") {
        let mut text = String::new();
        reader.take(4096).read_to_string(&mut text)?;
        return Err(Failed(format!("the server refused: {}", text.trim())));
    }
    Ok(backup::verify(Tee { inner: reader, out })?)
}

/// No server answers: read the database directly (it must exist; a backup never
/// creates one).
fn offline(config: &Config, out: &mut dyn Write) -> Result<BackupSummary, Failed> {
    let path = config.db_path();
    if !path.exists() {
        return Err(Failed(format!(
            "no database at {} (and no server on {})",
            path.display(),
            socket_path(&config.data_dir).display()
        )));
    }
    let store = Store::open(&path, &StoreOptions::from(&config.store)).map_err(|e| match e {
        StoreError::Locked(_) => Failed(format!(
            "the database {} is in use, but no server answers on {}: is the server \
             starting, or is another command running?",
            path.display(),
            socket_path(&config.data_dir).display()
        )),
        other => Failed(other.to_string()),
    })?;
    let result = store.backup_to(out);
    store.shutdown();
    Ok(result?)
}

/// `stardag-server restore --from FILE`: into the configured data dir, which must be
/// empty unless `force` (then its database and journal are replaced; other files stay).
pub fn restore(config: &Config, from: &Path, force: bool) -> Result<BackupSummary, Failed> {
    let dir = &config.data_dir;
    let db_path = config.db_path();
    let entries: Vec<_> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Failed(format!("cannot read {}: {e}", dir.display()))),
    };
    if !entries.is_empty() {
        if !force {
            return Err(Failed(format!(
                "the data directory {} is not empty; restore into an empty directory, or \
                 pass --force to replace its database and journal",
                dir.display()
            )));
        }
        clear_for_restore(&db_path)?;
    }
    crate::config::ensure_data_dir(dir)?;
    let mut tmp = db_path.as_os_str().to_os_string();
    tmp.push(".restoring");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let summary = backup::restore_file(from, &tmp)?;
    fs::rename(&tmp, &db_path)?;
    File::open(dir)?.sync_all()?;
    // Open it once as a start would: the schema check (and a migration of an older
    // backup) happens now, not at the first start.
    let store = Store::open(&db_path, &StoreOptions::from(&config.store))?;
    store.shutdown();
    Ok(summary)
}

/// Removes the database, its journal (whose records belong to the old database and
/// must never be replayed onto the restored one) and a stale backup socket.
fn clear_for_restore(db_path: &Path) -> Result<(), Failed> {
    if db_path.exists() {
        // Damaged or fine, the file is replaced; only a running server stops us.
        if let Err(redb::DatabaseError::DatabaseAlreadyOpen) = redb::Database::open(db_path) {
            return Err(Failed(format!(
                "the database {} is in use: stop the server before restoring",
                db_path.display()
            )));
        }
        fs::remove_file(db_path)?;
    }
    let journal = db_path.with_extension("journal");
    if journal.exists() {
        fs::remove_dir_all(&journal)?;
    }
    if let Some(dir) = db_path.parent() {
        let _ = fs::remove_file(socket_path(dir));
    }
    Ok(())
}
