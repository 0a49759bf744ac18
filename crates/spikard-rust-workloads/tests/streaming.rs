//! SSE event format and count; WebSocket echo of text, binary and a 70 KB message.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn sse_sends_count_tick_events_then_ends() {
    let server = start().await;
    for count in [1u64, 3, 2500] {
        let reply = get(server.addr, &format!("/sse/{count}")).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.content_type(), "text/event-stream");
        let text = std::str::from_utf8(&reply.body).unwrap();
        assert_eq!(text, spikard_workloads::sse_body(count));
        assert_eq!(text.matches("event: tick\n").count() as u64, count);
        let last = format!("data: {{\"seq\":{}}}\n\n", count - 1);
        assert!(text.ends_with(&last));
    }
}

#[tokio::test]
async fn websocket_echoes_text_binary_and_large_messages() {
    let server = start().await;
    let url = format!("ws://{}/ws/echo", server.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let big: String = (0..70_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let messages = vec![
        Message::text("hello"),
        Message::binary(vec![0u8, 255, 1, 254]),
        Message::text("ünïcödé ✓"),
        Message::text(big),
        Message::binary(spikard_workloads::fixtures::file_bytes(70_000, 5)),
    ];
    for message in messages {
        ws.send(message.clone()).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, message);
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn plain_get_on_a_websocket_route_is_a_problem() {
    let server = start().await;
    get(server.addr, "/ws/echo").await.problem(400);
}
