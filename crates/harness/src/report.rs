//! Reports of a run, each a sink: the terminal tables, `summary.md`, `results.json` and an
//! SVG bar chart. All read the same [`Results`]; none measures anything.

use crate::runner::{Outcome, Results, WorkloadResult};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use std::fmt::Write as _;
use std::path::Path;

fn fmt_rate(v: f64) -> String {
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

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

/// The servers that appear in the results, in order.
fn server_names(results: &Results) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for w in &results.workloads {
        for s in &w.servers {
            if !names.contains(&s.server) {
                names.push(s.server);
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
            Outcome::Failed { .. } => None,
        })
}

/// Rust/Python throughput ratio (how many times faster Rust handlers are).
pub fn rust_python_ratio(w: &WorkloadResult) -> Option<f64> {
    Some(median_of(w, "rust")? / median_of(w, "python")?)
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
                        load_bound,
                        unit,
                        ..
                    }) => format!(
                        "{}{} ({}–{}) p99 {} ms{}",
                        fmt_rate(*median),
                        if *unit == "requests/s" {
                            String::new()
                        } else {
                            format!(" {unit}")
                        },
                        fmt_rate(*min),
                        fmt_rate(*max),
                        fmt_ms(*p99_ms),
                        if *load_bound { " ⚠load-bound" } else { "" }
                    ),
                    Some(Outcome::Failed { reason }) => format!("FAILED: {reason}"),
                    None => "–".into(),
                };
                row.push(cell);
            }
            row.push(
                rust_python_ratio(w)
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_else(|| "–".into()),
            );
            row
        })
        .collect()
}

fn categories(results: &Results) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for w in &results.workloads {
        if !out.contains(&w.category) {
            out.push(w.category);
        }
    }
    out
}

fn header(results: &Results) -> Vec<String> {
    let mut header = vec!["workload".to_owned()];
    header.extend(server_names(results).iter().map(|s| s.to_string()));
    header.push("rust/python".into());
    header
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
         (min–max) over the runs; p99 latency in ms. Only answers checked against the route \
         table count; a FAILED cell says why.\n",
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
        if m.pin {
            ", servers pinned to CPU 0 and load to CPU 1"
        } else {
            ""
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
    let _ = writeln!(
        out,
        "## Details\n\nLatency percentiles in ms; CPU in % of one core (the server's whole process \
         tree, and the load generator: oha, or the harness's own SSE/WebSocket clients); peak RSS \
         of the server's process tree. ⚠ marks runs where the load generator used more CPU than \
         the server, so the figure may be the load generator's limit.\n\n\
         | workload | server | p50 | p90 | p99 | p99.9 | server CPU | peak RSS MiB | load CPU |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for w in &results.workloads {
        for s in &w.servers {
            if let Outcome::Ok {
                p50_ms,
                p90_ms,
                p99_ms,
                p999_ms,
                server_cpu_pct,
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
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0}%{} |",
                    w.name,
                    s.server,
                    fmt_ms(*p50_ms),
                    fmt_ms(*p90_ms),
                    fmt_ms(*p99_ms),
                    fmt_ms(*p999_ms),
                    pct(server_cpu_pct),
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

/// A grouped bar chart: each workload's throughput per server, scaled to that workload's
/// fastest server (figures printed on the bars). Plain SVG text, no fonts needed.
pub fn svg(results: &Results) -> String {
    let names = server_names(results);
    let colors = [
        "#d9480f", "#1c7ed6", "#2b8a3e", "#862e9c", "#e67700", "#495057",
    ];
    let bar_h = 14.0;
    let group_h = bar_h * names.len() as f64 + 12.0;
    let (left, width) = (170.0, 520.0);
    let height = 40.0 + group_h * results.workloads.len() as f64 + 20.0 * names.len() as f64;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"14\">Throughput per workload, relative to the fastest server (higher is better)</text>\n",
        left + width + 140.0
    );
    let mut y = 36.0;
    for w in &results.workloads {
        let best = names
            .iter()
            .filter_map(|n| median_of(w, n))
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{}</text>",
            y + group_h / 2.0,
            w.name
        );
        for (i, name) in names.iter().enumerate() {
            let by = y + i as f64 * bar_h;
            match median_of(w, name) {
                Some(v) if best > 0.0 => {
                    let len = v / best * width;
                    let _ = writeln!(
                        out,
                        "<rect x=\"{left}\" y=\"{by}\" width=\"{len:.1}\" height=\"{}\" fill=\"{}\"/>\
                         <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                        bar_h - 2.0,
                        colors[i % colors.len()],
                        left + len + 4.0,
                        by + bar_h - 4.0,
                        fmt_rate(v)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "<text x=\"{left}\" y=\"{:.1}\" fill=\"#c92a2a\">{name}: FAILED</text>",
                        by + bar_h - 4.0
                    );
                }
            }
        }
        y += group_h;
    }
    for (i, name) in names.iter().enumerate() {
        let ly = y + 10.0 + i as f64 * 18.0;
        let _ = writeln!(
            out,
            "<rect x=\"10\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"28\" y=\"{}\">{name}</text>",
            colors[i % colors.len()],
            ly + 10.0
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Writes results.json, summary.md and chart.svg into `dir`, and `latest.md` beside it.
pub fn write_all(results: &Results, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write(
        "results.json",
        serde_json::to_string_pretty(results).map_err(|e| e.to_string())? + "\n",
    )?;
    let summary = markdown(results);
    write("summary.md", summary.clone())?;
    write("chart.svg", svg(results))?;
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
