//! A full disk is a state the server lives through, not a crash (issue #15).
//!
//! redb latches the first failed write: every later operation, reads included, answers
//! "Previous I/O error occurred" until the database is closed and opened again, and the
//! journal used to stop the process. So the store keeps redb from ever meeting ENOSPC:
//!
//! - [`DiskSpace`] watches the free space of the data dir's filesystem (`statvfs`).
//!   Below `store.min_free_bytes` new writes are refused (507) before they reach the
//!   writer, and checkpoints are put off; the writer re-checks on every batch and every
//!   tick, so writes resume within about a second of space coming back. Reads never
//!   write, so they go on.
//! - [`SpaceWaitingFile`], the file backend redb writes through, turns ENOSPC/EDQUOT
//!   (a batch that got past the reserve, another process filling the disk) into a wait:
//!   the write is retried until it fits, so redb never sees the error and never latches.
//!   The write that waits was not answered yet; it is answered once it is on disk.

use std::fs::File;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// How long a write that met a full disk waits before it tries again.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// Free space of the filesystem holding the data dir, and whether writes are refused.
#[derive(Debug)]
pub struct DiskSpace {
    dir: PathBuf,
    reserve: u64,
    full: AtomicBool,
    free: AtomicU64,
}

impl DiskSpace {
    /// Watches the filesystem of `dir`; writes are refused while less than `reserve`
    /// bytes are free (or a write met ENOSPC since the last check).
    pub fn new(dir: &Path, reserve: u64) -> Arc<DiskSpace> {
        let space = Arc::new(DiskSpace {
            dir: dir.to_path_buf(),
            reserve,
            full: AtomicBool::new(false),
            free: AtomicU64::new(u64::MAX),
        });
        space.refresh();
        space
    }

    /// Whether new writes are refused.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Bytes free for unprivileged users at the last check.
    pub fn free_bytes(&self) -> u64 {
        self.free.load(Ordering::Relaxed)
    }

    /// Measures again; returns whether writes are refused. A filesystem that cannot be
    /// measured counts as having room (the backend still waits out a real ENOSPC).
    pub fn refresh(&self) -> bool {
        let Some(free) = free_bytes(&self.dir) else {
            return self.is_full();
        };
        self.free.store(free, Ordering::Relaxed);
        self.set_full(free < self.reserve.max(1));
        self.is_full()
    }

    /// A write met ENOSPC or EDQUOT.
    pub fn mark_full(&self) {
        self.set_full(true);
    }

    fn set_full(&self, full: bool) {
        let was = self.full.swap(full, Ordering::Relaxed);
        let free = self.free_bytes();
        let dir = self.dir.display();
        match (was, full) {
            (false, true) => tracing::error!(
                data_dir = %dir, free, reserve = self.reserve,
                "the disk is full: writes are refused (507) until space is freed; reads go on"
            ),
            (true, false) => {
                tracing::warn!(data_dir = %dir, free, "disk space is back: writes resume")
            }
            _ => {}
        }
    }
}

/// `f_bavail * f_frsize` of the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `st` is written by statvfs before use.
    let rc = unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Whether `e` says the disk (or the user's quota) is full.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Runs `f` until it does not fail with a full disk, marking `space` full meanwhile.
/// Retrying a whole positioned write is safe: it writes the same bytes at the same place.
pub fn wait_for_space<T>(
    space: &DiskSpace,
    what: &str,
    mut f: impl FnMut() -> io::Result<T>,
) -> io::Result<T> {
    let mut waited = 0u32;
    loop {
        match f() {
            Err(e) if is_no_space(&e) => {
                space.mark_full();
                if waited.is_multiple_of(50) {
                    tracing::warn!(error = %e, "{what}: the disk is full; waiting for space");
                }
                waited = waited.wrapping_add(1);
                std::thread::sleep(RETRY_EVERY);
            }
            other => return other,
        }
    }
}

/// redb's file backend, with full-disk errors waited out (see the module comment).
#[derive(Debug)]
pub struct SpaceWaitingFile {
    inner: FileBackend,
    space: Arc<DiskSpace>,
}

impl SpaceWaitingFile {
    pub fn new(file: File, space: Arc<DiskSpace>) -> Result<SpaceWaitingFile, redb::DatabaseError> {
        Ok(SpaceWaitingFile {
            inner: FileBackend::new(file)?,
            space,
        })
    }
}

impl StorageBackend for SpaceWaitingFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        wait_for_space(&self.space, "database file", || self.inner.set_len(len))
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        wait_for_space(&self.space, "database file", || self.inner.sync_data())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        wait_for_space(&self.space, "database file", || {
            self.inner.write(offset, data)
        })
    }

    fn close(&self) -> Result<(), io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
