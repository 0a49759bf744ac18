//! Load for what oha cannot drive: SSE events/s over C concurrent streams, and WebSocket echo
//! round trips/s with latency percentiles over C connections. Every stream and every echo is
//! checked; any wrong answer fails the run.

use crate::validate::fetch;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use spikard_workloads::{sse_body, Expected, Workload};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Serialize)]
pub struct StreamRun {
    /// Events per second (SSE) or round trips per second (WebSocket).
    pub per_sec: f64,
    pub unit: &'static str,
    /// Latency percentiles in seconds: a whole stream (SSE) or one round trip (WebSocket).
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub completed: u64,
    pub failure: Option<String>,
}

struct Tally {
    done: u64,
    latencies: Vec<f64>,
    failure: Option<String>,
}

/// Runs the stream workload against `base_url` for `duration` with `concurrency` clients.
pub fn run(
    workload: &Workload,
    base_url: &str,
    duration: Duration,
    concurrency: usize,
) -> Result<StreamRun, String> {
    let addr = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let expected = workload.expected.clone();
    let target = workload.sample.target.clone();
    runtime.block_on(async move {
        let deadline = Instant::now() + duration;
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|client| {
                let (addr, target, expected) = (addr.clone(), target.clone(), expected.clone());
                tokio::spawn(async move {
                    match expected {
                        Expected::Sse { count } => {
                            sse_client(&addr, &target, count, deadline).await
                        }
                        _ => ws_client(&addr, &target, client, deadline).await,
                    }
                })
            })
            .collect();
        let mut total = Tally {
            done: 0,
            latencies: Vec::new(),
            failure: None,
        };
        for task in tasks {
            let tally = task.await.map_err(|e| e.to_string())?;
            total.done += tally.done;
            total.latencies.extend(tally.latencies);
            total.failure = total.failure.or(tally.failure);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (per_item, unit) = match workload.expected {
            Expected::Sse { count } => (count, "events/s"),
            _ => (1, "round trips/s"),
        };
        total.latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| percentile(&total.latencies, p);
        Ok(StreamRun {
            per_sec: (total.done * per_item) as f64 / elapsed,
            unit,
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            p999: pct(99.9),
            completed: total.done,
            failure: total
                .failure
                .or_else(|| (total.done == 0).then(|| "nothing completed".to_owned())),
        })
    })
}

/// The `p`th percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank.min(sorted.len() - 1)).copied()
}

async fn sse_client(addr: &str, target: &str, count: u64, deadline: Instant) -> Tally {
    let want = sse_body(count);
    let mut tally = Tally {
        done: 0,
        latencies: Vec::new(),
        failure: None,
    };
    while Instant::now() < deadline {
        let start = Instant::now();
        match fetch(addr, "GET", target, None, Bytes::new()).await {
            Ok(reply) if reply.status == 200 && reply.body == want.as_bytes() => {
                tally.done += 1;
                tally.latencies.push(start.elapsed().as_secs_f64());
            }
            Ok(reply) => {
                tally.failure = Some(format!(
                    "a stream answered {} with a different body",
                    reply.status
                ));
                break;
            }
            Err(err) => {
                tally.failure = Some(err);
                break;
            }
        }
    }
    tally
}

async fn ws_client(addr: &str, target: &str, client: usize, deadline: Instant) -> Tally {
    let mut tally = Tally {
        done: 0,
        latencies: Vec::new(),
        failure: None,
    };
    let mut ws = match tokio_tungstenite::connect_async(format!("ws://{addr}{target}")).await {
        Ok((ws, _)) => ws,
        Err(err) => {
            tally.failure = Some(format!("WebSocket upgrade failed: {err}"));
            return tally;
        }
    };
    let mut seq = 0u64;
    while Instant::now() < deadline {
        let message = Message::text(format!("client {client} message {seq} {}", "x".repeat(32)));
        seq += 1;
        let start = Instant::now();
        if let Err(err) = ws.send(message.clone()).await {
            tally.failure = Some(err.to_string());
            break;
        }
        match ws.next().await {
            Some(Ok(echoed)) if echoed == message => {
                tally.done += 1;
                tally.latencies.push(start.elapsed().as_secs_f64());
            }
            other => {
                tally.failure = Some(format!("echo failed: {other:?}"));
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    tally
}
