//! tracing to stderr (journald captures it), text or JSON, filter from config or RUST_LOG.
//!
//! Lines go to a buffer that a writer thread empties, so a request never waits for
//! stderr: every request logs an access line, and when each was written on the
//! request's thread, a reader that stopped reading (a stalled journald, a full pipe)
//! stopped every request once the pipe's 64 KiB filled
//! (`foundation::a_stalled_log_reader_does_not_stall_requests`). Beyond
//! [`MAX_QUEUED_BYTES`] lines are dropped, and counted in a line of their own once
//! writing resumes.
//!
//! The writer thread is woken only when it sleeps on an empty buffer; after each write
//! it waits [`GATHER`] for more lines. A queue with a wake-up per line (tracing-appender,
//! used before) cost the busy server a thread switch, a few `sched_yield`s and a
//! `write` per request. Fatal errors also go to stderr directly (`store::journal::stop`).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Bytes of lines waiting for the writer thread before new ones are dropped: a few
/// thousand access lines, a fraction of a second at full load.
const MAX_QUEUED_BYTES: usize = 1 << 20;
/// How long the writer thread lets lines gather after writing.
const GATHER: Duration = Duration::from_millis(10);

/// Installs the subscriber. Keep the guard until the process ends: dropping it writes
/// out the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(cfg: &LogConfig) -> LogWriter {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = LogWriter::start(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer.sink())
        .with_ansi(std::io::stderr().is_terminal());
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = match cfg.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    writer
}

#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    dropped: u64,
    /// The writer thread waits for a line (and must be woken for one).
    idle: bool,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding the lock leaves at worst a partial line.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, line: &[u8]) {
        let mut q = self.lock();
        if q.lines.len() + line.len() > MAX_QUEUED_BYTES {
            q.dropped += 1;
            return;
        }
        q.lines.extend_from_slice(line);
        if q.idle {
            q.idle = false;
            self.wake.notify_one();
        }
    }
}

/// The writer thread; dropping it writes out what is queued and stops the thread.
pub struct LogWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Starts the thread that writes queued lines to `out`.
    pub fn start<W: Write + Send + 'static>(out: W) -> LogWriter {
        let shared = Arc::new(Shared::default());
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_lines(&for_thread, out))
            .ok();
        LogWriter { shared, thread }
    }

    /// What the subscriber writes formatted lines to.
    pub fn sink(&self) -> Sink {
        Sink(self.shared.clone())
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn write_lines<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::new();
    loop {
        let (dropped, stop) = {
            let mut q = shared.lock();
            while q.lines.is_empty() && q.dropped == 0 && !q.stop {
                q.idle = true;
                q = shared.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            }
            q.idle = false;
            std::mem::swap(&mut batch, &mut q.lines);
            (std::mem::take(&mut q.dropped), q.stop)
        };
        // Nowhere to report a failed write but stderr itself: the lines are lost.
        let _ = out.write_all(&batch);
        if dropped > 0 {
            let _ = writeln!(
                out,
                "stardag-server: {dropped} log lines dropped: stderr was not read fast enough"
            );
        }
        let _ = out.flush();
        batch.clear();
        if stop {
            return;
        }
        std::thread::sleep(GATHER);
    }
}

/// Hands each formatted line to the writer thread.
#[derive(Clone)]
pub struct Sink(Arc<Shared>);

impl Write for &Sink {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.0.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = &'a Sink;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read; `gate` holds writes up while locked.
    #[derive(Clone, Default)]
    struct Captured {
        bytes: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.bytes.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_are_written_in_order_and_the_rest_on_drop() {
        let out = Captured::default();
        let writer = LogWriter::start(out.clone());
        let mut sink = &writer.sink();
        for i in 0..1000 {
            writeln!(sink, "line {i}").unwrap();
        }
        drop(writer);
        let want: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(out.text(), want);
    }

    #[test]
    fn a_stalled_output_drops_lines_and_says_how_many() {
        let out = Captured::default();
        let stalled = out.gate.lock().unwrap();
        let writer = LogWriter::start(out.clone());
        let sink = writer.sink();
        // The first line may reach the writer thread, which then blocks in `write`.
        (&sink).write_all(b"first\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let line = [b'x'; 1023];
        let lines = MAX_QUEUED_BYTES / 1024 + 100;
        for _ in 0..lines {
            let mut l = line.to_vec();
            l.push(b'\n');
            (&sink).write_all(&l).unwrap();
        }
        drop(stalled);
        drop(writer);
        let text = out.text();
        let kept = text.lines().filter(|l| l.starts_with('x')).count();
        assert!(text.starts_with("first\n"));
        assert!(
            kept >= MAX_QUEUED_BYTES / 1024 - 1 && kept < lines,
            "{kept}"
        );
        let report = format!("stardag-server: {} log lines dropped", lines - kept);
        assert!(text.contains(&report), "{report} missing");
    }
}
