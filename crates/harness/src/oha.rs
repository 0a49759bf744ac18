//! oha: finding it, running it once per endpoint, and the serde model of its JSON output.
//!
//! The model is tolerant: every number is optional (oha writes `null` for NaN) and unknown
//! fields are ignored, so newer oha versions still parse. oha exits 0 and reports
//! `successRate: 1.0` even when every answer was a 4xx; [`Outcome::failure`] reads the status
//! and error distributions instead.

use serde::Deserialize;
use serde_json::Value;
use spikard_workloads::Workload;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub success_rate: Option<f64>,
    pub total: Option<f64>,
    pub slowest: Option<f64>,
    pub fastest: Option<f64>,
    pub average: Option<f64>,
    pub requests_per_sec: Option<f64>,
    pub total_data: Option<f64>,
    pub size_per_request: Option<f64>,
    pub size_per_sec: Option<f64>,
}

/// oha's JSON output, the parts the harness reads.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    pub summary: Summary,
    #[serde(default)]
    pub latency_percentiles: BTreeMap<String, Option<f64>>,
    #[serde(default)]
    pub status_code_distribution: BTreeMap<String, u64>,
    #[serde(default)]
    pub error_distribution: BTreeMap<String, u64>,
}

/// The error oha reports for requests still open when `-z` ends; not a failure.
pub const DEADLINE: &str = "aborted due to deadline";

impl Output {
    pub fn parse(json: &str) -> Result<Output, String> {
        serde_json::from_str(json).map_err(|e| format!("cannot parse oha's JSON: {e}"))
    }

    /// A latency percentile in seconds (`"p99"`, `"p99.9"`).
    pub fn percentile(&self, name: &str) -> Option<f64> {
        self.latency_percentiles.get(name).copied().flatten()
    }

    /// Why this run does not count, if it does not: any non-2xx answer, any transport error
    /// other than the deadline, or no answer at all.
    pub fn failure(&self) -> Option<String> {
        let bad: Vec<String> = self
            .status_code_distribution
            .iter()
            .filter(|(code, _)| !code.starts_with('2'))
            .map(|(code, n)| format!("{n}× HTTP {code}"))
            .collect();
        let errors: Vec<String> = self
            .error_distribution
            .iter()
            .filter(|(error, _)| error.as_str() != DEADLINE)
            .map(|(error, n)| format!("{n}× {error}"))
            .collect();
        let answered: u64 = self.status_code_distribution.values().sum();
        match (bad.is_empty(), errors.is_empty(), answered) {
            (true, true, 0) => Some("no answers".into()),
            (true, true, _) => None,
            _ => Some([bad, errors].concat().join(", ")),
        }
    }
}

/// `oha --version`, or a message naming the install command.
pub fn version() -> Result<String, String> {
    duct::cmd!("oha", "--version")
        .stderr_null()
        .read()
        .map(|v| v.trim().to_owned())
        .map_err(|_| {
            "oha is not installed: run `cargo install oha --locked` (or `make oha`)".to_owned()
        })
}

/// The oha command line for one endpoint of `workload` on `base_url`.
pub fn args(
    workload: &Workload,
    base_url: &str,
    body_file: Option<&Path>,
    duration: Duration,
    concurrency: usize,
) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-tui".into(),
        "--output-format".into(),
        "json".into(),
        "--disable-compression".into(),
        "-z".into(),
        format!("{}ms", duration.as_millis()),
        "-c".into(),
        concurrency.to_string(),
        "-m".into(),
        workload.method.into(),
    ];
    if let Some(content_type) = &workload.sample.content_type {
        args.extend(["-T".into(), content_type.clone()]);
    }
    if let Some(file) = body_file {
        args.extend(["-D".into(), file.display().to_string()]);
    }
    args.push(format!(
        "{}{}",
        base_url.trim_end_matches('/'),
        workload.sample.target
    ));
    args
}

/// Runs oha (optionally under `taskset -c CPUS`) and returns its parsed and raw output.
pub fn run(args: &[String], pin: Option<&str>) -> Result<(Output, Value), String> {
    let expression = match pin {
        Some(cpus) => {
            let mut all = vec!["-c".to_owned(), cpus.to_owned(), "oha".to_owned()];
            all.extend_from_slice(args);
            duct::cmd("taskset", all)
        }
        None => duct::cmd("oha", args),
    };
    let out = expression
        .stderr_capture()
        .stdout_capture()
        .unchecked()
        .run()
        .map_err(|e| format!("cannot run oha: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "oha failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let raw: Value =
        serde_json::from_str(&text).map_err(|e| format!("cannot parse oha's JSON: {e}"))?;
    Ok((Output::parse(&text)?, raw))
}
