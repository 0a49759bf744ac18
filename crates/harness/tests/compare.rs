//! `harness compare` on two results files: absolute medians, and ratios to one server of the
//! same run, which factor out a machine that got faster or slower between the runs.
#![allow(clippy::unwrap_used)]

mod common;

use harness::runner::{Outcome, Results, ServerResult, WorkloadResult};
use std::path::PathBuf;
use std::process::Command;

/// Writes a results file with one workload's medians (and CPU µs per request) per server,
/// as `harness run` would; returns its path.
fn results_with_cpu(name: &str, figures: &[(&str, &str, f64, Option<f64>)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut workloads: Vec<WorkloadResult> = Vec::new();
    for (workload, server, median, cpu_us) in figures {
        let entry = ServerResult {
            server: (*server).to_owned(),
            outcome: Outcome::Ok {
                unit: "requests/s".into(),
                median: *median,
                min: *median,
                max: *median,
                p50_ms: None,
                p90_ms: None,
                p99_ms: None,
                p999_ms: None,
                server_cpu_pct: None,
                server_cpu_us: *cpu_us,
                server_peak_rss_mib: None,
                load_cpu_pct: 0.0,
                load_bound: false,
            },
            runs: Vec::new(),
        };
        match workloads.iter_mut().find(|w| w.name == *workload) {
            Some(w) => w.servers.push(entry),
            None => workloads.push(WorkloadResult {
                name: (*workload).to_owned(),
                category: "test".into(),
                servers: vec![entry],
            }),
        }
    }
    let results = Results {
        metadata: common::metadata(),
        workloads,
    };
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string(&results).unwrap()).unwrap();
    path
}

fn results(name: &str, medians: &[(&str, &str, f64)]) -> PathBuf {
    let figures: Vec<_> = medians.iter().map(|&(w, s, m)| (w, s, m, None)).collect();
    results_with_cpu(name, &figures)
}

fn compare(before: &PathBuf, after: &PathBuf, extra: &[&str]) -> (bool, String) {
    common::outcome(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("compare")
            .arg(before)
            .arg(after)
            .args(extra),
    )
}

#[test]
fn a_slower_machine_is_an_absolute_regression_but_not_a_relative_one() {
    let before = results(
        "slower-before",
        &[
            ("path-int", "rust", 61_000.0),
            ("path-int", "python", 48_800.0),
            ("query-few", "rust", 52_000.0),
            ("query-few", "python", 57_200.0),
        ],
    );
    // Every figure 30% lower: the machine, not the code.
    let after = results(
        "slower-after",
        &[
            ("path-int", "rust", 42_700.0),
            ("path-int", "python", 34_160.0),
            ("query-few", "rust", 36_400.0),
            ("query-few", "python", 40_040.0),
        ],
    );
    let (ok, text) = compare(&before, &after, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("4 regression(s) past 10%"), "{text}");
    assert!(
        text.contains("0 of 4 medians within ±10%; median change -30.0%"),
        "{text}"
    );

    let (ok, text) = compare(&before, &after, &["--relative-to", "rust"]);
    assert!(ok, "{text}");
    assert!(text.contains("python / rust"), "{text}");
    assert!(text.contains("0.800") && text.contains("1.100"), "{text}");
    assert!(text.contains("2 of 2 ratios within ±10%"), "{text}");
    assert!(!text.contains("REGRESSION"), "{text}");
}

#[test]
fn python_falling_behind_rust_is_a_relative_regression() {
    let before = results(
        "behind-before",
        &[
            ("json-small", "rust", 60_000.0),
            ("json-small", "python", 63_000.0),
            ("json-small", "fastapi", 9_000.0),
        ],
    );
    // Rust a little faster, Python 25% slower: the ratio falls from 1.050 to 0.750.
    let after = results(
        "behind-after",
        &[
            ("json-small", "rust", 63_000.0),
            ("json-small", "python", 47_250.0),
            ("json-small", "fastapi", 9_450.0),
        ],
    );
    let (ok, text) = compare(&before, &after, &["--relative-to", "rust"]);
    assert!(!ok, "{text}");
    assert!(text.contains("1.050") && text.contains("0.750"), "{text}");
    assert!(text.contains("-28.6%"), "{text}");
    assert!(text.contains("1 regression(s) past 10%"), "{text}");
    assert!(text.contains("1 of 2 ratios within ±10%"), "{text}");

    // A wider threshold takes it as noise.
    let (ok, text) = compare(
        &before,
        &after,
        &["--relative-to", "rust", "--threshold", "0.3"],
    );
    assert!(ok, "{text}");
    assert!(text.contains("2 of 2 ratios within ±30%"), "{text}");
}

#[test]
fn a_missing_reference_server_is_an_error() {
    let before = results("missing-before", &[("sse", "python", 130_000.0)]);
    let after = results("missing-after", &[("sse", "python", 131_000.0)]);
    let (ok, text) = compare(&before, &after, &["--relative-to", "bare"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("no figures of server \"bare\" to compare against"),
        "{text}"
    );
}

#[test]
fn cpu_per_request_regresses_when_it_rises() {
    let before = results_with_cpu(
        "cpu-before",
        &[
            ("json-large", "rust", 9_000.0, Some(68.0)),
            ("path-int", "rust", 70_000.0, Some(6.1)),
        ],
    );
    // json-large costs 20% more CPU per request; path-int 20% less.
    let after = results_with_cpu(
        "cpu-after",
        &[
            ("json-large", "rust", 9_000.0, Some(81.6)),
            ("path-int", "rust", 70_000.0, Some(4.88)),
        ],
    );
    let (ok, text) = compare(&before, &after, &["--figure", "cpu"]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("68.0 µs") && text.contains("81.6 µs"),
        "{text}"
    );
    assert!(text.contains("1 regression(s) past 10%"), "{text}");
    // The same throughput: no regression in requests/s.
    let (ok, text) = compare(&before, &after, &[]);
    assert!(ok, "{text}");
}

#[test]
fn a_file_that_is_not_a_results_file_is_refused() {
    let dir = std::env::temp_dir().join(format!("harness-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bogus = dir.join("bogus.json");
    std::fs::write(&bogus, r#"{"workloads": 3}"#).unwrap();
    let (ok, text) = compare(&bogus, &bogus, &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("is not a results file"), "{text}");
}
