//! `harness`: starts servers, checks every answer against the route table, drives oha (and
//! its own SSE / WebSocket clients), and reports. See `harness --help`.

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
