//! Checking answers before load: one request per workload, compared with the route table's
//! expected answer (status, content type, body). A wrong answer means no figure.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use spikard_workloads::{check, Expected, Workload};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// One request on a fresh connection to `addr` (`host:port`).
pub async fn fetch(
    addr: &str,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Reply, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(target)
        .header(http::header::HOST, addr);
    if let Some(content_type) = content_type {
        request = request.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(Reply {
        status,
        content_type,
        body,
    })
}

/// `GET /health` answers 200.
pub fn health(addr: &str) -> Result<(), String> {
    let reply = runtime()?.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(2),
            fetch(addr, "GET", "/health", None, Bytes::new()),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
    })?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("/health answered {}", reply.status))
    }
}

/// Sends the workload's sample to the server at `base_url` and checks the answer (a
/// database answer against the database at `database_url`).
pub fn check_workload(
    base_url: &str,
    workload: &Workload,
    database_url: Option<&str>,
) -> Result<(), String> {
    let addr = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    runtime()?.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            if workload.expected == Expected::WebSocketEcho {
                return check_echo(&addr, &workload.sample.target).await;
            }
            // A database answer is checked against the tables, so no other request may be
            // changing them meanwhile: wait for the previous runs' stragglers to finish.
            let client = match (&workload.expected, database_url) {
                (Expected::Db { .. }, Some(url)) => {
                    let client = spikard_workloads::db::connect(url).await?;
                    spikard_workloads::db::quiet(&client, Duration::from_secs(10)).await?;
                    Some(client)
                }
                _ => None,
            };
            let sample = &workload.sample;
            let reply = fetch(
                &addr,
                workload.method,
                &sample.target,
                sample.content_type.as_deref(),
                Bytes::from(sample.body.clone()),
            )
            .await?;
            if let Expected::Db { check } = workload.expected {
                let client =
                    client.ok_or("a database workload needs a database (--database URL|auto)")?;
                return spikard_workloads::db::verify(
                    check,
                    reply.status,
                    &reply.content_type,
                    &reply.body,
                    &client,
                )
                .await;
            }
            check(
                &workload.expected,
                reply.status,
                &reply.content_type,
                &reply.body,
            )
        })
        .await
        .map_err(|_| "no answer within 30 s".to_owned())?
    })
}

/// A WebSocket echo: a text and a binary message come back unchanged.
async fn check_echo(addr: &str, target: &str) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{target}"))
        .await
        .map_err(|e| format!("WebSocket upgrade failed: {e}"))?;
    for message in [
        Message::text("spikard ✓ echo"),
        Message::binary(vec![0u8, 1, 254, 255]),
    ] {
        ws.send(message.clone()).await.map_err(|e| e.to_string())?;
        match ws.next().await {
            Some(Ok(echoed)) if echoed == message => {}
            Some(Ok(other)) => {
                return Err(format!("echo differs: sent {message:?}, got {other:?}"))
            }
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the socket closed before echoing".into()),
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}
