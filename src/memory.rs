//! The process allocator: mimalloc, and handing freed memory back to the OS.
//!
//! Under glibc's malloc the writer thread and the async workers contended for arena
//! locks: every request's data is allocated on a worker and freed on the writer (and
//! its answer the other way round), and a `free` that misses the thread cache takes the
//! owning arena's lock (two thirds of the server's `futex` calls, docs/performance.md).
//! mimalloc frees across threads without a lock: 4–5 % more registrations per second
//! at 16 clients, about 8 % less server CPU per request. Built without transparent huge
//! pages (`no_thp`), which doubled the idle RSS for no measurable speed.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns freed memory to the OS now instead of after mimalloc's purge delay, which
/// only runs on later allocator activity. Called after an Argon2id hash: its 19 MiB
/// block would otherwise stay resident on an idle server.
pub fn release_free_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it is safe from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}
