//! Starts the Python workload server: `python -m spikard workload_app:app` from the project's
//! virtualenv, with the route table it must serve. The interpreter is not embedded: a
//! virtualenv's packages are only visible to its own `python`, and worker processes are
//! forked by the Python side before the engine starts.

use clap::Parser;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Serves every Spikard benchmark workload with Python handlers.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 8200)]
    port: u16,
    /// Worker processes sharing the port (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// The Python interpreter (default: $SPIKARD_PYTHON, else the project's .venv).
    #[arg(long)]
    python: Option<PathBuf>,
}

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn main() -> ExitCode {
    let args = Args::parse();
    let root = project_root();
    let python = args
        .python
        .or_else(|| std::env::var_os("SPIKARD_PYTHON").map(PathBuf::from))
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    if !python.exists() {
        eprintln!(
            "spikard-python-workloads: no Python at {}; run `make setup` (it creates .venv with the spikard package)",
            python.display()
        );
        return ExitCode::FAILURE;
    }
    let table_dir = std::env::temp_dir().join(format!(
        "spikard-workload-table-{}",
        env!("CARGO_PKG_VERSION")
    ));
    if let Err(err) = spikard_workloads::export(&table_dir) {
        eprintln!("spikard-python-workloads: cannot write the route table: {err}");
        return ExitCode::FAILURE;
    }
    let workers = args
        .workers
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1);
    let err = Command::new(&python)
        .current_dir(root.join("python"))
        .args(["-m", "spikard", "workload_app:app", "--host", &args.host])
        .args([
            "--port",
            &args.port.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .arg("--require-routes")
        .arg(table_dir.join("table.json"))
        .exec();
    eprintln!(
        "spikard-python-workloads: cannot start {}: {err}",
        python.display()
    );
    ExitCode::FAILURE
}
