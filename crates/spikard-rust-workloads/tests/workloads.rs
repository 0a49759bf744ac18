//! Every route of the table answers its sample correctly, on the engine and on the bare
//! ceiling, and varied values give varied answers.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::json;
use spikard_rust_workloads::Flavor;
use spikard_workloads::{check, json_matches, table, Expected};
use std::time::Duration;

async fn table_samples_answer_as_expected(flavor: Flavor) {
    let server = start_with(
        flavor,
        spikard_core::DEFAULT_BODY_LIMIT,
        Duration::from_secs(10),
    )
    .await;
    let mut checked = 0;
    for workload in table() {
        if workload.expected == Expected::WebSocketEcho || workload.needs_database() {
            continue; // tests/streaming.rs, tests/database.rs
        }
        if workload.python_only {
            continue;
        }
        if flavor == Flavor::Bare && workload.name == "fault" {
            continue; // the ceiling does not produce problem documents
        }
        let reply = send_sample(server.addr, workload).await;
        if let Err(err) = check(
            &workload.expected,
            reply.status,
            reply.content_type(),
            &reply.body,
        ) {
            panic!("{flavor:?} {}: {err}", workload.name);
        }
        checked += 1;
    }
    assert!(checked >= 20);
}

#[tokio::test]
async fn engine_answers_every_sample() {
    table_samples_answer_as_expected(Flavor::Engine).await;
}

#[tokio::test]
async fn bare_ceiling_answers_every_sample() {
    table_samples_answer_as_expected(Flavor::Bare).await;
}

#[tokio::test]
async fn json_bodies_are_decoded_not_echoed() {
    let server = start().await;
    for (id, count, name) in [(1, -5, "é ü"), (987_654_321, 0, "a\"quote"), (-3, 7, "")] {
        let body = json!({
            "id": id, "name": name, "active": id > 0, "count": count,
            "tags": [format!("t{id}")], "unknown": {"dropped": true}
        });
        let reply = post_json(server.addr, "/json/small", &body).await;
        assert_eq!(reply.status, 200);
        let want = json!({"id": id, "name": name, "active": id > 0, "count": count,
                          "tags": [format!("t{id}")]});
        json_matches(&want, &reply.json()).unwrap();
    }
    // Whitespace and key order of the request do not matter: the answer is re-encoded.
    let spaced = "{ \"tags\": [], \"count\": 1, \"active\": false, \"name\": \"n\", \"id\": 2 }";
    let reply = send(
        server.addr,
        "POST",
        "/json/small",
        &[("content-type", "application/json")],
        spaced,
    )
    .await;
    assert_eq!(
        &reply.body[..],
        br#"{"id":2,"name":"n","active":false,"count":1,"tags":[]}"#
    );

    let mut catalog = spikard_workloads::fixtures::catalog();
    catalog["items"].as_array_mut().unwrap().truncate(3);
    catalog["items"][1]["price"] = json!(0.5);
    catalog["page"] = json!(9);
    let reply = post_json(server.addr, "/json/large", &catalog).await;
    json_matches(&catalog, &reply.json()).unwrap();
}

#[tokio::test]
async fn path_values_vary() {
    let server = start().await;
    for id in ["abc", "Z-9_x", "caf%C3%A9"] {
        let reply = get(server.addr, &format!("/path/simple/{id}")).await;
        let decoded = id.replace("%C3%A9", "é");
        assert_eq!(reply.json(), json!({ "id": decoded }));
    }
    let reply = get(server.addr, "/path/multiple/u1/p2").await;
    assert_eq!(reply.json(), json!({"user_id": "u1", "post_id": "p2"}));
    let reply = get(server.addr, "/path/deep/o/t/p/r/i").await;
    assert_eq!(
        reply.json(),
        json!({"org": "o", "team": "t", "project": "p", "resource": "r", "id": "i"})
    );
    for n in [i64::MIN, -1, 0, 7, i64::MAX] {
        assert_eq!(
            get(server.addr, &format!("/path/int/{n}")).await.json(),
            json!({ "id": n })
        );
    }
    let reply = get(
        server.addr,
        "/path/uuid/6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({"id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8"})
    );
    for (date, weekday) in [("2024-02-29", 4), ("2000-01-01", 6), ("2024-01-21", 7)] {
        let reply = get(server.addr, &format!("/path/date/{date}")).await;
        assert_eq!(reply.json(), json!({"date": date, "day_of_week": weekday}));
    }
}

#[tokio::test]
async fn query_values_and_defaults() {
    let server = start().await;
    let reply = get(server.addr, "/query/few?q=x+y&limit=3").await;
    assert_eq!(reply.json(), json!({"q": "x y", "page": 1, "limit": 3}));
    let reply = get(server.addr, "/query/medium?category=books").await;
    assert_eq!(
        reply.json(),
        json!({"category": "books", "tags": [], "min_price": null, "max_price": null,
               "sort": "relevance", "order": "asc", "page": 1, "limit": 20})
    );
    let reply = get(
        server.addr,
        "/query/medium?category=c&tags=a&tags=b,c&order=desc&max_price=2.5",
    )
    .await;
    let answer = reply.json();
    assert_eq!(answer["tags"], json!(["a", "b", "c"]));
    assert_eq!(answer["order"], "desc");
    assert_eq!(answer["max_price"], 2.5);
    let reply = get(
        server.addr,
        "/query/many?q=only&in_stock=1&include_archived=0",
    )
    .await;
    let answer = reply.json();
    assert_eq!(answer["q"], "only");
    assert_eq!(answer["in_stock"], true);
    assert_eq!(answer["include_archived"], false);
    assert_eq!(answer["fields"], json!([]));
    assert_eq!(answer["brand"], serde_json::Value::Null);
    assert_eq!(answer.as_object().unwrap().len(), 16);
}

#[tokio::test]
async fn forms_multipart_and_mixed_vary() {
    let server = start().await;
    let reply = post_form(
        server.addr,
        "/urlencoded/simple",
        "city=Paris&age=41&name=Ana+Lu&email=a%2Bb%40c.io",
    )
    .await;
    assert_eq!(
        reply.json(),
        json!({"name": "Ana Lu", "email": "a+b@c.io", "age": 41, "city": "Paris"})
    );

    let complex = spikard_workloads::fixtures::URLENCODED_COMPLEX
        .replace("interests=hiking&", "")
        .replace("age=34", "age=70")
        .replace("newsletter=true", "newsletter=false");
    let answer = post_form(server.addr, "/urlencoded/complex", &complex)
        .await
        .json();
    assert_eq!(answer["interests"], json!(["jazz music", "cafés"]));
    assert_eq!(answer["age"], 70);
    assert_eq!(answer["newsletter"], false);

    for (size, seed) in [(0usize, 1u32), (3, 2), (5000, 3)] {
        let file = spikard_workloads::fixtures::file_bytes(size, seed);
        let body =
            spikard_workloads::fixtures::multipart_body("varied", "v.dat", "image/png", &file);
        let ct = spikard_workloads::fixtures::multipart_content_type();
        let reply = send(
            server.addr,
            "POST",
            "/multipart/medium",
            &[("content-type", &ct)],
            body,
        )
        .await;
        assert_eq!(
            reply.json(),
            json!({"description": "varied", "filename": "v.dat", "content_type": "image/png",
                   "size": size, "crc32": crc32fast::hash(&file)})
        );
    }

    let post = json!({"title": "t", "body": "b", "tags": [], "extra": 1});
    let reply = post_json(server.addr, "/api/v1/users/-9/posts?notify=1", &post).await;
    assert_eq!(
        reply.json(),
        json!({"user_id": -9, "publish": false, "notify": true, "post": {"title": "t", "body": "b", "tags": []}})
    );
}
