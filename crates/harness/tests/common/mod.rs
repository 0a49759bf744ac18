//! Helpers shared by the harness's integration tests.

use std::process::Command;

/// Runs `command`; returns whether it succeeded and its stdout followed by its stderr.
pub fn outcome(command: &mut Command) -> (bool, String) {
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The metadata of a results file made up by a test.
#[allow(dead_code)]
pub fn metadata() -> harness::runner::Metadata {
    harness::runner::Metadata {
        started_at: "2026-01-01T00:00:00Z".into(),
        command: vec!["harness".into()],
        machine: harness::metrics::Machine {
            cpu_model: "test".into(),
            cores: 2,
            memory_gib: 1.0,
            os: "test".into(),
            kernel: "test".into(),
            git_sha: "0000000".into(),
            git_dirty: false,
            oha_version: "oha 0".into(),
        },
        duration_s: 1.0,
        warmup_s: 0.0,
        concurrency: 1,
        runs: 1,
        server_cpus: None,
        load_cpus: None,
        servers: Vec::new(),
        load_commands: Vec::new(),
    }
}
