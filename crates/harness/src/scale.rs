//! `harness scale`: the same plan at several server sizes. For N workers every server runs
//! on the first N CPUs the harness may use and the load generator on the rest; the report
//! is throughput (and server CPU per request) against cores, as a table and an SVG chart.

use crate::report::COLORS;
use crate::runner::{Outcome, Results};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// One server size and its run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub workers: usize,
    pub results: Results,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scale {
    pub points: Vec<Point>,
}

/// Reads the scale.json of `harness scale`.
pub fn read(path: &Path) -> Result<Scale, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a scale.json file: {e}", path.display()))
}

/// The CPUs this process may run on (its affinity mask), in order.
pub fn usable_cpus() -> Result<Vec<usize>, String> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| format!("cannot read the CPU affinity: {e}"))?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// A `taskset -c` list of `cpus`, runs written as ranges (`0-3,6`).
pub fn cpu_list(cpus: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    parts.join(",")
}

/// For each worker count: (workers, server CPUs, load CPUs). A count that leaves the load
/// generator no CPU is refused, before anything runs.
pub fn placements(
    counts: &[usize],
    cpus: &[usize],
) -> Result<Vec<(usize, String, String)>, String> {
    counts
        .iter()
        .map(|&n| {
            if n == 0 {
                return Err("--workers 0: a server needs at least one worker".to_owned());
            }
            if n >= cpus.len() {
                return Err(format!(
                    "--workers {n} would leave the load generator no CPU: the harness may use \
                     {} CPU(s) ({}), and the servers and oha get separate CPUs, so a count can \
                     be at most {}",
                    cpus.len(),
                    cpu_list(cpus),
                    cpus.len().saturating_sub(1)
                ));
            }
            Ok((n, cpu_list(&cpus[..n]), cpu_list(&cpus[n..])))
        })
        .collect()
}

/// (median throughput, server CPU µs per request) of `server` on `workload` at `point`.
fn figures(point: &Point, workload: &str, server: &str) -> Option<(f64, Option<f64>)> {
    let w = point
        .results
        .workloads
        .iter()
        .find(|w| w.name == workload)?;
    match &w.servers.iter().find(|s| s.server == server)?.outcome {
        Outcome::Ok {
            median,
            server_cpu_us,
            ..
        } => Some((*median, *server_cpu_us)),
        Outcome::Failed { .. } | Outcome::Unsupported { .. } => None,
    }
}

/// Every (workload, server) pair measured at some point, in the order of the runs.
fn pairs(scale: &Scale) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for point in &scale.points {
        for w in &point.results.workloads {
            for s in &w.servers {
                let pair = (w.name.clone(), s.server.clone());
                if !out.contains(&pair) {
                    out.push(pair);
                }
            }
        }
    }
    out
}

fn rows(scale: &Scale) -> (Vec<String>, Vec<Vec<String>>) {
    let mut header = vec!["workload".to_owned(), "server".to_owned()];
    header.extend(scale.points.iter().map(|p| {
        format!(
            "{} worker{}",
            p.workers,
            if p.workers == 1 { "" } else { "s" }
        )
    }));
    let rows = pairs(scale)
        .into_iter()
        .map(|(workload, server)| {
            let mut row = vec![workload.clone(), server.clone()];
            for point in &scale.points {
                row.push(match figures(point, &workload, &server) {
                    Some((rate, cpu)) => format!(
                        "{} ({} µs CPU)",
                        crate::report::fmt_rate(rate),
                        cpu.map(|c| format!("{c:.1}")).unwrap_or_else(|| "–".into())
                    ),
                    None => "–".into(),
                });
            }
            row
        })
        .collect();
    (header, rows)
}

/// The terminal table: requests/s (server CPU µs per request) per worker count.
pub fn terminal(scale: &Scale) -> String {
    let (header, rows) = rows(scale);
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    for row in rows {
        table.add_row(row);
    }
    table.to_string()
}

/// `scale.md`.
pub fn markdown(scale: &Scale) -> String {
    let mut out = String::from("# Scaling\n\n");
    if let Some(first) = scale.points.first() {
        let m = &first.results.metadata;
        let _ = writeln!(
            out,
            "{} cores ({}); git {}; {} s per run, {} connections, median of {} runs. For N \
             workers every server ran N workers on the first N CPUs and oha on the others. \
             Cells: requests/s (server CPU µs per request). Each count's full report is in \
             `workers-N/`.\n",
            m.machine.cores,
            m.machine.cpu_model,
            m.machine.git_sha,
            m.duration_s,
            m.concurrency,
            m.runs
        );
    }
    for point in &scale.points {
        let m = &point.results.metadata;
        let _ = writeln!(
            out,
            "- {} worker(s): servers on CPUs {}, load on CPUs {}",
            point.workers,
            m.server_cpus.as_deref().unwrap_or("any"),
            m.load_cpus.as_deref().unwrap_or("any")
        );
    }
    let (header, rows) = rows(scale);
    let _ = writeln!(
        out,
        "\n| {} |\n|{}|",
        header.join(" | "),
        vec!["---"; header.len()].join("|")
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

/// One line chart per workload: requests/s against worker count, a line per server.
pub fn svg(scale: &Scale) -> Result<String, String> {
    let mut workloads: Vec<String> = Vec::new();
    let mut servers: Vec<String> = Vec::new();
    for (w, s) in pairs(scale) {
        if !workloads.contains(&w) {
            workloads.push(w);
        }
        if !servers.contains(&s) {
            servers.push(s);
        }
    }
    let height = 320 * workloads.len().max(1) as u32;
    let mut out = String::new();
    {
        let mut paint = || -> Result<(), Box<dyn std::error::Error>> {
            let root = SVGBackend::with_string(&mut out, (800, height)).into_drawing_area();
            root.fill(&WHITE)?;
            let panels = root.split_evenly((workloads.len().max(1), 1));
            for (workload, area) in workloads.iter().zip(panels.iter()) {
                panel(scale, workload, &servers, area)?;
            }
            root.present()?;
            Ok(())
        };
        paint().map_err(|e| format!("cannot draw the scaling chart: {e}"))?;
    }
    Ok(out)
}

fn panel<DB: DrawingBackend>(
    scale: &Scale,
    workload: &str,
    servers: &[String],
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), Box<dyn std::error::Error>>
where
    DB::ErrorType: 'static,
{
    let max_workers = scale.points.iter().map(|p| p.workers).max().unwrap_or(1) as f64;
    let max_rate = scale
        .points
        .iter()
        .flat_map(|p| servers.iter().filter_map(|s| figures(p, workload, s)))
        .map(|(rate, _)| rate)
        .fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{workload}: requests/s against server cores"),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_workers + 0.5, 0f64..max_rate * 1.15)?;
    chart
        .configure_mesh()
        .x_desc("server workers (one CPU each)")
        .y_desc("requests/s")
        .y_label_formatter(&|v| format!("{:.0}k", v / 1000.0))
        .draw()?;
    for (j, server) in servers.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        let points: Vec<(f64, f64)> = scale
            .points
            .iter()
            .filter_map(|p| Some((p.workers as f64, figures(p, workload, server)?.0)))
            .collect();
        if points.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(server.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Writes scale.json, scale.md and scale.svg into `dir`.
pub fn write_all(scale: &Scale, dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
    };
    write(
        "scale.json",
        serde_json::to_string_pretty(scale).map_err(|e| e.to_string())? + "\n",
    )?;
    write("scale.md", markdown(scale))?;
    write("scale.svg", svg(scale)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_written_as_ranges() {
        assert_eq!(cpu_list(&[0]), "0");
        assert_eq!(cpu_list(&[0, 1, 2, 3]), "0-3");
        assert_eq!(cpu_list(&[0, 1, 4, 6, 7]), "0-1,4,6-7");
    }

    #[test]
    fn counts_that_leave_no_load_cpu_are_refused() {
        let two = [0, 1];
        assert_eq!(
            placements(&[1], &two),
            Ok(vec![(1, "0".to_owned(), "1".to_owned())])
        );
        let refused = placements(&[1, 2], &two).unwrap_err();
        assert!(refused.contains("--workers 2 would leave the load generator no CPU"));
        assert!(refused.contains("at most 1"));
        assert!(placements(&[0], &two).is_err());
        let sixteen: Vec<usize> = (0..16).collect();
        assert_eq!(
            placements(&[1, 4, 8], &sixteen).unwrap()[1],
            (4, "0-3".to_owned(), "4-15".to_owned())
        );
    }
}
