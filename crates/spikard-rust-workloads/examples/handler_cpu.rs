//! The database handlers' own work, as `tools/handler_instructions.py --time` measures the
//! Python handlers': what `db`, `queries`, `updates` and `fortunes` compute besides awaiting
//! the database (drawing ids, the rows' structs, new numbers, the fortunes page from rows like
//! those the `fortune` table holds, their strings copied as the driver's rows are), with no
//! server, runtime or driver. µs per call, the best of five runs after one to warm up; pin it
//! as the harness pins the servers:
//!
//!     cargo build --release -p spikard-rust-workloads --example handler_cpu
//!     taskset -c 0 target/release/examples/handler_cpu [-n 20000]

#![allow(clippy::unwrap_used)]

use spikard_rust_workloads::db;
use std::hint::black_box;
use std::time::Instant;

// The allocator of the workload server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SCHEMA: &str = include_str!("../../../tools/db/schema.sql");

/// The `fortune` table's rows, as the schema inserts them: lines `(ID, 'MESSAGE')`.
fn fortune_rows() -> Vec<(i32, String)> {
    let values = SCHEMA
        .split_once("INSERT INTO fortune (id, message) VALUES")
        .unwrap()
        .1;
    values
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| line.starts_with('('))
        .map(|line| {
            let (id, rest) = line.trim_start_matches('(').split_once(", '").unwrap();
            let message = rest.rsplit_once("')").unwrap().0.replace("''", "'");
            (id.parse().unwrap(), message)
        })
        .collect()
}

/// µs per call of `piece`, the best of five runs of `n` calls.
fn time(n: usize, mut piece: impl FnMut()) -> f64 {
    for _ in 0..n {
        piece();
    }
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                piece();
            }
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = match (args.next().as_deref(), args.next()) {
        (None, _) => 20_000,
        (Some("-n"), Some(n)) => n.parse().expect("-n takes a count"),
        _ => panic!("usage: handler_cpu [-n CALLS]"),
    };
    let fortunes = fortune_rows();
    assert_eq!(fortunes.len(), 12, "the schema's fortunes");
    let numbers: Vec<i32> = db::random_ids(20);
    println!("{:<10} {:>11}", "piece", "µs/call");
    let show = |name: &str, us: f64| println!("{name:<10} {us:>11.3}");
    show(
        "db",
        time(n, || {
            black_box(db::worlds(&db::random_ids(1), [4242].into_iter()));
        }),
    );
    show(
        "queries",
        time(n, || {
            let ids = db::random_ids(db::count(black_box(Some("20"))));
            black_box(db::worlds(&ids, numbers.iter().copied()));
        }),
    );
    show(
        "updates",
        time(n, || {
            let ids = db::distinct_random_ids(db::count(black_box(Some("20"))));
            let mut rows = db::worlds(&ids, numbers.iter().copied());
            black_box(db::renumber(&mut rows));
            black_box(rows);
        }),
    );
    show(
        "fortunes",
        time(n, || {
            black_box(db::fortunes_page(black_box(&fortunes).clone()));
        }),
    );
}
