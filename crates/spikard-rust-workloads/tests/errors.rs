//! Every error row of WORKLOADS.md, answered by the engine as a problem document.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use spikard_rust_workloads::Flavor;
use std::time::Duration;

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn malformed_bodies_are_400() {
    let server = start().await;
    let reply = send(server.addr, "POST", "/json/small", &[JSON], "{\"id\": 1,").await;
    assert!(reply.problem(400)["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    let reply = send(server.addr, "POST", "/json/small", &[JSON], "").await;
    reply.problem(400);
    let reply = send(server.addr, "POST", "/json/small", &[JSON], "{} trailing").await;
    reply.problem(400);

    let reply = post_form(server.addr, "/urlencoded/simple", "name=%FF%FE&age=1").await;
    reply.problem(400);

    let ct = spikard_workloads::fixtures::multipart_content_type();
    let reply = send(
        server.addr,
        "POST",
        "/multipart/small",
        &[("content-type", &ct)],
        "--nope\r\ngarbage",
    )
    .await;
    reply.problem(400);
    let no_boundary = [("content-type", "multipart/form-data")];
    let reply = send(server.addr, "POST", "/multipart/small", &no_boundary, "x").await;
    reply.problem(400);
}

#[tokio::test]
async fn wrong_or_missing_fields_are_422_naming_each() {
    let server = start().await;
    assert_eq!(
        get(server.addr, "/query/few").await.error_locs(),
        vec![json!(["query", "q"])]
    );
    assert_eq!(
        get(server.addr, "/query/few?q=a&page=abc&limit=1.5")
            .await
            .error_locs(),
        vec![json!(["query", "page"]), json!(["query", "limit"])]
    );
    for bad in ["abc", "1.5", "9223372036854775808"] {
        let locs = get(server.addr, &format!("/path/int/{bad}"))
            .await
            .error_locs();
        assert_eq!(locs, vec![json!(["path", "id"])]);
    }
    get(server.addr, "/path/uuid/not-a-uuid").await.error_locs();
    for bad in ["2024-02-30", "15-01-2024"] {
        get(server.addr, &format!("/path/date/{bad}"))
            .await
            .error_locs();
    }
    let locs = get(
        server.addr,
        "/query/medium?category=c&order=up&min_price=cheap&page=x",
    )
    .await
    .error_locs();
    assert_eq!(
        locs,
        vec![
            json!(["query", "min_price"]),
            json!(["query", "order"]),
            json!(["query", "page"])
        ]
    );
    let locs = get(server.addr, "/query/many?in_stock=yes&include_archived=2")
        .await
        .error_locs();
    assert_eq!(
        locs,
        vec![
            json!(["query", "q"]),
            json!(["query", "in_stock"]),
            json!(["query", "include_archived"])
        ]
    );
    let locs = post_form(server.addr, "/urlencoded/simple", "name=a&age=old")
        .await
        .error_locs();
    assert_eq!(
        locs,
        vec![
            json!(["form", "email"]),
            json!(["form", "age"]),
            json!(["form", "city"])
        ]
    );
    let ct = spikard_workloads::fixtures::multipart_content_type();
    let text_only = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\nx\r\n--{b}--\r\n",
        b = spikard_workloads::fixtures::BOUNDARY
    );
    let reply = send(
        server.addr,
        "POST",
        "/multipart/small",
        &[("content-type", &ct)],
        text_only,
    )
    .await;
    assert_eq!(reply.error_locs(), vec![json!(["form", "file"])]);

    let reply = post_json(
        server.addr,
        "/json/small",
        &json!({"id": 1, "name": "x", "active": true, "tags": []}),
    )
    .await;
    assert_eq!(reply.error_locs(), vec![json!(["body", "count"])]);
    let bad_tag = json!({"id": 1, "name": "x", "active": true, "count": 1, "tags": ["a", 2]});
    let reply = post_json(server.addr, "/json/small", &bad_tag).await;
    assert_eq!(reply.error_locs(), vec![json!(["body", "tags", 1])]);
    let reply = post_json(
        server.addr,
        "/api/v1/users/x/posts?publish=maybe",
        &json!({"title": "t", "body": "b", "tags": []}),
    )
    .await;
    assert_eq!(
        reply.error_locs(),
        vec![json!(["path", "user_id"]), json!(["query", "publish"])]
    );
    for count in ["0", "100001", "many"] {
        get(server.addr, &format!("/sse/{count}"))
            .await
            .error_locs();
    }
}

#[tokio::test]
async fn unknown_path_is_404_and_wrong_method_405_with_allow() {
    let server = start().await;
    get(server.addr, "/no/such/route").await.problem(404);
    get(server.addr, "/path/int/1/extra").await.problem(404);
    let reply = send(server.addr, "DELETE", "/json/small", &[], "").await;
    reply.problem(405);
    assert_eq!(reply.headers["allow"], "POST");
    let reply = send(server.addr, "PUT", "/health", &[], "").await;
    reply.problem(405);
    assert_eq!(reply.headers["allow"], "GET, HEAD");
}

/// Sends only the head of a request declaring `length` body bytes and returns the answer's
/// head: the server must answer before the body arrives.
async fn declared_length_head(
    addr: std::net::SocketAddr,
    target: &str,
    content_type: &str,
    length: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 65536];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let server = start().await;
    let limit = spikard_core::DEFAULT_BODY_LIMIT;
    let head =
        declared_length_head(server.addr, "/json/large", "application/json", limit + 1).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
    assert!(head.contains("application/problem+json"), "{head}");
    // Exactly at the limit is read (and then found to be no JSON document).
    let at_limit = vec![b' '; limit];
    send(server.addr, "POST", "/json/large", &[JSON], at_limit)
        .await
        .problem(400);

    let small = start_with(Flavor::Engine, 1024, Duration::from_secs(10)).await;
    let body = spikard_workloads::fixtures::JSON_SMALL;
    assert_eq!(
        send(small.addr, "POST", "/json/small", &[JSON], body)
            .await
            .status,
        200
    );
    let form = "application/x-www-form-urlencoded";
    let head = declared_length_head(small.addr, "/urlencoded/simple", form, 1025).await;
    assert!(head.starts_with("HTTP/1.1 413 "), "{head}");
}

#[tokio::test]
async fn unsupported_content_types_are_415() {
    let server = start().await;
    let body = spikard_workloads::fixtures::JSON_SMALL;
    let reply = send(
        server.addr,
        "POST",
        "/json/small",
        &[("content-type", "text/plain")],
        body,
    )
    .await;
    reply.problem(415);
    send(server.addr, "POST", "/json/small", &[], body)
        .await
        .problem(415);
    let reply = send(server.addr, "POST", "/urlencoded/simple", &[JSON], "{}").await;
    reply.problem(415);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    send(
        server.addr,
        "POST",
        "/multipart/small",
        &form,
        "description=x",
    )
    .await
    .problem(415);
    // A JSON subtype is JSON.
    let reply = send(
        server.addr,
        "POST",
        "/json/small",
        &[("content-type", "application/vnd.api+json")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn a_panicking_handler_is_500_and_the_server_keeps_serving() {
    let server = start().await;
    for _ in 0..3 {
        let reply = get(server.addr, "/fault").await;
        let doc = reply.problem(500);
        assert!(
            !doc.to_string().contains("on purpose"),
            "the panic message must not leak: {doc}"
        );
        assert_eq!(
            get(server.addr, "/path/int/5").await.json(),
            json!({"id": 5})
        );
    }
}

/// The record the engine must answer for `body` on `/json/small`, or its status, by the body
/// rules of docs/WORKLOADS.md, worked out from serde_json alone: a record decodes (members it
/// does not have skipped unread); else, from serde_json's `Value` (where a repeated key keeps
/// its last value): not JSON (deeper than 127 levels included) 400, a number out of range
/// 422, a value of the wrong shape 422.
fn reference(body: &[u8]) -> Result<spikard_rust_workloads::types::SmallItem, u16> {
    use serde::Deserialize;
    use spikard_rust_workloads::types::SmallItem;
    if let Ok(item) = serde_json::from_slice::<SmallItem>(body) {
        return Ok(item);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => SmallItem::deserialize(value).map_err(|_| 422),
        Err(err) if err.to_string().starts_with("number out of range") => Err(422),
        Err(_) => Err(400),
    }
}

#[tokio::test]
async fn json_bodies_are_judged_by_the_body_rules() {
    let server = start().await;
    let item = |id: &str, name: &str| {
        format!(r#"{{"id":{id},"name":"{name}","active":true,"count":3,"tags":["x"]}}"#)
            .into_bytes()
    };
    let mut invalid_utf8 = item("7", "ab");
    let at = invalid_utf8.iter().position(|&b| b == b'a').unwrap();
    invalid_utf8[at] = 0xff;
    let bodies: Vec<Vec<u8>> = vec![
        item("7", "plain"),
        item("-9223372036854775808", "min"),
        item("9223372036854775808", "one past i64"),
        item("1e400", "huge"),
        item("1.0", "float for an int"),
        item("01", "leading zero"),
        item("NaN", "nan"),
        item("7", r"\ud800 lone surrogate"),
        item("7", r"\u00e9t\u00e9 escaped"),
        item("7", "tab\tin a string"),
        invalid_utf8,
        br#"{"id":1,"id":2,"name":"dup","active":true,"count":3,"tags":[]}"#.to_vec(),
        br#"{"id":1,"name":"comma","active":true,"count":3,"tags":[],}"#.to_vec(),
        br#"{"id":1,"name":"extra","active":true,"count":3,"tags":[],"more":{"a":[1,2]}}"#.to_vec(),
        format!(
            r#"{{"id":1,"name":"deep","active":true,"count":3,"tags":[],"more":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )
        .into_bytes(),
        b"\xef\xbb\xbf{\"id\":1}".to_vec(),
        // Deeper than any decoder's stack: refused, and the server lives on.
        format!(
            r#"{{"id":1,"name":"deeper","active":true,"count":3,"tags":[],"more":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        )
        .into_bytes(),
    ];
    for body in bodies {
        let expected_item = reference(&body);
        let expected = expected_item
            .as_ref()
            .map_or_else(|status| *status, |_| 200);
        let reply = send(server.addr, "POST", "/json/small", &[JSON], body.clone()).await;
        assert_eq!(
            reply.status,
            expected,
            "{} → {}",
            String::from_utf8_lossy(&body),
            String::from_utf8_lossy(&reply.body)
        );
        if let Ok(sent) = expected_item {
            let sent = serde_json::to_value(sent).unwrap();
            let got: Value = serde_json::from_slice(&reply.body).unwrap();
            for key in ["id", "name", "active", "count", "tags"] {
                assert_eq!(got[key], sent[key], "{key}");
            }
        }
    }
    assert_eq!(get(server.addr, "/health").await.status, 200);
}
