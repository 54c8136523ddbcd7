//! The process allocator: mimalloc, and handing freed memory back to the OS.
//!
//! Under glibc's malloc the writer thread and the async workers contended for arena
//! locks: every request's data is allocated on a worker and freed on the writer (and
//! its answer the other way round), and a `free` that misses the thread cache takes the
//! owning arena's lock (two thirds of the server's `futex` calls, docs/performance.md).
//! mimalloc frees across threads without a lock: 9 % more registrations per second,
//! 13 % less CPU per request. Built without transparent huge pages (`no_thp`), which
//! otherwise doubled the idle RSS.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns freed memory to the OS now instead of after mimalloc's purge delay, which
/// only runs on later allocator activity. Called after an Argon2id hash: its 19 MiB
/// block would otherwise stay resident on an idle server.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it is safe from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
