//! Checking database answers against the database itself (`feature = "db"`): the row holds
//! the number the server answered, after `updates` the table holds the returned numbers, and
//! the fortunes page is byte for byte the one the table gives.

use crate::DbCheck;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use tokio_postgres::{Client, NoTls};

/// Connects to `url`; the connection is driven by a task on the current runtime.
pub async fn connect(url: &str) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("cannot connect to the database at {url}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Waits until no other session of this database is running a statement or holding a
/// transaction open (a server still finishing the requests of a run that has ended), for at
/// most `limit`.
pub async fn quiet(client: &Client, limit: std::time::Duration) -> Result<(), String> {
    let start = std::time::Instant::now();
    loop {
        let busy: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
                 AND state <> 'idle'",
                &[],
            )
            .await
            .map_err(|e| format!("cannot read pg_stat_activity: {e}"))?
            .get(0);
        if busy == 0 {
            return Ok(());
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "{busy} other database session(s) still busy after {} s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// One `world` row as the servers answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct World {
    pub id: i32,
    #[serde(rename = "randomNumber")]
    pub random_number: i32,
}

/// The message of the fortune added at request time (id 0).
pub const ADDED_FORTUNE: &str = "Additional fortune added at request time.";

/// Checks an answer of a database workload.
pub async fn verify(
    check: DbCheck,
    status: u16,
    content_type: &str,
    body: &[u8],
    client: &Client,
) -> Result<(), String> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let want_media = match check {
        DbCheck::Fortunes => "text/html",
        _ => "application/json",
    };
    if status != 200 || media != want_media {
        return Err(format!(
            "status {status} {content_type:?}, expected 200 {want_media}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    match check {
        DbCheck::Row => {
            let row: World =
                serde_json::from_slice(body).map_err(|e| format!("not a world row: {e}"))?;
            held(client, &[row]).await
        }
        DbCheck::Rows { count } => {
            let rows = parse_rows(body, count)?;
            held(client, &rows).await
        }
        DbCheck::Updated { count } => {
            let rows = parse_rows(body, count)?;
            let ids: HashSet<i32> = rows.iter().map(|r| r.id).collect();
            if ids.len() != rows.len() {
                return Err("updates answered the same row twice".into());
            }
            held(client, &rows).await
        }
        DbCheck::Fortunes => {
            if content_type != "text/html; charset=utf-8" {
                return Err(format!(
                    "content type {content_type:?}, expected text/html; charset=utf-8"
                ));
            }
            let want = fortunes_page(client).await?;
            if body == want.as_bytes() {
                Ok(())
            } else {
                let got = String::from_utf8_lossy(body);
                let at = want
                    .bytes()
                    .zip(got.bytes())
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len().min(got.len()));
                let from = at.saturating_sub(40);
                Err(format!(
                    "fortunes page differs at byte {at}: expected …{:?}…, got …{:?}…",
                    want.get(from..(at + 40).min(want.len())).unwrap_or(""),
                    got.get(from..(at + 40).min(got.len())).unwrap_or("")
                ))
            }
        }
    }
}

/// A JSON list of exactly `count` world rows.
pub fn parse_rows(body: &[u8], count: usize) -> Result<Vec<World>, String> {
    let rows: Vec<World> =
        serde_json::from_slice(body).map_err(|e| format!("not a list of world rows: {e}"))?;
    if rows.len() == count {
        Ok(rows)
    } else {
        Err(format!("{} rows, expected {count}", rows.len()))
    }
}

/// Every row's number is the one `world` holds now.
pub async fn held(client: &Client, rows: &[World]) -> Result<(), String> {
    let ids: Vec<i32> = rows.iter().map(|r| r.id).collect();
    let stored: HashMap<i32, i32> = client
        .query(
            "SELECT id, randomnumber FROM world WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(|e| format!("cannot read world: {e}"))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for row in rows {
        match stored.get(&row.id) {
            None => return Err(format!("no world row with id {}", row.id)),
            Some(&n) if n != row.random_number => {
                return Err(format!(
                    "row {} holds {n}, the answer said {}",
                    row.id, row.random_number
                ))
            }
            Some(_) => {}
        }
        if !(1..=10_000).contains(&row.random_number) {
            return Err(format!(
                "randomNumber {} outside 1..10000",
                row.random_number
            ));
        }
    }
    Ok(())
}

/// The fortunes page the table gives: every row plus the one added at request time, sorted
/// by message, escaped.
pub async fn fortunes_page(client: &Client) -> Result<String, String> {
    let mut fortunes: Vec<(i32, String)> = client
        .query("SELECT id, message FROM fortune", &[])
        .await
        .map_err(|e| format!("cannot read fortune: {e}"))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    fortunes.push((0, ADDED_FORTUNE.to_owned()));
    fortunes.sort_by(|a, b| a.1.cmp(&b.1));
    let mut page = String::from(
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>",
    );
    for (id, message) in &fortunes {
        page.push_str(&format!("<tr><td>{id}</td><td>"));
        for c in message.chars() {
            match c {
                '&' => page.push_str("&amp;"),
                '<' => page.push_str("&lt;"),
                '>' => page.push_str("&gt;"),
                '"' => page.push_str("&quot;"),
                '\'' => page.push_str("&#x27;"),
                c => page.push(c),
            }
        }
        page.push_str("</td></tr>");
    }
    page.push_str("</table></body></html>");
    Ok(page)
}
