//! Reports of a run, each a sink: the terminal tables, `summary.md`, `results.json` and an
//! SVG bar chart. All read the same [`Results`]; none measures anything.

use crate::runner::{Outcome, Results, WorkloadResult};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use plotters::prelude::*;
use std::fmt::Write as _;
use std::path::Path;

pub(crate) fn fmt_rate(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

fn fmt_us(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

/// The servers that appear in the results, in order.
fn server_names(results: &Results) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for w in &results.workloads {
        for s in &w.servers {
            if !names.contains(&s.server.as_str()) {
                names.push(&s.server);
            }
        }
    }
    names
}

fn median_of(w: &WorkloadResult, server: &str) -> Option<f64> {
    w.servers
        .iter()
        .find(|s| s.server == server)
        .and_then(|s| match s.outcome {
            Outcome::Ok { median, .. } => Some(median),
            Outcome::Failed { .. } | Outcome::Unsupported { .. } => None,
        })
}

fn unsupported(w: &WorkloadResult, server: &str) -> bool {
    w.servers
        .iter()
        .any(|s| s.server == server && matches!(s.outcome, Outcome::Unsupported { .. }))
}

/// Rust/Python throughput ratio (how many times faster Rust handlers are).
pub fn rust_python_ratio(w: &WorkloadResult) -> Option<f64> {
    Some(median_of(w, "rust")? / median_of(w, "python")?)
}

/// Rust/Python server CPU per request (below 1: Rust handlers cost less).
pub fn rust_python_cpu_ratio(w: &WorkloadResult) -> Option<f64> {
    Some(cpu_of(w, "rust")? / cpu_of(w, "python")?)
}

/// One row of cells per workload: name, then per server "rate (min–max) · p99", then ratio.
fn rows(results: &Results, category: &str) -> Vec<Vec<String>> {
    let names = server_names(results);
    results
        .workloads
        .iter()
        .filter(|w| w.category == category)
        .map(|w| {
            let mut row = vec![w.name.to_owned()];
            for name in &names {
                let cell = match w
                    .servers
                    .iter()
                    .find(|s| s.server == *name)
                    .map(|s| &s.outcome)
                {
                    Some(Outcome::Ok {
                        median,
                        min,
                        max,
                        p99_ms,
                        server_cpu_us,
                        load_bound,
                        unit,
                        ..
                    }) => format!(
                        "{}{} ({}–{}) p99 {} ms, {} µs CPU{}",
                        fmt_rate(*median),
                        if *unit == "requests/s" {
                            String::new()
                        } else {
                            format!(" {unit}")
                        },
                        fmt_rate(*min),
                        fmt_rate(*max),
                        fmt_ms(*p99_ms),
                        fmt_us(*server_cpu_us),
                        if *load_bound { " ⚠load-bound" } else { "" }
                    ),
                    Some(Outcome::Failed { reason }) => format!("FAILED: {reason}"),
                    Some(Outcome::Unsupported { .. }) => "unsupported".into(),
                    None => "–".into(),
                };
                row.push(cell);
            }
            for ratio in [rust_python_ratio(w), rust_python_cpu_ratio(w)] {
                row.push(
                    ratio
                        .map(|r| format!("{r:.2}"))
                        .unwrap_or_else(|| "–".into()),
                );
            }
            row
        })
        .collect()
}

fn categories(results: &Results) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for w in &results.workloads {
        if !out.contains(&w.category.as_str()) {
            out.push(&w.category);
        }
    }
    out
}

fn header(results: &Results) -> Vec<String> {
    let mut header = vec!["workload".to_owned()];
    header.extend(server_names(results).iter().map(|s| s.to_string()));
    header.push("rust/python req/s".into());
    header.push("rust/python CPU µs".into());
    header
}

/// One line per server and reason: which workloads it cannot serve, and why.
fn unsupported_notes(results: &Results) -> Vec<String> {
    let mut notes: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for w in &results.workloads {
        for s in &w.servers {
            if let Outcome::Unsupported { reason } = &s.outcome {
                match notes
                    .iter_mut()
                    .find(|(server, r, _)| *server == s.server && *r == reason.as_str())
                {
                    Some((_, _, names)) => names.push(&w.name),
                    None => notes.push((&s.server, reason, vec![&w.name])),
                }
            }
        }
    }
    notes
        .into_iter()
        .map(|(server, reason, names)| {
            format!("{server} does not serve {}: {reason}.", names.join(", "))
        })
        .collect()
}

/// The terminal tables, one per category.
pub fn terminal(results: &Results) -> String {
    let mut out = String::new();
    for category in categories(results) {
        let mut table = Table::new();
        table
            .load_preset(UTF8_FULL_CONDENSED)
            .set_header(header(results));
        for row in rows(results, category) {
            table.add_row(row);
        }
        let _ = writeln!(out, "\n{category}\n{table}");
    }
    for note in unsupported_notes(results) {
        let _ = writeln!(out, "unsupported: {note}");
    }
    out
}

/// `summary.md`.
pub fn markdown(results: &Results) -> String {
    let m = &results.metadata;
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark run {}\n", m.started_at);
    let _ = writeln!(
        out,
        "{} cores ({}), {} GiB, {}, kernel {}; git {}{}; {}; {} s per run after {} s warm-up, \
         {} connections, median of {} runs{}. Throughput is requests/s unless noted; \
         (min–max) over the runs; p99 latency in ms; server CPU µs per request. ⚠load-bound \
         marks runs where oha used more CPU than the server: their requests/s is oha's limit, \
         so compare those servers by CPU µs (the last column's ratio). Only answers checked \
         against the route table count; a FAILED cell says why.\n",
        m.machine.cores,
        m.machine.cpu_model,
        m.machine.memory_gib,
        m.machine.os,
        m.machine.kernel,
        m.machine.git_sha,
        if m.machine.git_dirty { " (dirty)" } else { "" },
        m.machine.oha_version,
        m.duration_s,
        m.warmup_s,
        m.concurrency,
        m.runs,
        match (&m.server_cpus, &m.load_cpus) {
            (None, None) => String::new(),
            (server, load) => format!(
                ", servers on CPUs {} and load on CPUs {}",
                server.as_deref().unwrap_or("any"),
                load.as_deref().unwrap_or("any")
            ),
        },
    );
    for category in categories(results) {
        let head = header(results);
        let _ = writeln!(
            out,
            "## {category}\n\n| {} |\n|{}|",
            head.join(" | "),
            vec!["---"; head.len()].join("|")
        );
        for row in rows(results, category) {
            let _ = writeln!(out, "| {} |", row.join(" | ").replace('\n', " "));
        }
        out.push('\n');
    }
    for note in unsupported_notes(results) {
        let _ = writeln!(out, "- Unsupported: {note}");
    }
    let _ = writeln!(
        out,
        "\n## Details\n\nLatency percentiles in ms; CPU in % of one core (the server's whole process \
         tree, and the load generator: oha, or the harness's own SSE/WebSocket clients); peak RSS \
         of the server's process tree; server CPU µs per answered request (or event, or round \
         trip). ⚠ marks runs where the load generator used more CPU than the server, so the \
         throughput may be the load generator's limit: compare those servers by CPU µs.\n\n\
         | workload | server | p50 | p90 | p99 | p99.9 | server CPU | CPU µs | peak RSS MiB | load CPU |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for w in &results.workloads {
        for s in &w.servers {
            if let Outcome::Ok {
                p50_ms,
                p90_ms,
                p99_ms,
                p999_ms,
                server_cpu_pct,
                server_cpu_us,
                server_peak_rss_mib,
                load_cpu_pct,
                load_bound,
                ..
            } = &s.outcome
            {
                let pct =
                    |v: &Option<f64>| v.map(|v| format!("{v:.0}%")).unwrap_or_else(|| "–".into());
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.0}%{} |",
                    w.name,
                    s.server,
                    fmt_ms(*p50_ms),
                    fmt_ms(*p90_ms),
                    fmt_ms(*p99_ms),
                    fmt_ms(*p999_ms),
                    pct(server_cpu_pct),
                    fmt_us(*server_cpu_us),
                    server_peak_rss_mib
                        .map(|v| format!("{v:.1}"))
                        .unwrap_or_else(|| "–".into()),
                    load_cpu_pct,
                    if *load_bound { " ⚠" } else { "" }
                );
            }
        }
    }
    let _ = writeln!(out, "\nServers:\n");
    for server in &m.servers {
        let _ = writeln!(
            out,
            "- {}: `{}`",
            server.kind.name(),
            server.command.join(" ")
        );
    }
    out
}

pub(crate) const COLORS: [RGBColor; 7] = [
    RGBColor(0xd9, 0x48, 0x0f),
    RGBColor(0x1c, 0x7e, 0xd6),
    RGBColor(0x2b, 0x8a, 0x3e),
    RGBColor(0x86, 0x2e, 0x9c),
    RGBColor(0xe6, 0x77, 0x00),
    RGBColor(0x49, 0x50, 0x57),
    RGBColor(0x0b, 0x72, 0x85),
];

fn cpu_of(w: &WorkloadResult, server: &str) -> Option<f64> {
    w.servers
        .iter()
        .find(|s| s.server == server)
        .and_then(|s| match s.outcome {
            Outcome::Ok { server_cpu_us, .. } => server_cpu_us,
            Outcome::Failed { .. } | Outcome::Unsupported { .. } => None,
        })
}

/// What one panel of the chart shows.
#[derive(Clone, Copy)]
enum Metric {
    /// Median throughput, as a share of the workload's fastest server.
    Throughput,
    /// Server CPU µs per answered request, as a share of the workload's most expensive.
    CpuPerRequest,
}

impl Metric {
    fn value(self, w: &WorkloadResult, server: &str) -> Option<f64> {
        match self {
            Metric::Throughput => median_of(w, server),
            Metric::CpuPerRequest => cpu_of(w, server),
        }
    }

    fn caption(self) -> &'static str {
        match self {
            Metric::Throughput => {
                "Throughput per workload, as a share of the fastest server (higher is better)"
            }
            Metric::CpuPerRequest => {
                "Server CPU µs per request, as a share of the most expensive server (lower is better)"
            }
        }
    }

    fn axis(self) -> &'static str {
        match self {
            Metric::Throughput => "median throughput / the fastest server's median",
            Metric::CpuPerRequest => "server CPU per request / the most expensive server's",
        }
    }

    fn label(self, v: f64) -> String {
        match self {
            Metric::Throughput => fmt_rate(v),
            Metric::CpuPerRequest => format!("{v:.1} µs"),
        }
    }
}

/// A grouped bar chart drawn with plotters: for each workload, each server's median
/// throughput as a share of that workload's fastest server, and below it each server's CPU
/// per request as a share of the most expensive, with the figure printed beside each bar.
/// Text is laid out without font files (plotters' built-in estimate), so no system fonts
/// are needed.
pub fn svg(results: &Results) -> Result<String, String> {
    let names = server_names(results);
    let n = results.workloads.len();
    let group = 13 * names.len() as u32 + 10;
    let panel = 90 + group * n as u32;
    let has_cpu = results
        .workloads
        .iter()
        .any(|w| names.iter().any(|s| cpu_of(w, s).is_some()));
    let size = (960, if has_cpu { 2 * panel } else { panel });
    let mut out = String::new();
    {
        let mut paint = || -> Result<(), Box<dyn std::error::Error>> {
            let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
            root.fill(&WHITE)?;
            if has_cpu {
                let (top, bottom) = root.split_vertically(panel);
                draw(results, &names, Metric::Throughput, &top)?;
                draw(results, &names, Metric::CpuPerRequest, &bottom)?;
            } else {
                draw(results, &names, Metric::Throughput, &root)?;
            }
            root.present()?;
            Ok(())
        };
        paint().map_err(|e| format!("cannot draw the chart: {e}"))?;
    }
    Ok(out)
}

fn draw<DB: DrawingBackend>(
    results: &Results,
    names: &[&str],
    metric: Metric,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let workloads = &results.workloads;
    let n = workloads.len();
    // Workload i is drawn around y = n - 1 - i, top to bottom, its bars inside ±0.4.
    let slot = 0.8 / names.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(metric.caption(), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(140)
        .build_cartesian_2d(0f64..1.3f64, -0.5f64..(n as f64 - 0.5))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|y| {
            let k = y.round();
            if (y - k).abs() > 1e-6 || k < 0.0 || k as usize >= n {
                return String::new();
            }
            workloads[n - 1 - k as usize].name.clone()
        })
        .x_labels(7)
        .x_label_formatter(&|x| format!("{:.0}%", x * 100.0))
        .x_desc(metric.axis())
        .draw()?;
    for (j, name) in names.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for (i, w) in workloads.iter().enumerate() {
            let top = (n - 1 - i) as f64 + 0.4 - j as f64 * slot;
            let bottom = top - slot * 0.9;
            let best = names
                .iter()
                .filter_map(|s| metric.value(w, s))
                .fold(0.0, f64::max);
            match metric.value(w, name) {
                Some(v) if best > 0.0 => {
                    bars.push(Rectangle::new(
                        [(0.0, bottom), (v / best, top)],
                        color.filled(),
                    ));
                    labels.push(Text::new(
                        metric.label(v),
                        (v / best + 0.01, top),
                        ("sans-serif", 10).into_font().color(&BLACK),
                    ));
                }
                _ if w.servers.iter().any(|s| s.server == *name) => {
                    let what = if unsupported(w, name) {
                        "unsupported"
                    } else if median_of(w, name).is_some() {
                        "not measured"
                    } else {
                        "FAILED"
                    };
                    labels.push(Text::new(
                        format!("{name}: {what}"),
                        (0.01, top),
                        ("sans-serif", 10).into_font().color(&RED),
                    ));
                }
                _ => {}
            }
        }
        chart
            .draw_series(bars)?
            .label(name.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart.draw_series(labels)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Reads a results.json written by `harness run` (also one of an older run: fields added
/// since are empty).
pub fn read(path: &Path) -> Result<Results, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a results file: {e}", path.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(name), text)
        .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
}

/// Writes summary.md and chart.svg into `dir`.
pub fn render(results: &Results, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(dir, "summary.md", &markdown(results))?;
    write(dir, "chart.svg", &svg(results)?)
}

/// Writes results.json, summary.md and chart.svg into `dir`.
pub fn write_all(results: &Results, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(
        dir,
        "results.json",
        &(serde_json::to_string_pretty(results).map_err(|e| e.to_string())? + "\n"),
    )?;
    render(results, dir)
}

/// Writes `latest.md` beside `dir`: the summary of the run in `dir`, with links to it.
pub fn write_latest(results: &Results, dir: &Path) -> Result<(), String> {
    let summary = markdown(results);
    if let Some(parent) = dir.parent() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let latest =
            format!("{summary}\nFiles: [{name}/]({name}/), chart: ![chart]({name}/chart.svg)\n");
        std::fs::write(parent.join("latest.md"), latest)
            .map_err(|e| format!("cannot write latest.md: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_get_thousands_separators() {
        assert_eq!(fmt_rate(1234567.4), "1,234,567");
        assert_eq!(fmt_rate(999.0), "999");
        assert_eq!(fmt_rate(0.0), "0");
    }
}
