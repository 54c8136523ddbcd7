//! The single writer thread with group commit (D25).
//!
//! Handlers send boxed operations over a bounded channel. The thread takes one, drains
//! whatever else is already queued (up to `max_batch`), applies them all in one write
//! transaction, commits once with `Durability::Immediate` (one fsync) and only then
//! answers every waiter. Under concurrency many requests share each fsync.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// Called after the commit with its outcome; delivers the op's answer to its waiter.
type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;
/// An operation: applied inside the shared transaction, yields its completion.
type Op = Box<dyn FnOnce(&WriteTransaction) -> Completion + Send>;

enum Command {
    Op(Op),
    Shutdown,
}

/// How long a handler waits for room in a full queue before answering 503.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Durable commits (fsyncs) made.
    pub commits: u64,
    /// Operations applied in those commits.
    pub ops: u64,
    /// Largest batch seen.
    pub max_batch: u64,
    /// Batches that failed as a whole (I/O error or a panicking op).
    pub failed_batches: u64,
}

impl WriterStats {
    pub fn mean_batch(&self) -> f64 {
        if self.commits == 0 {
            0.0
        } else {
            self.ops as f64 / self.commits as f64
        }
    }
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    ops: AtomicU64,
    max_batch: AtomicU64,
    failed_batches: AtomicU64,
}

#[derive(Clone)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl WriterHandle {
    pub(super) fn start(
        db: Arc<Database>,
        queue: usize,
        max_batch: usize,
    ) -> Result<WriterHandle, StoreError> {
        let (tx, rx) = mpsc::channel(queue);
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(db, rx, max_batch, thread_counters))
            .map_err(|e| StoreError::BatchFailed(format!("cannot start writer thread: {e}")))?;
        Ok(WriterHandle {
            tx,
            counters,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    fn wrap<T, E, F>(op: F) -> (Op, oneshot::Receiver<Result<T, E>>)
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let op: Op = Box::new(move |wtx| {
            let outcome = op(wtx);
            Box::new(move |commit: Result<(), &StoreError>| {
                let answer = match (outcome, commit) {
                    // A refused op wrote nothing: its answer stands whatever the batch did.
                    (Err(e), _) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(E::from(StoreError::BatchFailed(e.to_string()))),
                };
                let _ = reply_tx.send(answer);
            })
        });
        (op, reply_rx)
    }

    pub(super) async fn submit<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (op, reply) = Self::wrap(op);
        match tokio::time::timeout(ENQUEUE_TIMEOUT, self.tx.send(Command::Op(op))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(StoreError::ShuttingDown.into()),
            Err(_) => return Err(StoreError::Busy.into()),
        }
        reply.await.unwrap_or(Err(StoreError::ShuttingDown.into()))
    }

    /// For offline tools only: must not be called from inside the async runtime.
    pub(super) fn submit_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (op, reply) = Self::wrap(op);
        if self.tx.blocking_send(Command::Op(op)).is_err() {
            return Err(StoreError::ShuttingDown.into());
        }
        reply
            .blocking_recv()
            .unwrap_or(Err(StoreError::ShuttingDown.into()))
    }

    pub(super) fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            commits: c.commits.load(Ordering::Relaxed),
            ops: c.ops.load(Ordering::Relaxed),
            max_batch: c.max_batch.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
        }
    }

    pub(super) fn shutdown(&self) {
        let handle = match self.thread.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            // Queued ops ahead of the marker are still committed. A full queue is waited
            // out on a helper thread, so this also works from inside an async context.
            if let Err(mpsc::error::TrySendError::Full(cmd)) = self.tx.try_send(Command::Shutdown) {
                let tx = self.tx.clone();
                let _ = std::thread::spawn(move || tx.blocking_send(cmd)).join();
            }
            let _ = handle.join();
        }
    }
}

fn run(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Command>,
    max_batch: usize,
    counters: Arc<Counters>,
) {
    let mut batch: Vec<Op> = Vec::with_capacity(max_batch);
    let mut stopping = false;
    while !stopping {
        match rx.blocking_recv() {
            Some(Command::Op(op)) => batch.push(op),
            Some(Command::Shutdown) | None => break,
        }
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Command::Op(op)) => batch.push(op),
                Ok(Command::Shutdown) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&db, &mut batch, &counters);
    }
    // Refuse whatever raced in after the shutdown marker.
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        if let Command::Op(op) = cmd {
            batch.push(op);
        }
    }
    commit_batch(&db, &mut batch, &counters);
}

fn commit_batch(db: &Database, batch: &mut Vec<Op>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    let outcome = apply(db, batch, &mut completions);
    if outcome.is_ok() {
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.ops.fetch_add(n, Ordering::Relaxed);
        counters.max_batch.fetch_max(n, Ordering::Relaxed);
    } else {
        counters.failed_batches.fetch_add(1, Ordering::Relaxed);
    }
    if let Err(e) = &outcome {
        tracing::error!(error = %e, ops = n, "write batch failed; every op in it is answered 503");
    }
    for done in completions {
        done(outcome.as_ref().map(|_| ()));
    }
    // Ops never applied (the transaction could not start): dropping them drops their
    // reply senders, and their waiters get an error.
    batch.clear();
}

fn apply(
    db: &Database,
    batch: &mut Vec<Op>,
    completions: &mut Vec<Completion>,
) -> Result<(), StoreError> {
    let mut wtx = db.begin_write()?;
    wtx.set_durability(Durability::Immediate)?;
    for op in batch.drain(..) {
        // A panicking op may have written half of its rows: the whole batch is dropped.
        match catch_unwind(AssertUnwindSafe(|| op(&wtx))) {
            Ok(done) => completions.push(done),
            Err(_) => {
                let _ = wtx.abort();
                return Err(StoreError::BatchFailed("a write operation panicked".into()));
            }
        }
    }
    wtx.commit()?;
    Ok(())
}
