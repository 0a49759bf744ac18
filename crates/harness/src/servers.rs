//! The servers under test: how each is started, the readiness probe, and stopping it by
//! process group (also on Ctrl-C or a failed run), so no process outlives the harness.

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use spikard_workloads::Workload;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A server the harness knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Spikard with Rust handlers.
    Rust,
    /// Spikard with Python handlers.
    Python,
    /// The bare axum ceiling.
    Bare,
    /// FastAPI on uvicorn (uvloop, httptools).
    Fastapi,
    /// A raw RSGI application on Granian.
    Granian,
    /// Robyn.
    Robyn,
    /// A server that is already running (`--url`).
    Url,
}

impl Kind {
    pub fn parse(name: &str) -> Result<Kind, String> {
        Ok(match name {
            "rust" => Kind::Rust,
            "python" => Kind::Python,
            "bare" => Kind::Bare,
            "fastapi" => Kind::Fastapi,
            "granian" => Kind::Granian,
            "robyn" => Kind::Robyn,
            other => {
                return Err(format!(
                    "unknown server {other:?} (rust, python, bare, fastapi, granian, robyn)"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Rust => "rust",
            Kind::Python => "python",
            Kind::Bare => "bare",
            Kind::Fastapi => "fastapi",
            Kind::Granian => "granian",
            Kind::Robyn => "robyn",
            Kind::Url => "url",
        }
    }

    /// Whether the harness starts this server, and so sets its workers: Rust threads or
    /// Python worker processes.
    pub fn has_workers(self) -> bool {
        self != Kind::Url
    }

    /// Why this server cannot serve `workload` as WORKLOADS.md defines it, if it cannot.
    /// Such a workload is reported as unsupported, never as a number.
    pub fn unsupported(self, workload: &Workload) -> Option<&'static str> {
        if workload.python_only && !matches!(self, Kind::Python | Kind::Url) {
            return Some(
                "a second serving of another workload's route that only Spikard's Python \
                 server has (asyncpg, def handlers on a blocking driver, or async def handlers)",
            );
        }
        match (self, workload.name) {
            (Kind::Robyn, "multipart-small" | "multipart-medium" | "multipart-large") => {
                Some("Robyn's request.files gives a file's name and bytes, not its content type")
            }
            (Kind::Robyn, "query-many") => Some(
                "Robyn 0.88 leaves percent-escapes in query values (q=hello%20world%21 stays \
                 encoded)",
            ),
            (Kind::Robyn, "websocket") => Some(
                "Robyn's WebSocket API does not tell text frames from binary ones, so binary \
                 messages cannot be echoed as sent",
            ),
            _ => None,
        }
    }
}

/// Where the project's binaries and virtualenvs are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    /// The directory of the workload server binaries (default `target/release`).
    pub bin_dir: PathBuf,
}

/// How a started server is configured, recorded with the results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub kind: Kind,
    pub command: Vec<String>,
    pub workers: Option<usize>,
    pub pinned_cpus: Option<String>,
}

/// The command line that starts `kind` on `port`.
pub fn command_line(
    kind: Kind,
    port: u16,
    workers: usize,
    paths: &Paths,
) -> Result<(Vec<String>, PathBuf), String> {
    let bin = |name: &str| -> Result<String, String> {
        let path = paths.bin_dir.join(name);
        if path.exists() {
            Ok(path.display().to_string())
        } else {
            Err(format!("{} is missing: run `make build`", path.display()))
        }
    };
    let port = port.to_string();
    let root = paths.root.clone();
    Ok(match kind {
        Kind::Rust | Kind::Bare => {
            let mut line = vec![
                bin("spikard-rust-workloads")?,
                "--port".into(),
                port,
                "--threads".into(),
                workers.to_string(),
            ];
            if kind == Kind::Bare {
                line.push("--bare".into());
            }
            (line, root)
        }
        Kind::Python => (
            vec![
                bin("spikard-python-workloads")?,
                "--port".into(),
                port,
                "--workers".into(),
                workers.to_string(),
            ],
            root,
        ),
        Kind::Fastapi => {
            let python = peer_tool(paths, "python")?;
            let args = [
                "-m",
                "uvicorn",
                "fastapi_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--workers",
                &workers.to_string(),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ];
            (peer_line(&python, &args), paths.root.join("peers"))
        }
        Kind::Granian => {
            let granian = peer_tool(paths, "granian")?;
            let args = [
                "--interface",
                "rsgi",
                "--loop",
                "uvloop",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--workers",
                &workers.to_string(),
                "--log-level",
                "warning",
                "granian_app:app",
            ];
            (peer_line(&granian, &args), paths.root.join("peers"))
        }
        Kind::Robyn => {
            let python = peer_tool(paths, "python")?;
            // Robyn takes its port from the environment; `env` keeps the line one command.
            let port_var = format!("ROBYN_PORT={port}");
            let args = [
                "ROBYN_HOST=127.0.0.1",
                &port_var,
                &python.display().to_string(),
                "robyn_app.py",
                "--processes",
                &workers.to_string(),
                "--workers",
                "1",
                "--log-level",
                "WARNING",
            ];
            (peer_line(Path::new("env"), &args), paths.root.join("peers"))
        }
        Kind::Url => return Err("a --url server is not started by the harness".into()),
    })
}

/// A program in the peers' virtualenv.
fn peer_tool(paths: &Paths, name: &str) -> Result<PathBuf, String> {
    let path = paths.root.join(".venv-peers/bin").join(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} is missing: run `make peers`", path.display()))
    }
}

fn peer_line(program: &Path, args: &[&str]) -> Vec<String> {
    let mut line = vec![program.display().to_string()];
    line.extend(args.iter().map(|s| s.to_string()));
    line
}

/// Process groups of running servers, killed on Ctrl-C.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Installs the Ctrl-C / SIGTERM handler that stops every started server, then exits.
pub fn stop_all_on_interrupt() {
    let _ = ctrlc::set_handler(|| {
        if let Ok(groups) = GROUPS.lock() {
            for pgid in groups.iter() {
                let _ = killpg(Pid::from_raw(*pgid), Signal::SIGTERM);
            }
        }
        crate::database::stop_all();
        eprintln!("\ninterrupted: servers stopped");
        std::process::exit(130);
    });
}

/// A running server; dropping it stops its whole process group.
pub struct Server {
    pub base_url: String,
    pub config: Config,
    child: Option<Child>,
}

impl Server {
    /// An already running server at `url`.
    pub fn external(url: &str) -> Server {
        Server {
            base_url: url.trim_end_matches('/').to_owned(),
            config: Config {
                kind: Kind::Url,
                command: Vec::new(),
                workers: None,
                pinned_cpus: None,
            },
            child: None,
        }
    }

    /// Starts `kind` on a free port and waits until `/health` answers.
    pub fn start(
        kind: Kind,
        workers: usize,
        pin: Option<&str>,
        paths: &Paths,
        log_dir: &Path,
        database_url: Option<&str>,
    ) -> Result<Server, String> {
        let port = free_port()?;
        let (mut line, cwd) = command_line(kind, port, workers, paths)?;
        if let Some(cpus) = pin {
            line.splice(
                0..0,
                ["taskset".to_owned(), "-c".to_owned(), cpus.to_owned()],
            );
        }
        let log = std::fs::File::create(log_dir.join(format!("{}.log", kind.name())))
            .map_err(|e| format!("cannot create the server log: {e}"))?;
        let mut command = Command::new(&line[0]);
        if let Some(url) = database_url {
            command.env("DATABASE_URL", url);
        }
        let child = command
            .args(&line[1..])
            .current_dir(cwd)
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", line[0]))?;
        if let Ok(mut groups) = GROUPS.lock() {
            groups.push(child.id() as i32);
        }
        let workers = kind.has_workers().then_some(workers);
        let mut server = Server {
            base_url: format!("http://127.0.0.1:{port}"),
            config: Config {
                kind,
                command: line,
                workers,
                pinned_cpus: pin.map(str::to_owned),
            },
            child: Some(child),
        };
        server.wait_ready(Duration::from_secs(60))?;
        Ok(server)
    }

    /// The process group id, for sampling and stopping.
    pub fn pgid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        let addr = self.base_url.trim_start_matches("http://").to_owned();
        while start.elapsed() < limit {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "{} exited during start-up ({status}); see its log",
                        self.config.kind.name()
                    ));
                }
            }
            if crate::validate::health(&addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{} did not answer /health within {limit:?}",
            self.config.kind.name()
        ))
    }

    /// Stops the process group: SIGTERM, then SIGKILL after 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pgid = Pid::from_raw(child.id() as i32);
        let _ = killpg(pgid, Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = child.wait();
        if let Ok(mut groups) = GROUPS.lock() {
            groups.retain(|g| *g != pgid.as_raw());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_parse_and_take_workers() {
        for name in ["fastapi", "granian", "robyn"] {
            let kind = Kind::parse(name).expect(name);
            assert_eq!(kind.name(), name);
            assert!(kind.has_workers());
        }
        assert!(Kind::Rust.has_workers());
        assert!(!Kind::Url.has_workers());
        assert!(Kind::parse("tornado").is_err());
    }

    #[test]
    fn every_started_server_gets_the_workers() {
        let dir = std::env::temp_dir().join(format!("spikard-harness-bin-{}", std::process::id()));
        let bin = dir.join("spikard-rust-workloads");
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        std::fs::write(&bin, b"").expect("a stand-in binary");
        let paths = Paths {
            root: PathBuf::from("/nonexistent"),
            bin_dir: dir.clone(),
        };
        for kind in [Kind::Rust, Kind::Bare] {
            let (line, _) = command_line(kind, 9, 3, &paths).expect("a command line");
            let at = line
                .iter()
                .position(|a| a == "--threads")
                .expect("--threads");
            assert_eq!(line[at + 1], "3");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn unsupported_workloads_are_real_table_entries() {
        let table = spikard_workloads::table();
        let kinds = [
            Kind::Rust,
            Kind::Python,
            Kind::Fastapi,
            Kind::Granian,
            Kind::Robyn,
        ];
        let mut listed = 0;
        for kind in kinds {
            for w in table {
                let unsupported = kind.unsupported(w).is_some();
                if w.python_only {
                    assert_eq!(unsupported, kind != Kind::Python, "{w:?}");
                } else if unsupported {
                    listed += 1;
                    assert!(kind != Kind::Rust && kind != Kind::Python, "{w:?}");
                }
            }
        }
        // Robyn: query-many, three multipart workloads, websocket; every name must match the
        // table, or a renamed workload would silently be measured.
        assert_eq!(listed, 5);
        let large = spikard_workloads::find("multipart-large").expect("in the table");
        assert!(Kind::Robyn.unsupported(large).is_some());
        assert!(Kind::Granian.unsupported(large).is_none());
    }
}
