//! `harness compare` on two results files: absolute medians, and ratios to one server of the
//! same run, which factor out a machine that got faster or slower between the runs.
#![allow(clippy::unwrap_used)]

mod common;

use serde_json::json;
use std::path::PathBuf;
use std::process::Command;

/// Writes a results file with one workload's medians per server; returns its path.
fn results(name: &str, medians: &[(&str, &str, f64)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut workloads: Vec<serde_json::Value> = Vec::new();
    for (workload, server, median) in medians {
        let entry = json!({ "server": server, "status": "ok", "median": median });
        match workloads.iter_mut().find(|w| w["name"] == *workload) {
            Some(w) => w["servers"].as_array_mut().unwrap().push(entry),
            None => workloads.push(json!({ "name": workload, "servers": [entry] })),
        }
    }
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json!({ "workloads": workloads }).to_string()).unwrap();
    path
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
