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
