//! The single writer thread with group commit (D25).
//!
//! Handlers send boxed operations over a bounded channel. The thread takes one, opens a
//! write transaction, and applies it and whatever else is queued until the queue is
//! empty (up to `max_batch`), including ops that arrive meanwhile. A batch of journaled
//! writes (`redo.rs`) hands its records to the journal thread, commits without sync,
//! then hands over the answers, which that thread sends once the records are synced
//! (`journal.rs`); meanwhile this thread applies the next batch. Any other write, and a
//! checkpoint every `checkpoint_interval`, commits with `Durability::Immediate` and is
//! answered after that fsync. Under concurrency many requests share each sync.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot};

use super::change_log::{self, ChangeLog};
use super::disk::DiskSpace;
use super::journal::{self, Answer, Record, ToJournal};
use super::tables::Tables;
use super::StoreError;

/// What applying an op leaves: its answer, and for a journaled write that changed
/// something, the record (kind, payload) that makes it durable.
struct Applied {
    answer: Answer,
    record: Option<(u8, Vec<u8>)>,
}
/// An operation: applied inside the shared transaction, through the batch's tables.
type Op = Box<dyn FnOnce(&Tables) -> Applied + Send>;
/// Where a batch being applied gets more ops: the next queued op and whether it is
/// journaled, or `None` when there is none.
type More<'a> = &'a mut dyn FnMut() -> Option<(Op, bool)>;

enum Command {
    Op {
        op: Op,
        journaled: bool,
    },
    /// Wakes an idle writer so that a due checkpoint is not put off until the next write.
    Tick,
    Shutdown,
}

/// How long a handler waits for room in a full queue before answering 503.
const ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Journal bytes after which a checkpoint is due whatever the interval.
const CHECKPOINT_BYTES: usize = 64 << 20;

/// Counters for tests, benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Write transactions committed (one per batch), durable or journaled.
    pub commits: u64,
    /// Of those, durable commits (each an fsync of the database file): checkpoints and
    /// batches holding a write that is not journaled.
    pub durable_commits: u64,
    /// Journal appends, each one fdatasync.
    pub journal_syncs: u64,
    /// Operations applied in those commits.
    pub ops: u64,
    /// Largest batch seen.
    pub max_batch: u64,
    /// Batches that failed as a whole (I/O error or a panicking op).
    pub failed_batches: u64,
    /// Commits by operations in them: `batch_buckets[i]` counts those with at most
    /// [`BATCH_BOUNDS`]`[i]` (and more than the bound before), the last one the rest.
    pub batch_buckets: [u64; BATCH_BOUNDS.len() + 1],
}

/// Upper bounds of the batch-size buckets (operations per commit).
pub const BATCH_BOUNDS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

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
    durable_commits: AtomicU64,
    journal_syncs: AtomicU64,
    ops: AtomicU64,
    max_batch: AtomicU64,
    failed_batches: AtomicU64,
    batch_buckets: [AtomicU64; BATCH_BOUNDS.len() + 1],
}

/// Where and how often the writer journals and checkpoints.
pub(super) struct WriterConfig {
    pub queue: usize,
    pub max_batch: usize,
    pub journal_dir: PathBuf,
    /// The last LSN applied (after recovery); the writer numbers on from it.
    pub last_lsn: u64,
    pub checkpoint_interval: Duration,
    /// Writes are refused while it says the disk is full (`disk.rs`).
    pub space: Arc<DiskSpace>,
    /// Where each committed batch's changes to builds go (`change_log.rs`).
    pub log: Arc<ChangeLog>,
}

#[derive(Clone)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Command>,
    space: Arc<DiskSpace>,
    counters: Arc<Counters>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl WriterHandle {
    pub(super) fn start(db: Arc<Database>, cfg: WriterConfig) -> Result<WriterHandle, StoreError> {
        let (tx, rx) = mpsc::channel(cfg.queue);
        let counters = Arc::new(Counters::default());
        let thread_counters = counters.clone();
        let space = cfg.space.clone();
        let spawn_error =
            |e: std::io::Error| StoreError::BatchFailed(format!("cannot start writer thread: {e}"));
        start_ticker(tx.downgrade(), cfg.checkpoint_interval).map_err(spawn_error)?;
        let thread = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run(db, rx, cfg, thread_counters))
            .map_err(spawn_error)?;
        Ok(WriterHandle {
            tx,
            space,
            counters,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Boxes `op` with its reply channel. `journal` encodes the record of a journaled
    /// write; it is only called when the op succeeded (a refused op wrote nothing).
    fn wrap<T, E, F>(op: F, journal: Option<(u8, Vec<u8>)>) -> (Op, oneshot::Receiver<Result<T, E>>)
    where
        F: FnOnce(&Tables) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let op: Op = Box::new(move |wtx| {
            let outcome = op(wtx);
            let record = journal.filter(|_| outcome.is_ok());
            let answer: Answer = Box::new(move |commit: Result<(), &StoreError>| {
                let answer = match (outcome, commit) {
                    // A refused op wrote nothing: its answer stands whatever the batch did.
                    (Err(e), _) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(e)) => Err(E::from(StoreError::BatchFailed(e.to_string()))),
                };
                let _ = reply_tx.send(answer);
            });
            Applied { answer, record }
        });
        (op, reply_rx)
    }

    /// Queues `op`; `journal` is `Some((kind, payload))` for a journaled write.
    pub(super) async fn submit<T, E, F>(
        &self,
        op: F,
        journal: Option<(u8, Vec<u8>)>,
    ) -> Result<T, E>
    where
        F: FnOnce(&Tables) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        // A full disk refuses before queueing: the writer re-measures on every batch and
        // tick, so the refusals stop within about a second of space coming back.
        if self.space.is_full() {
            return Err(StoreError::DiskFull.into());
        }
        let journaled = journal.is_some();
        let (op, reply) = Self::wrap(op, journal);
        let cmd = Command::Op { op, journaled };
        match tokio::time::timeout(ENQUEUE_TIMEOUT, self.tx.send(cmd)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(StoreError::ShuttingDown.into()),
            Err(_) => return Err(StoreError::Busy.into()),
        }
        reply.await.unwrap_or(Err(StoreError::ShuttingDown.into()))
    }

    /// For offline tools only: must not be called from inside the async runtime.
    pub(super) fn submit_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce(&Tables) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        if self.space.is_full() {
            return Err(StoreError::DiskFull.into());
        }
        let (op, reply) = Self::wrap(op, None);
        let cmd = Command::Op {
            op,
            journaled: false,
        };
        if self.tx.blocking_send(cmd).is_err() {
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
            durable_commits: c.durable_commits.load(Ordering::Relaxed),
            journal_syncs: c.journal_syncs.load(Ordering::Relaxed),
            ops: c.ops.load(Ordering::Relaxed),
            max_batch: c.max_batch.load(Ordering::Relaxed),
            failed_batches: c.failed_batches.load(Ordering::Relaxed),
            batch_buckets: std::array::from_fn(|i| c.batch_buckets[i].load(Ordering::Relaxed)),
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

/// Sends a [`Command::Tick`] a few times per checkpoint interval. Holds only a weak
/// sender, so dropping every [`WriterHandle`] still stops the writer.
fn start_ticker(tx: mpsc::WeakSender<Command>, every: Duration) -> std::io::Result<()> {
    let period = (every / 2).max(Duration::from_millis(10));
    std::thread::Builder::new()
        .name("store-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(period);
            let Some(tx) = tx.upgrade() else { break };
            // A full queue means the writer is busy and will check on its own.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(Command::Tick) {
                break;
            }
        })
        .map(|_| ())
}

/// The writer's state between batches.
struct Writer {
    db: Arc<Database>,
    counters: Arc<Counters>,
    journal: Option<std::sync::mpsc::Sender<ToJournal>>,
    next_lsn: u64,
    /// Journal bytes of commits not yet covered by a durable one (0: nothing to
    /// checkpoint).
    journal_bytes: usize,
    last_checkpoint: Instant,
    checkpoint_interval: Duration,
    space: Arc<DiskSpace>,
    log: Arc<ChangeLog>,
}

fn run(
    db: Arc<Database>,
    mut rx: mpsc::Receiver<Command>,
    cfg: WriterConfig,
    counters: Arc<Counters>,
) {
    let (journal_tx, journal_rx) = std::sync::mpsc::channel();
    let journal_counters = counters.clone();
    let dir = cfg.journal_dir.clone();
    let journal_space = cfg.space.clone();
    let journal_thread = std::thread::Builder::new()
        .name("store-journal".into())
        .spawn(move || {
            journal::run(
                dir,
                journal_rx,
                &journal_counters.journal_syncs,
                &journal_space,
            )
        });
    let journal_thread = match journal_thread {
        Ok(t) => Some(t),
        Err(e) => {
            // Without a journal every batch is committed durably: slower, still correct.
            tracing::error!(error = %e, "cannot start the journal thread; every write syncs the database");
            None
        }
    };
    let mut w = Writer {
        db,
        counters,
        journal: journal_thread.as_ref().map(|_| journal_tx),
        next_lsn: cfg.last_lsn + 1,
        journal_bytes: 0,
        last_checkpoint: Instant::now(),
        checkpoint_interval: cfg.checkpoint_interval,
        space: cfg.space.clone(),
        log: cfg.log.clone(),
    };
    let max_batch = cfg.max_batch;
    let mut batch: Vec<Op> = Vec::with_capacity(max_batch);
    let mut must_sync = false;
    let mut stopping = false;
    while !stopping {
        match rx.blocking_recv() {
            Some(Command::Op { op, journaled }) => {
                must_sync |= !journaled;
                batch.push(op);
            }
            Some(Command::Tick) => {}
            Some(Command::Shutdown) | None => break,
        }
        w.space.refresh();
        let due = w.checkpoint_due();
        if !batch.is_empty() || due {
            // Ops that arrive while the batch is being applied join it: a commit costs
            // about as much as two registrations, so the fewer the better.
            let mut more = || loop {
                match rx.try_recv() {
                    Ok(Command::Op { op, journaled }) => return Some((op, journaled)),
                    Ok(Command::Tick) => {}
                    Ok(Command::Shutdown) => {
                        stopping = true;
                        return None;
                    }
                    Err(_) => return None,
                }
            };
            w.commit_batch(&mut batch, must_sync || due, max_batch, &mut more);
        }
        must_sync = false;
    }
    // Refuse whatever raced in after the shutdown marker.
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        if let Command::Op { op, .. } = cmd {
            batch.push(op);
        }
    }
    // The last commit is durable: a clean stop leaves nothing to replay. On a full disk
    // it could wait for space forever: then the journal stays, and the next start
    // replays it.
    if w.space.refresh() {
        tracing::warn!("the disk is full: no final checkpoint; the next start replays the journal");
        batch.clear();
    } else {
        w.commit_batch(&mut batch, true, usize::MAX, &mut || None);
    }
    drop(w.journal.take());
    if let Some(t) = journal_thread {
        let _ = t.join();
    }
}

impl Writer {
    /// Journaled commits wait for a checkpoint.
    fn dirty(&self) -> bool {
        self.journal_bytes > 0
    }

    /// Put off while the disk is full: a checkpoint writes pages, and the journal keeps
    /// everything durable meanwhile.
    fn checkpoint_due(&self) -> bool {
        !self.space.is_full()
            && self.dirty()
            && (self.last_checkpoint.elapsed() >= self.checkpoint_interval
                || self.journal_bytes >= CHECKPOINT_BYTES)
    }

    /// Applies `batch`, then ops from `more` while there is room (up to `max_batch` in
    /// all), and commits; `durable` makes it a checkpoint. An empty durable batch is a
    /// bare checkpoint.
    fn commit_batch(&mut self, batch: &mut Vec<Op>, durable: bool, max_batch: usize, more: More) {
        let durable = durable || self.journal.is_none();
        if batch.is_empty() && !(durable && self.dirty()) {
            return;
        }
        let mut answers: Vec<Answer> = Vec::with_capacity(batch.len());
        let first_lsn = self.next_lsn;
        let checkpoint = self.dirty();
        let started = Instant::now();
        let outcome = self.apply(batch, durable, max_batch, more, &mut answers);
        if let (Ok((Commit::Durable, _)), true) = (&outcome, checkpoint) {
            // Every write waits for a checkpoint: its length is the writes' worst case.
            let us = started.elapsed().as_micros() as u64;
            tracing::debug!(us, ops = answers.len(), "checkpoint");
        }
        // Ops never applied (the transaction could not start): dropping them drops their
        // reply senders, and their waiters get an error.
        batch.clear();
        let n = answers.len() as u64;
        let c = &self.counters;
        match outcome {
            Ok((commit, logged)) => {
                // Published after the commit: a reader that sees the new counters
                // before this finds the log short of them and recomputes in full.
                self.log.publish(logged);
                c.commits.fetch_add(1, Ordering::Relaxed);
                c.ops.fetch_add(n, Ordering::Relaxed);
                c.max_batch.fetch_max(n, Ordering::Relaxed);
                let bucket = BATCH_BOUNDS
                    .iter()
                    .position(|&le| n <= le)
                    .unwrap_or(BATCH_BOUNDS.len());
                c.batch_buckets[bucket].fetch_add(1, Ordering::Relaxed);
                self.answer(commit, answers);
            }
            Err(e) => {
                self.next_lsn = first_lsn;
                c.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, ops = n, "write batch failed; every op in it is answered 503");
                answer_all(answers, Err(&e));
            }
        }
    }

    /// Sends the answers of a committed batch on their way.
    fn answer(&mut self, commit: Commit, answers: Vec<Answer>) {
        match commit {
            Commit::Durable => {
                self.counters
                    .durable_commits
                    .fetch_add(1, Ordering::Relaxed);
                self.journal_bytes = 0;
                self.last_checkpoint = Instant::now();
                let _ = self.send(ToJournal::Checkpointed);
                answer_all(answers, Ok(()));
            }
            Commit::Unlogged => answer_all(answers, Ok(())),
            Commit::Journaled => {
                if let Some(ToJournal::Answers(answers)) = self.send(ToJournal::Answers(answers)) {
                    // The journal thread is gone, perhaps before syncing these records:
                    // they are durable only once the database is.
                    let mut none = Vec::new();
                    self.commit_batch(&mut none, true, 0, &mut || None);
                    let synced = if self.dirty() {
                        Err(StoreError::BatchFailed(
                            "cannot make the write durable".into(),
                        ))
                    } else {
                        Ok(())
                    };
                    answer_all(answers, synced.as_ref().map(|_| ()));
                }
            }
        }
    }

    /// Hands `msg` to the journal thread; gives it back if that thread is gone (it stops
    /// the process on I/O errors, so only a panic ends it), after which every batch
    /// commits durably.
    fn send(&mut self, msg: ToJournal) -> Option<ToJournal> {
        let journal = self.journal.as_ref()?;
        let std::sync::mpsc::SendError(msg) = journal.send(msg).err()?;
        tracing::error!("the journal thread stopped; every write now syncs the database");
        self.journal = None;
        Some(msg)
    }

    /// Applies `batch`, then ops from `more` up to `max_batch` in all, and commits. The
    /// records of journaled ops go to the journal just before the commit, so that their
    /// sync and the commit overlap; an unjournaled op makes the commit durable.
    fn apply(
        &mut self,
        batch: &mut Vec<Op>,
        mut durable: bool,
        max_batch: usize,
        more: More,
        answers: &mut Vec<Answer>,
    ) -> Result<(Commit, Vec<change_log::Entry>), StoreError> {
        let mut wtx = self.db.begin_write()?;
        let mut records: Vec<Record> = Vec::new();
        let logged = {
            // Every table the batch opened closes here, before the commit.
            let tables = Tables::new(&wtx);
            for op in batch.drain(..) {
                self.apply_op(&tables, op, answers, &mut records)?;
            }
            while answers.len() < max_batch {
                let Some((op, journaled)) = more() else { break };
                durable |= !journaled;
                self.apply_op(&tables, op, answers, &mut records)?;
            }
            if !records.is_empty() || durable {
                journal::set_applied(&tables, self.next_lsn - 1)?;
            }
            // The counters the batch kept in memory go to their tables.
            tables.finish()?;
            tables.take_logged()
        };
        let commit = if durable {
            wtx.set_durability(Durability::Immediate)?;
            Commit::Durable
        } else if records.is_empty() {
            wtx.set_durability(Durability::None)?;
            Commit::Unlogged
        } else {
            wtx.set_durability(Durability::None)?;
            let bytes = records.iter().map(|r| r.payload.len() + 17).sum::<usize>();
            match self.send(ToJournal::Records(records)) {
                None => {
                    self.journal_bytes += bytes;
                    Commit::Journaled
                }
                // No journal any more: this commit must be durable itself.
                Some(_) => {
                    wtx.set_durability(Durability::Immediate)?;
                    Commit::Durable
                }
            }
        };
        if let Err(e) = wtx.commit() {
            if let Commit::Journaled = commit {
                // The journal may already hold records of writes the database refused:
                // like a failed fsync, stop, and let the next start replay what is logged.
                journal::stop(&format!("a journaled commit failed: {e}"));
            }
            return Err(e.into());
        }
        Ok((commit, logged))
    }

    /// Applies one op and keeps its answer and journal record. A panicking op may have
    /// written half of its rows: the error drops (aborts) the whole transaction.
    fn apply_op(
        &mut self,
        tables: &Tables,
        op: Op,
        answers: &mut Vec<Answer>,
        records: &mut Vec<Record>,
    ) -> Result<(), StoreError> {
        let applied = catch_unwind(AssertUnwindSafe(|| op(tables)))
            .map_err(|_| StoreError::BatchFailed("a write operation panicked".into()))?;
        answers.push(applied.answer);
        if let Some((kind, payload)) = applied.record {
            records.push(Record {
                lsn: self.next_lsn,
                kind,
                payload,
            });
            self.next_lsn += 1;
        }
        Ok(())
    }
}

/// How a batch was committed, which decides who answers it.
enum Commit {
    /// Synced with the database file (a checkpoint): answered at once.
    Durable,
    /// Nothing to journal (every op was refused or wrote nothing): answered at once.
    Unlogged,
    /// Records sent to the journal: answered by the journal thread once synced.
    Journaled,
}

fn answer_all(answers: Vec<Answer>, outcome: Result<(), &StoreError>) {
    for answer in answers {
        answer(outcome);
    }
}
