//! Test support: a real server on an ephemeral port and a small HTTP/1.1 client.
#![allow(dead_code, clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use spikard_core::ServerConfig;
use spikard_rust_workloads::{router, Flavor};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub struct Server {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the engine server (or the bare one) on 127.0.0.1:0 in this test's runtime.
pub async fn start_with(flavor: Flavor, body_limit: usize, header_timeout: Duration) -> Server {
    let rules = spikard_core::BodyRules {
        limit: body_limit,
        timeout: spikard_core::DEFAULT_BODY_TIMEOUT,
    };
    start_rules(flavor, rules, header_timeout).await
}

/// Starts a server with these body rules.
pub async fn start_rules(
    flavor: Flavor,
    rules: spikard_core::BodyRules,
    header_timeout: Duration,
) -> Server {
    let router = router(flavor, rules).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let config = ServerConfig {
        header_read_timeout: header_timeout,
        shutdown_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    tokio::spawn(async move {
        let _ = spikard_core::server::serve(listener, router, &config, async {
            let _ = stopped.await;
        })
        .await;
    });
    Server {
        addr,
        stop: Some(stop),
    }
}

pub async fn start() -> Server {
    start_with(
        Flavor::Engine,
        spikard_core::DEFAULT_BODY_LIMIT,
        Duration::from_secs(10),
    )
    .await
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts a problem document with `status`, and returns it.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.content_type(), "application/problem+json");
        let doc = self.json();
        assert_eq!(doc["status"], status);
        assert!(doc["type"].is_string() && doc["title"].is_string() && doc["detail"].is_string());
        doc
    }

    /// The `loc`s of a 422 problem's errors.
    pub fn error_locs(&self) -> Vec<Value> {
        let doc = self.problem(422);
        doc["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loc"].clone())
            .collect()
    }
}

/// Sends one request on a fresh connection.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body.into())).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, target: &str) -> Reply {
    send(addr, "GET", target, &[], Bytes::new()).await
}

pub async fn post_json(addr: SocketAddr, target: &str, body: &Value) -> Reply {
    let bytes = serde_json::to_vec(body).unwrap();
    send(
        addr,
        "POST",
        target,
        &[("content-type", "application/json")],
        bytes,
    )
    .await
}

pub async fn post_form(addr: SocketAddr, target: &str, body: &str) -> Reply {
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    send(addr, "POST", target, &headers, body.to_owned()).await
}

/// Sends the sample request of a workload of the table.
pub async fn send_sample(addr: SocketAddr, workload: &spikard_workloads::Workload) -> Reply {
    let sample = &workload.sample;
    let headers: Vec<(&str, &str)> = sample
        .content_type
        .as_deref()
        .map(|ct| vec![("content-type", ct)])
        .unwrap_or_default();
    send(
        addr,
        workload.method,
        &sample.target,
        &headers,
        sample.body.clone(),
    )
    .await
}
