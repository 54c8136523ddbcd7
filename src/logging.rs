//! tracing to stderr (journald captures it), text or JSON, filter from config or RUST_LOG.
//!
//! Lines are handed to a writer thread (`tracing-appender`), so a request never waits
//! for stderr: every request logs an access line, and when each was written on the
//! request's thread, a reader that stopped reading (a stalled journald, a full pipe)
//! stopped every request once the pipe's 64 KiB filled
//! (`foundation::a_stalled_log_reader_does_not_stall_requests`). If the writer thread
//! falls [`QUEUED_LINES`] behind, further lines are dropped rather than waited for. Fatal
//! errors also go to stderr directly (`store::journal::stop`).

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Lines waiting for the writer thread before new ones are dropped: about half a second
/// of access lines at full load. The queue is allocated up front (tracing-appender's
/// default of 128 000 lines added 4-5 MiB to the idle RSS).
const QUEUED_LINES: usize = 8192;

/// Installs the subscriber. Keep the guard until the process ends: dropping it writes
/// out the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(cfg: &LogConfig) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}
