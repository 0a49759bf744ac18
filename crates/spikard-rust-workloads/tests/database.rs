//! The database routes against a real PostgreSQL (`DATABASE_URL`; `make test` starts one):
//! every answer is checked against the database, `queries` is clamped as the contract says,
//! and a database that cannot be reached is a 503 problem document.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use spikard_rust_workloads::Flavor;
use spikard_workloads::db::{self, World};
use spikard_workloads::DbCheck;
use std::collections::HashSet;
use std::time::Duration;

/// The database URL, or `None` (the test is skipped) when none is configured and
/// `SPIKARD_REQUIRE_DATABASE` is unset.
fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("SPIKARD_REQUIRE_DATABASE").is_some() => {
            panic!("SPIKARD_REQUIRE_DATABASE is set but DATABASE_URL is not")
        }
        _ => {
            eprintln!("DATABASE_URL is not set: database tests skipped (make test starts one)");
            None
        }
    }
}

async fn verify(client: &tokio_postgres::Client, check: DbCheck, reply: &Reply) {
    if let Err(err) = db::verify(
        check,
        reply.status,
        reply.content_type(),
        &reply.body,
        client,
    )
    .await
    {
        panic!("{check:?}: {err}");
    }
}

/// One test, so every request shares this runtime (the pool's connections live in it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_routes_answer_from_the_database() {
    let Some(url) = database_url() else { return };
    let client = db::connect(&url).await.unwrap();
    let server = start().await;
    let addr = server.addr;

    // Random rows: checked against the table, and not all the same.
    let mut ids = HashSet::new();
    for _ in 0..10 {
        let reply = get(addr, "/db").await;
        verify(&client, DbCheck::Row, &reply).await;
        ids.insert(serde_json::from_slice::<World>(&reply.body).unwrap().id);
    }
    assert!(ids.len() > 1, "ten /db answers, one id: {ids:?}");

    for (target, count) in [
        ("/queries?queries=7", 7),
        ("/queries?queries=20", 20),
        ("/queries", 1),
        ("/queries?queries=0", 1),
        ("/queries?queries=-4", 1),
        ("/queries?queries=foo", 1),
        ("/queries?queries=", 1),
        ("/queries?queries=501", 500),
        ("/queries?queries=99999999999999999999", 500),
    ] {
        let reply = get(addr, target).await;
        verify(&client, DbCheck::Rows { count }, &reply).await;
    }

    // Updates change the table: the answer is what the table now holds, and repeated
    // updates of the same rows are seen.
    for (target, count) in [
        ("/updates?queries=5", 5),
        ("/updates?queries=x", 1),
        ("/updates?queries=600", 500),
    ] {
        let reply = get(addr, target).await;
        verify(&client, DbCheck::Updated { count }, &reply).await;
    }
    let before: i64 = client
        .query_one("SELECT sum(randomnumber)::bigint FROM world", &[])
        .await
        .unwrap()
        .get(0);
    let mut changed = false;
    for _ in 0..5 {
        let reply = get(addr, "/updates?queries=50").await;
        verify(&client, DbCheck::Updated { count: 50 }, &reply).await;
        let after: i64 = client
            .query_one("SELECT sum(randomnumber)::bigint FROM world", &[])
            .await
            .unwrap()
            .get(0);
        changed |= after != before;
    }
    assert!(changed, "250 updated rows left the table's sum unchanged");

    // Fortunes: byte for byte, including a row added now, escaped and sorted.
    let reply = get(addr, "/fortunes").await;
    verify(&client, DbCheck::Fortunes, &reply).await;
    let page = String::from_utf8_lossy(&reply.body);
    assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    assert!(!page.contains("<script>"));
    client
        .execute(
            "INSERT INTO fortune (id, message) VALUES (1000, 'Added by a test: ' || $1::text) ON CONFLICT (id) DO UPDATE SET message = excluded.message",
            &[&format!("{:?}", std::time::SystemTime::now())],
        )
        .await
        .unwrap();
    let reply = get(addr, "/fortunes").await;
    let result = db::verify(
        DbCheck::Fortunes,
        reply.status,
        reply.content_type(),
        &reply.body,
        &client,
    )
    .await;
    client
        .execute("DELETE FROM fortune WHERE id = 1000", &[])
        .await
        .unwrap();
    result.unwrap();
    assert!(String::from_utf8_lossy(&reply.body).contains("Added by a test: "));

    // A connection the database ends while its query waits (`pg_terminate_backend`, as an
    // administrator or a restart ends it) is a 503, and is not handed out again.
    for (route, lock, check) in [
        ("/db", "ACCESS EXCLUSIVE", DbCheck::Row),
        (
            "/updates?queries=3",
            "EXCLUSIVE",
            DbCheck::Updated { count: 3 },
        ),
    ] {
        verify(&client, check, &get(addr, route).await).await;
        let reply = terminated_while_blocked(&client, &url, lock, get(addr, route)).await;
        let doc = reply.problem(503);
        assert!(
            doc["detail"].as_str().unwrap().contains("database"),
            "{doc}"
        );
        for _ in 0..4 {
            verify(&client, check, &get(addr, route).await).await;
        }
    }

    // The bare ceiling serves the same rows.
    let bare = start_with(
        Flavor::Bare,
        spikard_core::DEFAULT_BODY_LIMIT,
        Duration::from_secs(10),
    )
    .await;
    verify(&client, DbCheck::Row, &get(bare.addr, "/db").await).await;
    verify(
        &client,
        DbCheck::Rows { count: 20 },
        &get(bare.addr, "/queries?queries=20").await,
    )
    .await;
    verify(
        &client,
        DbCheck::Updated { count: 20 },
        &get(bare.addr, "/updates?queries=20").await,
    )
    .await;
    verify(
        &client,
        DbCheck::Fortunes,
        &get(bare.addr, "/fortunes").await,
    )
    .await;
}

/// Sends `request` while another connection holds `lock` on `world`, ends the backend whose
/// query waits on it with `pg_terminate_backend`, and returns the reply.
async fn terminated_while_blocked(
    admin: &tokio_postgres::Client,
    url: &str,
    lock: &str,
    request: impl std::future::Future<Output = Reply> + Send + 'static,
) -> Reply {
    let mut holder = db::connect(url).await.unwrap();
    let held = holder.transaction().await.unwrap();
    held.batch_execute(&format!("LOCK TABLE world IN {lock} MODE"))
        .await
        .unwrap();
    let holder_pid: i32 = held
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let request = tokio::spawn(request);
    let mut blocked = Vec::new();
    for _ in 0..1000 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        blocked = admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&holder_pid],
            )
            .await
            .unwrap();
        if !blocked.is_empty() {
            break;
        }
    }
    assert!(
        !blocked.is_empty(),
        "the request's query never waited on the lock"
    );
    for row in &blocked {
        let pid: i32 = row.get(0);
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap();
    }
    let reply = tokio::time::timeout(Duration::from_secs(15), request)
        .await
        .expect("no reply after its connection was ended")
        .unwrap();
    held.rollback().await.unwrap();
    reply
}

/// A database that refuses connections: every database route answers 503 quickly, and the
/// server keeps serving.
#[test]
fn unreachable_database_is_a_503() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spikard-rust-workloads"))
        .args(["--port", "0", "--threads", "1"])
        .env(
            "DATABASE_URL",
            format!("postgresql://nobody@127.0.0.1:{port}/nothing"),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = std::io::BufRead::lines(std::io::BufReader::new(stderr))
        .map_while(Result::ok)
        .find_map(|line| line.split("listening on http://").nth(1).map(str::to_owned))
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let addr = addr.parse().unwrap();
        for target in [
            "/db",
            "/queries?queries=3",
            "/updates?queries=3",
            "/fortunes",
        ] {
            let started = std::time::Instant::now();
            let reply = get(addr, target).await;
            let doc = reply.problem(503);
            assert!(
                doc["detail"].as_str().unwrap().contains("database"),
                "{doc}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(8),
                "{target} took {:?}",
                started.elapsed()
            );
        }
        assert_eq!(get(addr, "/health").await.status, 200);
    });
    let _ = child.kill();
    let _ = child.wait();
}
