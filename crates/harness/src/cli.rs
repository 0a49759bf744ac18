//! The command line: `run` (the default), `scale`, `list`, `report`, `compare`.

use crate::aggregate::{change, median};
use crate::database::Database;
use crate::runner::{self, Outcome, Plan, Results};
use crate::servers::{self, Kind, Paths};
use crate::{metrics, oha, report, scale};
use clap::{Args, Parser, Subcommand, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use spikard_workloads::{table, Workload};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Defaults follow the reference report's set-up: 10 s, 50 connections.
pub const DEFAULT_DURATION: &str = "10s";
pub const DEFAULT_CONCURRENCY: usize = 50;

#[derive(Parser)]
#[command(
    version,
    about = "Spikard's benchmark driver: checks every answer, then measures with oha"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Benchmark workloads on servers (the default).
    Run(RunArgs),
    /// Benchmark at several server sizes: for each worker count N, every server on N CPUs
    /// and the load generator on the others; a table and a chart of throughput against cores.
    Scale(ScaleArgs),
    /// Print the route table.
    List,
    /// Re-render summary.md and chart.svg (and the terminal tables) from a results.json, or
    /// scale.md and scale.svg from the scale.json of `harness scale`.
    Report {
        results: PathBuf,
        /// Where summary.md and chart.svg go (default: beside the results file).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two results.json files; exits 1 when a figure got worse past the threshold.
    Compare {
        before: PathBuf,
        after: PathBuf,
        /// Relative change treated as noise (0.1 = 10%).
        #[arg(long, default_value_t = 0.1)]
        threshold: f64,
        /// The figure compared: throughput (higher is better) or server CPU µs per request
        /// (lower is better).
        #[arg(long, value_enum, default_value_t = Figure::Throughput)]
        figure: Figure,
        /// Compare each server's throughput as a fraction of this server's in the same run,
        /// instead of absolute figures. The machine's drift between runs hits every server
        /// of a run alike (runs alternate servers), so these ratios reproduce where absolute
        /// figures do not.
        #[arg(long, value_name = "SERVER")]
        relative_to: Option<String>,
    },
}

/// What `run` and `scale` share.
#[derive(Args, Clone)]
struct Common {
    /// Workload names or categories, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    workload: String,
    /// Servers, comma-separated: rust, python, bare (plain axum), and the peers fastapi,
    /// granian, robyn.
    #[arg(long, default_value = "rust,python")]
    servers: String,
    /// Length of each measured run.
    #[arg(long, default_value = DEFAULT_DURATION, value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent connections.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: usize,
    /// Warm-up before the first measured run of each workload on each server (0s: none).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Measured runs per workload and server; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Where result directories are written.
    #[arg(long, default_value = "benchmark-results")]
    out: PathBuf,
    /// The database of the database workloads: a PostgreSQL URL, `auto` ($DATABASE_URL if
    /// set, else a throw-away cluster started for the run and stopped after it), or `none`.
    #[arg(long, default_value = "auto", value_name = "URL|auto|none")]
    database: String,
    /// Directory of the workload server binaries.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
}

#[derive(Args, Clone)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// Benchmark an already running server at this URL instead of starting servers.
    #[arg(long)]
    url: Option<String>,
    /// Pin servers to CPU 0 and the load generator to CPU 1: short for `--server-cpus 0
    /// --load-cpus 1`.
    #[arg(long)]
    pin: bool,
    /// Run every server on these CPUs (`taskset -c`, e.g. `0-3`).
    #[arg(long, value_name = "LIST")]
    server_cpus: Option<String>,
    /// Run the load generator (oha) on these CPUs.
    #[arg(long, value_name = "LIST")]
    load_cpus: Option<String>,
    /// Workers of every server started: Rust threads, Python worker processes, the peers'
    /// workers (default: one per CPU of --server-cpus, else of the machine).
    #[arg(long)]
    workers: Option<usize>,
}

#[derive(Args, Clone)]
struct ScaleArgs {
    #[command(flatten)]
    common: Common,
    /// Worker counts, comma-separated: for each N, every server gets N workers on the first
    /// N CPUs the harness may use, and the load generator gets the rest.
    #[arg(long, value_delimiter = ',', required = true)]
    workers: Vec<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Figure {
    Throughput,
    Cpu,
}

/// How many CPUs a `taskset -c` list names (`0-3,6` is 5).
pub fn cpu_count(list: &str) -> Result<usize, String> {
    let mut count = 0;
    for part in list.split(',').map(str::trim) {
        let bad = || format!("not a CPU list: {list:?} (e.g. 0-3,6)");
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let first: usize = first.trim().parse().map_err(|_| bad())?;
        let last: usize = last.trim().parse().map_err(|_| bad())?;
        if last < first {
            return Err(bad());
        }
        count += last - first + 1;
    }
    Ok(count)
}

/// Resolves `--workload`: names, categories or `all`.
pub fn select(spec: &str) -> Result<Vec<&'static Workload>, String> {
    let mut chosen: Vec<&'static Workload> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let matched: Vec<&'static Workload> = table()
            .iter()
            .filter(|w| {
                w.benchmarked && (part == "all" || w.name == part || w.category.as_str() == part)
            })
            .collect();
        if matched.is_empty() {
            return Err(format!(
                "no workload or category called {part:?} (see `harness list`)"
            ));
        }
        for w in matched {
            if !chosen.iter().any(|c| c.name == w.name) {
                chosen.push(w);
            }
        }
    }
    Ok(chosen)
}

fn project_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::List) => {
            list();
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Report { results, out }) => render(&results, out.as_deref()),
        Some(Command::Compare {
            before,
            after,
            threshold,
            figure,
            relative_to,
        }) => compare(&before, &after, threshold, figure, relative_to.as_deref()),
        Some(Command::Scale(args)) => run_scale(args),
        Some(Command::Run(args)) => run(args),
        None => run(cli.run),
    };
    result.unwrap_or_else(|err| {
        eprintln!("harness: {err}");
        ExitCode::FAILURE
    })
}

fn list() {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["name", "category", "method", "route", "sample", "measured"]);
    for w in table() {
        t.add_row([
            w.name,
            w.category.as_str(),
            w.method,
            w.route,
            &w.sample.target,
            if w.benchmarked { "yes" } else { "checked only" },
        ]);
    }
    println!("{t}");
}

/// Where the servers run, and with how many workers.
struct Placement {
    server_cpus: Option<String>,
    load_cpus: Option<String>,
    workers: usize,
}

fn plan(
    common: &Common,
    url: Option<String>,
    placement: Placement,
    database: Option<&Database>,
) -> Result<Plan, String> {
    let servers = common
        .servers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Kind::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let root = project_root();
    Ok(Plan {
        workloads: select(&common.workload)?,
        database_url: database
            .map(|d| d.url.clone())
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|_| url.is_some())),
        servers,
        url,
        duration: common.duration,
        warmup: common.warmup,
        concurrency: common.concurrency,
        runs: common.runs.max(1),
        workers: placement.workers,
        server_cpus: placement.server_cpus,
        load_cpus: placement.load_cpus,
        paths: Paths {
            bin_dir: if common.bin_dir.is_absolute() {
                common.bin_dir.clone()
            } else {
                root.join(&common.bin_dir)
            },
            root,
        },
    })
}

/// The database of a plan's workloads, if any of them needs one.
fn database(common: &Common, external: bool) -> Result<Option<Database>, String> {
    let needs = !external && select(&common.workload)?.iter().any(|w| w.needs_database());
    Database::resolve(&common.database, &project_root(), needs)
}

/// Runs `plan` with a progress bar, prints the terminal tables and writes the reports into
/// `out`.
fn execute(plan: &Plan, out: &Path, machine: metrics::Machine) -> Result<Results, String> {
    let work = out.join("work");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let server_count = if plan.url.is_some() {
        1
    } else {
        plan.servers.len()
    };
    let bar = indicatif::ProgressBar::new((plan.workloads.len() * server_count * plan.runs) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let results = runner::run(plan, machine, &work, &|msg| {
        bar.set_message(msg.to_owned());
        bar.inc(1);
    });
    bar.finish_and_clear();
    let results = results?;
    let _ = std::fs::remove_dir_all(&work);
    println!("{}", report::terminal(&results));
    report::write_all(&results, out)?;
    println!("results: {}", out.display());
    Ok(results)
}

fn any_failed(results: &Results) -> bool {
    results
        .workloads
        .iter()
        .flat_map(|w| &w.servers)
        .any(|s| matches!(s.outcome, Outcome::Failed { .. }))
}

fn run(args: RunArgs) -> Result<ExitCode, String> {
    let oha_version = oha::version()?;
    let server_cpus = args
        .server_cpus
        .clone()
        .or_else(|| args.pin.then(|| "0".to_owned()));
    let load_cpus = args
        .load_cpus
        .clone()
        .or_else(|| args.pin.then(|| "1".to_owned()));
    let workers = match (args.workers, &server_cpus) {
        (Some(n), _) => n.max(1),
        (None, Some(list)) => cpu_count(list)?,
        (None, None) => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    servers::stop_all_on_interrupt();
    let database = database(&args.common, args.url.is_some())?;
    let plan = plan(
        &args.common,
        args.url.clone(),
        Placement {
            server_cpus,
            load_cpus,
            workers,
        },
        database.as_ref(),
    )?;
    let machine = metrics::machine(&oha_version);
    let out = runner::out_dir(&args.common.out, &machine, "");
    let results = execute(&plan, &out, machine)?;
    report::write_latest(&results, &out)?;
    Ok(if any_failed(&results) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn run_scale(args: ScaleArgs) -> Result<ExitCode, String> {
    let cpus = scale::usable_cpus()?;
    let placements = scale::placements(&args.workers, &cpus)?;
    let oha_version = oha::version()?;
    servers::stop_all_on_interrupt();
    let database = database(&args.common, false)?;
    let machine = metrics::machine(&oha_version);
    let out = runner::out_dir(&args.common.out, &machine, "-scale");
    let mut points = Vec::new();
    let mut failed = false;
    for (workers, server_cpus, load_cpus) in placements {
        println!("\n{workers} worker(s): servers on CPUs {server_cpus}, load on CPUs {load_cpus}");
        let plan = plan(
            &args.common,
            None,
            Placement {
                server_cpus: Some(server_cpus),
                load_cpus: Some(load_cpus),
                workers,
            },
            database.as_ref(),
        )?;
        let results = execute(
            &plan,
            &out.join(format!("workers-{workers}")),
            machine.clone(),
        )?;
        failed |= any_failed(&results);
        points.push(scale::Point { workers, results });
    }
    let scaled = scale::Scale { points };
    println!("{}", scale::terminal(&scaled));
    scale::write_all(&scaled, &out)?;
    println!("scaling: {}", out.display());
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn render(path: &Path, out: Option<&Path>) -> Result<ExitCode, String> {
    let dir = match out {
        Some(dir) => dir.to_path_buf(),
        None => path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    if path.file_name().is_some_and(|name| name == "scale.json") {
        let scaled = scale::read(path)?;
        println!("{}", scale::terminal(&scaled));
        scale::write_all(&scaled, &dir)?;
        println!("scale.md and scale.svg: {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let results = report::read(path)?;
    println!("{}", report::terminal(&results));
    report::render(&results, &dir)?;
    println!("summary.md and chart.svg: {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

/// (workload, server, figure) for every server that passed.
fn figures(results: &Results, figure: Figure) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for w in &results.workloads {
        for s in &w.servers {
            if let Outcome::Ok {
                median,
                server_cpu_us,
                ..
            } = &s.outcome
            {
                let value = match figure {
                    Figure::Throughput => Some(*median),
                    Figure::Cpu => *server_cpu_us,
                };
                if let Some(value) = value {
                    out.push((w.name.clone(), s.server.clone(), value));
                }
            }
        }
    }
    out
}

/// Each workload's figure for every server other than `base`, divided by `base`'s figure
/// for the same workload in the same run.
fn relative(
    figures: &[(String, String, f64)],
    base: &str,
) -> Result<Vec<(String, String, f64)>, String> {
    if !figures.iter().any(|(_, server, _)| server == base) {
        return Err(format!("no figures of server {base:?} to compare against"));
    }
    Ok(figures
        .iter()
        .filter(|(_, server, _)| server != base)
        .filter_map(|(name, server, figure)| {
            let (_, _, reference) = figures.iter().find(|(n, s, _)| n == name && s == base)?;
            Some((
                name.clone(),
                format!("{server} / {base}"),
                figure / reference,
            ))
        })
        .collect())
}

fn compare(
    before: &Path,
    after: &Path,
    threshold: f64,
    figure: Figure,
    relative_to: Option<&str>,
) -> Result<ExitCode, String> {
    let (mut a, mut b) = (
        figures(&report::read(before)?, figure),
        figures(&report::read(after)?, figure),
    );
    if let Some(base) = relative_to {
        a = relative(&a, base)?;
        b = relative(&b, base)?;
    }
    let show = |value: f64| match (relative_to, figure) {
        (Some(_), _) => format!("{value:.3}"),
        (None, Figure::Throughput) => format!("{value:.0}"),
        (None, Figure::Cpu) => format!("{value:.1} µs"),
    };
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(["workload", "server", "before", "after", "change", ""]);
    let mut regressions = 0;
    let mut changes = Vec::new();
    for (name, server, old) in &a {
        let Some((_, _, new)) = b.iter().find(|(n, s, _)| n == name && s == server) else {
            continue;
        };
        let delta = change(*old, *new);
        // Throughput gets worse when it falls; CPU per request when it rises.
        let worse = match figure {
            Figure::Throughput => -delta,
            Figure::Cpu => delta,
        };
        let regressed = worse > threshold;
        regressions += usize::from(regressed);
        changes.push(delta);
        let verdict = if regressed {
            "REGRESSION"
        } else if delta.abs() <= threshold {
            "noise"
        } else {
            ""
        };
        t.add_row([
            name.clone(),
            server.clone(),
            show(*old),
            show(*new),
            format!("{:+.1}%", delta * 100.0),
            verdict.to_owned(),
        ]);
    }
    println!("{t}");
    if let Some(middle) = median(&changes) {
        let within = changes.iter().filter(|c| c.abs() <= threshold).count();
        println!(
            "{within} of {} {} within ±{:.0}%; median change {:+.1}%",
            changes.len(),
            if relative_to.is_some() {
                "ratios"
            } else {
                "medians"
            },
            threshold * 100.0,
            middle * 100.0
        );
    }
    if regressions > 0 {
        println!("{regressions} regression(s) past {:.0}%", threshold * 100.0);
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::cpu_count;

    #[test]
    fn cpu_lists_count_their_cpus() {
        assert_eq!(cpu_count("0"), Ok(1));
        assert_eq!(cpu_count("0-3"), Ok(4));
        assert_eq!(cpu_count("0-3,6, 8-9"), Ok(7));
        assert!(cpu_count("3-1").is_err());
        assert!(cpu_count("a").is_err());
        assert!(cpu_count("").is_err());
    }
}
