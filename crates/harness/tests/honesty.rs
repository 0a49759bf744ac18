//! The harness refuses to print a figure for a wrong answer, before or under load, and runs
//! end to end against the Rust workload server. These tests need oha (`make oha`).
#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Json;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Serves `router` on 127.0.0.1 from a background thread; returns the base URL.
fn serve(router: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    format!("http://{addr}")
}

fn harness(args: &[&str], out: &std::path::Path) -> (bool, String) {
    common::outcome(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(args)
            .args(["--duration", "1s", "--warmup", "0s", "--runs", "1", "--out"])
            .arg(out),
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("harness-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_wrong_answer_is_failed_with_its_reason_and_no_number() {
    // 200 and JSON, but the id is off by one.
    let url = serve(axum::Router::new().route(
        "/path/int/{id}",
        get(|Path(id): Path<i64>| async move { Json(serde_json::json!({ "id": id + 1 })) }),
    ));
    let out = tmp("wrong");
    let (ok, text) = harness(&["--url", &url, "--workload", "path-int"], &out);
    assert!(!ok, "{text}");
    assert!(text.contains("FAILED: wrong answer before load"), "{text}");
    assert!(text.contains("expected 42, got 43"), "{text}");
    assert!(!text.contains(" p99 "), "a figure was printed: {text}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn four_xx_under_load_fails_the_run() {
    // Correct for the first request (the check), then 422 for everything else.
    let served = Arc::new(AtomicUsize::new(0));
    let url = serve(axum::Router::new().route(
        "/path/int/{id}",
        get(move |Path(id): Path<i64>| {
            let served = Arc::clone(&served);
            async move {
                if served.fetch_add(1, Ordering::SeqCst) == 0 {
                    (StatusCode::OK, Json(serde_json::json!({ "id": id })))
                } else {
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Json(serde_json::json!({ "detail": "no" })),
                    )
                }
            }
        }),
    ));
    let out = tmp("4xx");
    let (ok, text) = harness(&["--url", &url, "--workload", "path-int"], &out);
    assert!(!ok, "{text}");
    assert!(
        text.contains("FAILED: under load:") && text.contains("HTTP 422"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn end_to_end_against_the_rust_server() {
    let bin_dir = debug_bin_dir();
    let out = tmp("e2e");
    let (ok, text) = harness(
        &[
            "--servers",
            "rust",
            "--workload",
            "path-int,json-small,sse",
            "--bin-dir",
            &bin_dir,
            "--concurrency",
            "8",
        ],
        &out,
    );
    assert!(ok, "{text}");
    let dir = run_dir(&out);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let workloads = results["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 3);
    for w in workloads {
        let server = &w["servers"][0];
        assert_eq!(server["status"], "ok", "{w}");
        assert!(server["median"].as_f64().unwrap() > 0.0);
        assert!(server["server_cpu_pct"].as_f64().is_some());
        // CPU per request is CPU over throughput: a plausible, positive figure.
        let cpu_us = server["server_cpu_us"].as_f64().unwrap();
        assert!(cpu_us > 0.0 && cpu_us < 100_000.0, "{cpu_us}");
    }
    assert!(results["metadata"]["machine"]["oha_version"]
        .as_str()
        .unwrap()
        .starts_with("oha"));
    assert!(dir.join("summary.md").exists() && dir.join("chart.svg").exists());
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("µs CPU") && summary.contains("| CPU µs |"),
        "{summary}"
    );
    assert!(out.join("latest.md").exists());

    // `harness report` re-renders the same summary from results.json, and the chart has
    // the CPU panel.
    let again = report(&dir.join("results.json"), &out.join("again"));
    assert_eq!(
        std::fs::read_to_string(again.join("summary.md")).unwrap(),
        summary
    );
    let chart = std::fs::read_to_string(again.join("chart.svg")).unwrap();
    assert!(chart.contains("Server CPU µs per request"), "{chart}");
    let _ = std::fs::remove_dir_all(out);
}

/// The directory a run wrote under `out`.
fn run_dir(out: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path()
}

/// `harness report FILE --out DIR`, which must succeed; returns DIR.
fn report(file: &std::path::Path, out: &std::path::Path) -> std::path::PathBuf {
    let (ok, text) = common::outcome(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("report")
            .arg(file)
            .arg("--out")
            .arg(out),
    );
    assert!(ok, "{text}");
    out.to_path_buf()
}

fn debug_bin_dir() -> String {
    let bin_dir = format!("{}/../../target/debug", env!("CARGO_MANIFEST_DIR"));
    if !std::path::Path::new(&bin_dir)
        .join("spikard-rust-workloads")
        .exists()
    {
        let status = Command::new("cargo")
            .args(["build", "-q", "-p", "spikard-rust-workloads"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    bin_dir
}

#[test]
fn scale_runs_one_worker_and_refuses_counts_that_leave_oha_no_cpu() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let out = tmp("scale");
    // All the CPUs for the server leaves none for oha: refused before anything starts.
    let all = format!("1,{cpus}");
    let (ok, text) = common::outcome(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(["scale", "--workers", &all, "--out"])
            .arg(&out),
    );
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!(
            "--workers {cpus} would leave the load generator no CPU"
        )),
        "{text}"
    );
    assert!(!out.exists());
    if cpus < 2 {
        return;
    }
    let bin_dir = debug_bin_dir();
    let (ok, text) = harness(
        &[
            "scale",
            "--workers",
            "1",
            "--servers",
            "rust",
            "--workload",
            "path-int",
            "--bin-dir",
            &bin_dir,
            "--concurrency",
            "8",
        ],
        &out,
    );
    assert!(ok, "{text}");
    assert!(text.contains("servers on CPUs 0, load on CPUs 1"), "{text}");
    let dir = run_dir(&out);
    let table = std::fs::read_to_string(dir.join("scale.md")).unwrap();
    assert!(table.contains("| path-int | rust |"), "{table}");
    assert!(table.contains("µs CPU"), "{table}");
    let chart = std::fs::read_to_string(dir.join("scale.svg")).unwrap();
    assert!(chart.contains("path-int: requests/s against server cores"));
    // `harness report` renders scale.md again from scale.json.
    let again = report(&dir.join("scale.json"), &out.join("again"));
    assert_eq!(
        std::fs::read_to_string(again.join("scale.md")).unwrap(),
        table
    );
    let point: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("workers-1/results.json")).unwrap())
            .unwrap();
    assert_eq!(point["metadata"]["server_cpus"], "0");
    assert_eq!(point["workloads"][0]["servers"][0]["status"], "ok");
    let _ = std::fs::remove_dir_all(out);
}
