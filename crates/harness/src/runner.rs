//! Running a benchmark: start the servers, check every answer, warm up, then measure each
//! workload RUNS times with the servers alternating (A B A B …), and collect the figures.

use crate::aggregate::{median, spread};
use crate::metrics::{children_cpu_seconds, own_cpu_seconds, Machine, Sampler};
use crate::oha;
use crate::servers::{Config, Kind, Paths, Server};
use crate::stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spikard_workloads::{Expected, Workload};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workloads: Vec<&'static Workload>,
    pub servers: Vec<Kind>,
    pub url: Option<String>,
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: usize,
    pub runs: usize,
    /// `taskset -c` lists for the servers and for the load generator (oha).
    pub server_cpus: Option<String>,
    pub load_cpus: Option<String>,
    /// Rust threads or Python worker processes of every server started.
    pub workers: usize,
    pub paths: Paths,
    /// `DATABASE_URL` of the database workloads, given to every server started.
    pub database_url: Option<String>,
}

/// One measured run of one workload on one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub per_sec: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    /// Server CPU time (user + system of its process tree) per answered request (or event,
    /// or round trip), in µs: the figure that compares servers when the load generator is
    /// the bottleneck.
    pub server_cpu_us: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    #[serde(default)]
    pub load_cpu_pct: f64,
    pub failure: Option<String>,
    /// oha's JSON output as it was, so reports can be re-rendered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oha: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    /// Every run passed: the medians of the runs.
    Ok {
        unit: String,
        median: f64,
        min: f64,
        max: f64,
        p50_ms: Option<f64>,
        p90_ms: Option<f64>,
        p99_ms: Option<f64>,
        p999_ms: Option<f64>,
        server_cpu_pct: Option<f64>,
        server_cpu_us: Option<f64>,
        server_peak_rss_mib: Option<f64>,
        #[serde(default)]
        load_cpu_pct: f64,
        /// The load generator used more CPU than the server: the figure may be the load
        /// generator's limit, not the server's.
        #[serde(default)]
        load_bound: bool,
    },
    /// A wrong answer before load, or a non-2xx answer / transport error under load.
    Failed { reason: String },
    /// The server cannot serve this workload as specified (see `Kind::unsupported`); it was
    /// neither checked nor measured.
    Unsupported { reason: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerResult {
    pub server: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub runs: Vec<Run>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadResult {
    pub name: String,
    pub category: String,
    pub servers: Vec<ServerResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metadata {
    pub started_at: String,
    pub command: Vec<String>,
    pub machine: Machine,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub concurrency: usize,
    pub runs: usize,
    pub server_cpus: Option<String>,
    pub load_cpus: Option<String>,
    pub servers: Vec<Config>,
    /// The exact load commands, per workload and server (oha arguments).
    #[serde(default)]
    pub load_commands: Vec<LoadCommand>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadCommand {
    pub workload: String,
    pub server: String,
    pub command: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub metadata: Metadata,
    pub workloads: Vec<WorkloadResult>,
}

fn is_stream(workload: &Workload) -> bool {
    matches!(
        workload.expected,
        Expected::Sse { .. } | Expected::WebSocketEcho
    )
}

struct Slot<'a> {
    server: &'a Server,
    name: &'static str,
    unsupported: Option<&'static str>,
    failed: Option<String>,
    runs: Vec<Run>,
}

impl Slot<'_> {
    /// Whether this server still takes load for the workload.
    fn active(&self) -> bool {
        self.unsupported.is_none() && self.failed.is_none()
    }
}

/// Runs the whole plan; `progress` is told after each run.
pub fn run(
    plan: &Plan,
    machine: Machine,
    work_dir: &Path,
    progress: &dyn Fn(&str),
) -> Result<Results, String> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    spikard_workloads::export(work_dir)
        .map_err(|e| format!("cannot write the sample bodies: {e}"))?;
    let pin = plan.server_cpus.as_deref();
    let mut servers = Vec::new();
    match &plan.url {
        Some(url) => servers.push(Server::external(url)),
        None => {
            for kind in &plan.servers {
                servers.push(Server::start(
                    *kind,
                    plan.workers,
                    pin,
                    &plan.paths,
                    work_dir,
                    plan.database_url.as_deref(),
                )?);
            }
        }
    }
    let mut load_commands = Vec::new();
    let mut workloads = Vec::new();
    for workload in &plan.workloads {
        let body_file = (!workload.sample.body.is_empty()).then(|| {
            work_dir
                .join("bodies")
                .join(format!("{}.body", workload.name))
        });
        let mut slots: Vec<Slot<'_>> = servers
            .iter()
            .map(|server| {
                let unsupported = server.config.kind.unsupported(workload);
                Slot {
                    server,
                    name: server.config.kind.name(),
                    unsupported,
                    failed: unsupported
                        .is_none()
                        .then(|| {
                            crate::validate::check_workload(
                                &server.base_url,
                                workload,
                                plan.database_url.as_deref(),
                            )
                            .err()
                        })
                        .flatten()
                        .map(|e| format!("wrong answer before load: {e}")),
                    runs: Vec::new(),
                }
            })
            .collect();
        for slot in slots.iter_mut().filter(|s| s.active()) {
            if !is_stream(workload) {
                let args = oha::args(
                    workload,
                    &slot.server.base_url,
                    body_file.as_deref(),
                    plan.duration,
                    plan.concurrency,
                );
                load_commands.push(LoadCommand {
                    workload: workload.name.to_owned(),
                    server: slot.name.to_owned(),
                    command: format!("oha {}", args.join(" ")),
                });
            }
            if !plan.warmup.is_zero() {
                if let Err(e) = measure(
                    plan,
                    workload,
                    slot.server,
                    body_file.as_deref(),
                    plan.warmup,
                ) {
                    slot.failed = Some(format!("warm-up failed: {e}"));
                }
            }
        }
        for _ in 0..plan.runs {
            for slot in slots.iter_mut() {
                if slot.active() {
                    match measure(
                        plan,
                        workload,
                        slot.server,
                        body_file.as_deref(),
                        plan.duration,
                    ) {
                        Ok(run) => {
                            slot.failed = run.failure.clone().map(|f| format!("under load: {f}"));
                            slot.runs.push(run);
                        }
                        Err(e) => slot.failed = Some(e),
                    }
                }
                progress(&format!("{} on {}", workload.name, slot.name));
            }
        }
        let unit = if matches!(workload.expected, Expected::Sse { .. }) {
            "events/s"
        } else if workload.expected == Expected::WebSocketEcho {
            "round trips/s"
        } else {
            "requests/s"
        };
        workloads.push(WorkloadResult {
            name: workload.name.to_owned(),
            category: workload.category.as_str().to_owned(),
            servers: slots
                .into_iter()
                .map(|slot| ServerResult {
                    server: slot.name.to_owned(),
                    outcome: match (slot.unsupported, slot.failed) {
                        (Some(reason), _) => Outcome::Unsupported {
                            reason: reason.to_owned(),
                        },
                        (None, Some(reason)) => Outcome::Failed { reason },
                        (None, None) => summarize(&slot.runs, unit),
                    },
                    runs: slot.runs,
                })
                .collect(),
        });
    }
    let configs = servers.iter().map(|s| s.config.clone()).collect();
    drop(servers);
    Ok(Results {
        metadata: Metadata {
            started_at,
            command: std::env::args().collect(),
            machine,
            duration_s: plan.duration.as_secs_f64(),
            warmup_s: plan.warmup.as_secs_f64(),
            concurrency: plan.concurrency,
            runs: plan.runs,
            server_cpus: plan.server_cpus.clone(),
            load_cpus: plan.load_cpus.clone(),
            servers: configs,
            load_commands,
        },
        workloads,
    })
}

/// CPU µs per answered item, from the server's CPU (% of one core) and the items per second.
pub fn cpu_per_item(cpu_pct: f64, per_sec: f64) -> Option<f64> {
    (per_sec > 0.0).then(|| cpu_pct / 100.0 / per_sec * 1e6)
}

fn summarize(runs: &[Run], unit: &'static str) -> Outcome {
    let of = |f: fn(&Run) -> Option<f64>| median(&runs.iter().filter_map(f).collect::<Vec<_>>());
    let rates: Vec<f64> = runs.iter().map(|r| r.per_sec).collect();
    let (min, max) = spread(&rates).unwrap_or((0.0, 0.0));
    let server_cpu_pct = of(|r| r.server_cpu_pct);
    let server_cpu_us = of(|r| r.server_cpu_us);
    let load_cpu_pct = of(|r| Some(r.load_cpu_pct)).unwrap_or(0.0);
    Outcome::Ok {
        unit: unit.to_owned(),
        median: median(&rates).unwrap_or(0.0),
        min,
        max,
        p50_ms: of(|r| r.p50_ms),
        p90_ms: of(|r| r.p90_ms),
        p99_ms: of(|r| r.p99_ms),
        p999_ms: of(|r| r.p999_ms),
        server_cpu_pct,
        server_cpu_us,
        server_peak_rss_mib: runs
            .iter()
            .filter_map(|r| r.server_peak_rss_mib)
            .reduce(f64::max),
        load_cpu_pct,
        load_bound: server_cpu_pct.is_some_and(|server| load_cpu_pct > server),
    }
}

/// One measured run (also used for the warm-up).
fn measure(
    plan: &Plan,
    workload: &Workload,
    server: &Server,
    body_file: Option<&Path>,
    duration: Duration,
) -> Result<Run, String> {
    let sampler = server.pgid().map(Sampler::start);
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let ms = |s: Option<f64>| s.map(|v| v * 1000.0);
    let mut run = if is_stream(workload) {
        let process_before = own_cpu_seconds();
        let result = stream::run(workload, &server.base_url, duration, plan.concurrency)?;
        let load = own_cpu_seconds() - process_before;
        Run {
            per_sec: result.per_sec,
            p50_ms: ms(result.p50),
            p90_ms: ms(result.p90),
            p99_ms: ms(result.p99),
            p999_ms: ms(result.p999),
            server_cpu_pct: None,
            server_cpu_us: None,
            server_peak_rss_mib: None,
            load_cpu_pct: load / started.elapsed().as_secs_f64() * 100.0,
            failure: result.failure,
            oha: None,
        }
    } else {
        let args = oha::args(
            workload,
            &server.base_url,
            body_file,
            duration,
            plan.concurrency,
        );
        let (output, raw) = oha::run(&args, plan.load_cpus.as_deref())?;
        let load = children_cpu_seconds() - cpu_before;
        Run {
            per_sec: output.summary.requests_per_sec.unwrap_or(0.0),
            p50_ms: ms(output.percentile("p50")),
            p90_ms: ms(output.percentile("p90")),
            p99_ms: ms(output.percentile("p99")),
            p999_ms: ms(output.percentile("p99.9")),
            server_cpu_pct: None,
            server_cpu_us: None,
            server_peak_rss_mib: None,
            load_cpu_pct: load / started.elapsed().as_secs_f64() * 100.0,
            failure: output.failure(),
            oha: Some(raw),
        }
    };
    if let Some(sampler) = sampler {
        let (cpu, rss) = sampler.finish();
        run.server_cpu_pct = Some(cpu);
        run.server_cpu_us = cpu_per_item(cpu, run.per_sec);
        run.server_peak_rss_mib = Some(rss as f64 / (1024.0 * 1024.0));
    }
    Ok(run)
}

/// `benchmark-results/<UTC timestamp>-<git sha><suffix>/`.
pub fn out_dir(base: &Path, machine: &Machine, suffix: &str) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let sha = if machine.git_sha.is_empty() {
        "nogit".to_owned()
    } else {
        machine.git_sha.clone()
    };
    let dirty = if machine.git_dirty { "-dirty" } else { "" };
    base.join(format!("{stamp}-{sha}{dirty}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::cpu_per_item;

    #[test]
    fn cpu_per_request_is_cpu_over_throughput() {
        // Half a core for 50,000 requests/s: 10 µs each.
        assert_eq!(cpu_per_item(50.0, 50_000.0), Some(10.0));
        assert_eq!(cpu_per_item(150.0, 1_000.0), Some(1_500.0));
        assert_eq!(cpu_per_item(10.0, 0.0), None);
    }
}
