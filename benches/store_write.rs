//! Write-path micro-benchmark: durable commits through the group-commit writer.
//!
//! `cargo bench --bench store_write [-- --ops N]` prints one table: for 1..256
//! concurrent writers, each appending ~200-byte rows, how many rows per second become
//! durable, how many commits (fsyncs) that took, and the mean batch size. A single
//! writer measures the fsync floor; many writers show what group commit buys.

#[path = "support/args.rs"]
mod args;
use args::Args;

use std::sync::Arc;
use std::time::Instant;

use redb::TableDefinition;
use stardag_server::store::{Store, StoreError, StoreOptions};

const EVENTS: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("bench_events");

async fn run(writers: usize, total_ops: usize) -> (f64, u64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        Store::open(
            &dir.path().join("bench.redb"),
            &StoreOptions {
                cache_bytes: 64 << 20,
                write_queue: 4096,
                max_batch: 512,
                ..Default::default()
            },
        )
        .expect("open store"),
    );
    let per_writer = (total_ops / writers).max(1);
    let payload = Arc::new(vec![7u8; 200]);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let payload = payload.clone();
                let key = (w as u128, i as u64);
                let res: Result<(), StoreError> = store
                    .write(move |tx| {
                        tx.open_table(EVENTS)?.insert(key, payload.as_slice())?;
                        Ok(())
                    })
                    .await;
                res.expect("write");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let secs = started.elapsed().as_secs_f64();
    let stats = store.writer_stats();
    store.shutdown();
    let ops = (per_writer * writers) as f64;
    (ops / secs, stats.commits, stats.mean_batch())
}

const USAGE: &str = "\
usage: cargo bench --bench store_write [-- --ops N]

  --ops N    rows written per run (20000)";

fn main() {
    let args = Args::parse(USAGE, &["--ops"], &[]);
    let total = args.arg("--ops", 20_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("durable writes through the group-commit writer ({total} rows per run)\n");
    println!(
        "{:>8} {:>14} {:>10} {:>14} {:>12}",
        "writers", "rows/s", "commits", "commits/s", "mean batch"
    );
    for writers in [1usize, 4, 16, 64, 256] {
        // A lone writer pays one fsync per row: keep that run short.
        let ops = if writers == 1 {
            total.min(2_000)
        } else {
            total
        };
        let started = Instant::now();
        let (rate, commits, mean) = runtime.block_on(run(writers, ops));
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{:>8} {:>14.0} {:>10} {:>14.0} {:>12.1}",
            writers,
            rate,
            commits,
            commits as f64 / secs,
            mean
        );
    }
}
