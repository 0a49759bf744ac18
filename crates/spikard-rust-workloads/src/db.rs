//! The database workloads' data access, shared by the engine handlers and the bare ceiling:
//! a tokio-postgres pool (deadpool) from `DATABASE_URL`, prepared statements, and the
//! TechEmpower rules — a random row per query, no caching, `queries` clamped to 1..500.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use serde::Serialize;
use spikard_core::Error;
use std::cell::OnceCell;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

const SELECT_WORLD: &str = "SELECT randomnumber FROM world WHERE id = $1";
const UPDATE_WORLD: &str = "UPDATE world SET randomnumber = v.r \
     FROM (SELECT unnest($1::integer[]) AS id, unnest($2::integer[]) AS r ORDER BY 1) AS v \
     WHERE world.id = v.id";
const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
const ADDED_FORTUNE: &str = "Additional fortune added at request time.";

/// One `world` row.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct World {
    pub id: i32,
    #[serde(rename = "randomNumber")]
    pub random_number: i32,
}

thread_local! {
    /// This thread's pool, from `DATABASE_URL` (none when it is not set). One per serving
    /// thread, so that a connection is driven by the runtime of the thread that uses it.
    static POOL: OnceCell<Result<Pool, String>> = const { OnceCell::new() };
}

/// Connections per serving thread.
const POOL_SIZE: usize = 4;

fn pool() -> Result<Pool, String> {
    let url = std::env::var("DATABASE_URL")
        .map_err(|_| "no database is configured: set DATABASE_URL".to_owned())?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| format!("DATABASE_URL is not a PostgreSQL URL: {e}"))?;
    config.connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(Duration::from_secs(5)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        })
        .build()
        .map_err(|e| format!("cannot build the database pool: {e}"))
}

async fn client() -> Result<deadpool_postgres::Object, Error> {
    let pool = POOL
        .with(|cell| cell.get_or_init(pool).clone())
        .map_err(Error::Unavailable)?;
    pool.get()
        .await
        .map_err(|e| Error::Unavailable(format!("the database cannot be reached: {e}")))
}

/// Whether `err` says the connection is gone or going: closed, an I/O error, class 08
/// (connection exception), or the server ending it (57P01 admin shutdown, 57P02 crash
/// shutdown, 57P03 cannot connect now, as `pg_terminate_backend` or a restart sends).
fn connection_lost(client: &tokio_postgres::Client, err: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    client.is_closed()
        || err.is_closed()
        || err.source().is_some_and(|s| s.is::<std::io::Error>())
        || err.code().is_some_and(|code| {
            let code = code.code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        })
}

/// A failed query: 503 when the connection is lost (it is taken out of the pool, so the
/// next request gets a new one), else 500.
fn failed(client: deadpool_postgres::Object, err: tokio_postgres::Error) -> Error {
    if connection_lost(&client, &err) {
        drop(deadpool_postgres::Object::take(client));
        Error::Unavailable(format!("the database connection failed: {err}"))
    } else {
        Error::Internal(format!("query failed: {err}"))
    }
}

fn random_id() -> i32 {
    fastrand::i32(1..=10_000)
}

/// `queries=N`: an integer (an optional sign and ASCII digits) clamped to 1..500; missing
/// or anything else counts as 1.
pub fn count(raw: Option<&str>) -> usize {
    let Some(raw) = raw else { return 1 };
    match raw.parse::<i64>() {
        Ok(n) => n.clamp(1, 500) as usize,
        // Too many digits for 64 bits: far above 500, or far below 1.
        Err(_)
            if raw.len() > 1
                && raw
                    .trim_start_matches('+')
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
        {
            500
        }
        Err(_) => 1,
    }
}

/// One random row.
pub async fn one() -> Result<World, Error> {
    Ok(fetch(1).await?.remove(0))
}

/// `n` random rows (ids may repeat), fetched by `n` pipelined queries on one connection.
pub async fn fetch(n: usize) -> Result<Vec<World>, Error> {
    fetch_ids(&random_ids(n)).await
}

/// `n` random ids; they may repeat.
pub fn random_ids(n: usize) -> Vec<i32> {
    (0..n).map(|_| random_id()).collect()
}

/// `n` distinct random ids in ascending order.
pub fn distinct_random_ids(n: usize) -> Vec<i32> {
    let mut ids = std::collections::BTreeSet::new();
    while ids.len() < n {
        ids.insert(random_id());
    }
    ids.into_iter().collect()
}

/// The rows of `ids` with the numbers the database holds for them.
pub fn worlds(ids: &[i32], numbers: impl Iterator<Item = i32>) -> Vec<World> {
    ids.iter()
        .zip(numbers)
        .map(|(&id, random_number)| World { id, random_number })
        .collect()
}

/// Gives every row a new random number; the numbers, in the rows' order.
pub fn renumber(rows: &mut [World]) -> Vec<i32> {
    for row in rows.iter_mut() {
        row.random_number = fastrand::i32(1..=10_000);
    }
    rows.iter().map(|r| r.random_number).collect()
}

async fn fetch_ids(ids: &[i32]) -> Result<Vec<World>, Error> {
    let client = client().await?;
    let stmt = match client.prepare_cached(SELECT_WORLD).await {
        Ok(stmt) => stmt,
        Err(err) => return Err(failed(client, err)),
    };
    let params: Vec<[&(dyn ToSql + Sync); 1]> = ids.iter().map(|id| [id as _]).collect();
    let queries = params.iter().map(|p| client.query_one(&stmt, p));
    let rows = match futures_util::future::try_join_all(queries).await {
        Ok(rows) => rows,
        Err(err) => return Err(failed(client, err)),
    };
    Ok(worlds(ids, rows.iter().map(|row| row.get(0))))
}

/// `n` distinct random rows, each given a new random number that is written back (one
/// statement, rows locked in id order) before they are returned.
pub async fn update(n: usize) -> Result<Vec<World>, Error> {
    let ids = distinct_random_ids(n);
    let mut rows = fetch_ids(&ids).await?;
    let numbers = renumber(&mut rows);
    let client = client().await?;
    let stmt = match client.prepare_cached(UPDATE_WORLD).await {
        Ok(stmt) => stmt,
        Err(err) => return Err(failed(client, err)),
    };
    if let Err(err) = client.execute(&stmt, &[&ids, &numbers]).await {
        return Err(failed(client, err));
    }
    Ok(rows)
}

/// The fortunes page: every row plus one added now, sorted by message, HTML-escaped.
pub async fn fortunes() -> Result<String, Error> {
    let client = client().await?;
    let stmt = match client.prepare_cached(SELECT_FORTUNES).await {
        Ok(stmt) => stmt,
        Err(err) => return Err(failed(client, err)),
    };
    let rows = match client.query(&stmt, &[]).await {
        Ok(rows) => rows,
        Err(err) => return Err(failed(client, err)),
    };
    Ok(fortunes_page(
        rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
    ))
}

/// The page for the `fortune` table's `(id, message)` rows.
pub fn fortunes_page(mut fortunes: Vec<(i32, String)>) -> String {
    fortunes.push((0, ADDED_FORTUNE.to_owned()));
    fortunes.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    let mut page = String::with_capacity(2048);
    page.push_str("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>");
    for (id, message) in &fortunes {
        page.push_str("<tr><td>");
        page.push_str(itoa::Buffer::new().format(*id));
        page.push_str("</td><td>");
        escape_into(&mut page, message);
        page.push_str("</td></tr>");
    }
    page.push_str("</table></body></html>");
    page
}

/// HTML-escapes `text` (`&`, `<`, `>`, `"`, `'`) onto `out`.
fn escape_into(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..at]);
        out.push_str(match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#x27;",
        });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_clamped() {
        assert_eq!(count(None), 1);
        assert_eq!(count(Some("abc")), 1);
        assert_eq!(count(Some("0")), 1);
        assert_eq!(count(Some("-3")), 1);
        assert_eq!(count(Some("17")), 17);
        assert_eq!(count(Some("501")), 500);
        assert_eq!(count(Some("+7")), 7);
        assert_eq!(count(Some(" 7")), 1);
        assert_eq!(count(Some("1e3")), 1);
        assert_eq!(count(Some("99999999999999999999")), 500);
        assert_eq!(count(Some("-99999999999999999999")), 1);
    }

    #[test]
    fn escapes_every_special_character() {
        let mut out = String::new();
        escape_into(&mut out, r#"<script>alert("x")</script> & 'é'"#);
        assert_eq!(
            out,
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;é&#x27;"
        );
    }
}
