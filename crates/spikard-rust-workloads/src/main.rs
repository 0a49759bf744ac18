use clap::Parser;
use spikard_core::server::Threading;
use spikard_core::ServerConfig;
use spikard_rust_workloads::{router, Flavor, Routes};
use std::future::IntoFuture;
use std::process::ExitCode;

// Many small allocations per request (the records' strings and vectors): mimalloc serves
// them from thread-local pages, where glibc's malloc costs a json-large request a fifth
// of its CPU time.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves every Spikard benchmark workload with Rust handlers.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port to listen on (0 picks a free one; the address is printed on stderr).
    #[arg(long, default_value_t = 8100)]
    port: u16,
    /// Serving threads (0: one per CPU this process may run on, so `taskset` is respected).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// `per-core`: each thread runs its own runtime and listener (SO_REUSEPORT);
    /// `multi-thread`: one work-stealing tokio runtime shares one listener.
    #[arg(long, default_value = "per-core")]
    threading: Threading,
    /// Serve the bare axum ceiling instead of the Spikard engine.
    #[arg(long)]
    bare: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = spikard_core::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Seconds a request body may take to arrive once the head is in; slower: 408.
    #[arg(long, default_value_t = spikard_core::DEFAULT_BODY_TIMEOUT.as_secs_f64())]
    body_timeout: f64,
    /// Seconds a client may take to send a complete request head; slower: disconnected.
    #[arg(long, default_value_t = ServerConfig::default().header_read_timeout.as_secs_f64())]
    header_timeout: f64,
    /// Write the route table (table.json and the sample bodies) to DIR and exit.
    #[arg(long, value_name = "DIR")]
    export_table: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.export_table {
        return match spikard_workloads::export(dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!(
                    "spikard-rust-workloads: cannot write {}: {err}",
                    dir.display()
                );
                ExitCode::FAILURE
            }
        };
    }
    let flavor = if args.bare {
        Flavor::Bare
    } else {
        Flavor::Engine
    };
    let seconds = |what: &str, s: f64| {
        std::time::Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("--{what} must be a positive number of seconds, not {s}"))
    };
    let (body_timeout, header_timeout) = match (
        seconds("body-timeout", args.body_timeout),
        seconds("header-timeout", args.header_timeout),
    ) {
        (Ok(body), Ok(header)) => (body, header),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("spikard-rust-workloads: {err}");
            return ExitCode::FAILURE;
        }
    };
    let rules = spikard_core::BodyRules {
        limit: args.body_limit,
        timeout: body_timeout,
    };
    let router = match router(flavor, rules) {
        Ok(router) => router,
        Err(err) => {
            eprintln!("spikard-rust-workloads: refusing to start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let config = ServerConfig {
        host: args.host,
        port: args.port,
        threads: args.threads,
        threading: args.threading,
        header_read_timeout: header_timeout,
        ..ServerConfig::default()
    };
    eprintln!(
        "spikard-rust-workloads: serving {} workloads ({})",
        spikard_workloads::table().len(),
        if args.bare {
            "bare axum"
        } else {
            "spikard engine"
        }
    );
    let served = match router {
        Routes::Bare(router) => serve_bare(router, &config),
        engine => spikard_core::server::run(engine, &config),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("spikard-rust-workloads: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The ceiling is served the plain axum way, by `axum::serve`, so that it measures axum alone
/// and not the engine's accept loop, in the same threads as the engine.
fn serve_bare(router: axum::Router, config: &ServerConfig) -> std::io::Result<()> {
    spikard_core::server::run_with(config, |listener, stop| {
        axum::serve(listener, router.clone())
            .with_graceful_shutdown(stop.into_future())
            .into_future()
    })
}
