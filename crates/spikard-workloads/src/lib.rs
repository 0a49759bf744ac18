//! The route table: every workload of WORKLOADS.md with its method, path pattern, a sample
//! request and the expected answer. The workload servers check at start that they serve
//! every route of it; the tests and the benchmark harness send its samples and check the
//! answers against it.

#[cfg(feature = "db")]
pub mod db;
pub mod fixtures;

use serde::Serialize;
use serde_json::{json, Value};
use std::fmt;
use std::sync::OnceLock;

/// The group a workload belongs to (`--workload json` selects all of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Health,
    Json,
    Path,
    Query,
    Urlencoded,
    Multipart,
    Mixed,
    Streaming,
    Fault,
    /// `json-hello` and `plaintext`, the two TechEmpower tests without a database.
    Basic,
    /// The TechEmpower database tests on PostgreSQL.
    Database,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Health => "health",
            Category::Json => "json",
            Category::Path => "path",
            Category::Query => "query",
            Category::Urlencoded => "urlencoded",
            Category::Multipart => "multipart",
            Category::Mixed => "mixed",
            Category::Streaming => "streaming",
            Category::Fault => "fault",
            Category::Basic => "basic",
            Category::Database => "database",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request the harness and the tests send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Path and query string, e.g. `/query/few?q=search&page=1&limit=20`.
    pub target: String,
    pub content_type: Option<String>,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// What a correct server answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expected {
    /// 200 `application/json` with this body (numbers compared as numbers).
    Json { body: Value },
    /// 200 `text/event-stream` with `count` events `tick` / `{"seq":i}`.
    Sse { count: u64 },
    /// A WebSocket that echoes every message.
    WebSocketEcho,
    /// An `application/problem+json` document with this status.
    Problem { status: u16 },
    /// 200 `text/plain` with exactly this body.
    Text { body: String },
    /// An answer that only the database can confirm (see `db::verify`).
    Db { check: DbCheck },
}

/// What a database workload's answer must hold, checked against the database itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum DbCheck {
    /// `{"id":I,"randomNumber":R}` where row I of `world` holds R.
    Row,
    /// A list of `count` such rows.
    Rows { count: usize },
    /// A list of `count` rows with distinct ids, each of which `world` now holds.
    Updated { count: usize },
    /// The fortunes page, byte for byte (`text/html; charset=utf-8`).
    Fortunes,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub name: &'static str,
    pub category: Category,
    pub method: &'static str,
    /// The route pattern, in the engine's `{capture}` syntax.
    pub route: &'static str,
    pub sample: Sample,
    pub expected: Expected,
    /// Whether the harness measures it (`fault` is only checked).
    pub benchmarked: bool,
    /// A second serving of another workload's route that only the Python workload server
    /// has: the same database routes on asyncpg, the peers' driver (`/asyncpg/…`), or with
    /// `def` handlers on a blocking driver (`/sync/…`), or CPU-only routes with `async def`
    /// handlers (`/async/…`).
    pub python_only: bool,
}

impl Workload {
    /// Whether answers come from the database (the server needs `DATABASE_URL`).
    pub fn needs_database(&self) -> bool {
        matches!(self.expected, Expected::Db { .. })
    }
}

fn get(target: &str) -> Sample {
    Sample {
        target: target.to_owned(),
        content_type: None,
        body: Vec::new(),
    }
}

fn post(target: &str, content_type: &str, body: impl Into<Vec<u8>>) -> Sample {
    Sample {
        target: target.to_owned(),
        content_type: Some(content_type.to_owned()),
        body: body.into(),
    }
}

fn ok(body: Value) -> Expected {
    Expected::Json { body }
}

/// A multipart workload: the sample body and its expected answer.
fn multipart(name: &'static str, route: &'static str, size: usize, seed: u32) -> Workload {
    let file = fixtures::file_bytes(size, seed);
    let filename = format!("{}.bin", name.trim_start_matches("multipart-"));
    let description = format!("{} KiB upload", size / 1024);
    let content_type = "application/octet-stream";
    let body = fixtures::multipart_body(&description, &filename, content_type, &file);
    Workload {
        name,
        category: Category::Multipart,
        method: "POST",
        route,
        sample: post(route, &fixtures::multipart_content_type(), body),
        expected: ok(json!({
            "description": description,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "crc32": crc32fast::hash(&file),
        })),
        benchmarked: true,
        python_only: false,
    }
}

/// A Python-only second serving of `base` under `prefix` (`/asyncpg`, `/sync` or `/async`).
fn variant(base: &Workload, name: &'static str, route: &'static str, prefix: &str) -> Workload {
    Workload {
        name,
        route,
        sample: Sample {
            target: format!("{prefix}{}", base.sample.target),
            ..base.sample.clone()
        },
        python_only: true,
        ..base.clone()
    }
}

fn db(name: &'static str, route: &'static str, target: &str, check: DbCheck) -> Workload {
    Workload {
        name,
        category: Category::Database,
        method: "GET",
        route,
        sample: get(target),
        expected: Expected::Db { check },
        benchmarked: true,
        python_only: false,
    }
}

/// The count of rows the bench asks `queries` and `updates` for.
pub const BENCH_QUERIES: usize = 20;

/// The TechEmpower-shaped workloads, with the Python-only second servings.
fn techempower() -> Vec<Workload> {
    let n = BENCH_QUERIES;
    let basic = |name, route, expected| Workload {
        name,
        category: Category::Basic,
        method: "GET",
        route,
        sample: get(route),
        expected,
        benchmarked: true,
        python_only: false,
    };
    let database = [
        db("db", "/db", "/db", DbCheck::Row),
        db(
            "queries",
            "/queries",
            &format!("/queries?queries={n}"),
            DbCheck::Rows { count: n },
        ),
        db(
            "updates",
            "/updates",
            &format!("/updates?queries={n}"),
            DbCheck::Updated { count: n },
        ),
        db("fortunes", "/fortunes", "/fortunes", DbCheck::Fortunes),
    ];
    let asyncpg_names = [
        ("db-asyncpg", "/asyncpg/db"),
        ("queries-asyncpg", "/asyncpg/queries"),
        ("updates-asyncpg", "/asyncpg/updates"),
        ("fortunes-asyncpg", "/asyncpg/fortunes"),
    ];
    let sync_names = [
        ("db-sync", "/sync/db"),
        ("queries-sync", "/sync/queries"),
        ("updates-sync", "/sync/updates"),
        ("fortunes-sync", "/sync/fortunes"),
    ];
    let mut all = vec![
        basic(
            "json-hello",
            "/json",
            ok(json!({"message": "Hello, World!"})),
        ),
        basic(
            "plaintext",
            "/plaintext",
            Expected::Text {
                body: "Hello, World!".into(),
            },
        ),
    ];
    for ((base, (asyncpg, asyncpg_route)), (sync, sync_route)) in
        database.iter().zip(asyncpg_names).zip(sync_names)
    {
        all.push(base.clone());
        all.push(variant(base, asyncpg, asyncpg_route, "/asyncpg"));
        all.push(variant(base, sync, sync_route, "/sync"));
    }
    all
}

/// `async def` second servings of CPU-only workloads, to measure what `async` costs.
fn async_variants(table: &[Workload]) -> Vec<Workload> {
    [
        ("path-int", "path-int-async", "/async/path/int/{id}"),
        ("json-small", "json-small-async", "/async/json/small"),
        (
            "mixed",
            "mixed-async",
            "/async/api/v1/users/{user_id}/posts",
        ),
    ]
    .into_iter()
    .filter_map(|(base, name, route)| {
        let base = table.iter().find(|w| w.name == base)?;
        Some(variant(base, name, route, "/async"))
    })
    .collect()
}

/// Every workload; each `async def` serving right after the `def` one it mirrors.
fn build() -> Vec<Workload> {
    let cpu = cpu_only();
    let asyncs = async_variants(&cpu);
    let mut table = Vec::with_capacity(cpu.len() + asyncs.len() + 14);
    let mut fault = None;
    for workload in cpu {
        if workload.category == Category::Fault {
            fault = Some(workload);
            continue;
        }
        let name = workload.name;
        table.push(workload);
        let mirrors = asyncs
            .iter()
            .filter(|a| a.name.strip_suffix("-async") == Some(name));
        table.extend(mirrors.cloned());
    }
    table.extend(techempower());
    table.extend(fault);
    table
}

fn cpu_only() -> Vec<Workload> {
    use Category::*;
    let w = |name, category, method, route, sample, expected| Workload {
        name,
        category,
        method,
        route,
        sample,
        expected,
        benchmarked: true,
        python_only: false,
    };
    let json_body = |value: &Value| serde_json::to_vec(value).unwrap_or_default();
    let small: Value = serde_json::from_str(fixtures::JSON_SMALL).unwrap_or_default();
    let product = fixtures::product();
    let catalog = fixtures::catalog();
    let post_body = fixtures::post();
    vec![
        w(
            "health",
            Health,
            "GET",
            "/health",
            get("/health"),
            ok(json!({"status": "ok"})),
        ),
        w(
            "json-small",
            Json,
            "POST",
            "/json/small",
            post("/json/small", "application/json", fixtures::JSON_SMALL),
            ok(small),
        ),
        w(
            "json-medium",
            Json,
            "POST",
            "/json/medium",
            post("/json/medium", "application/json", json_body(&product)),
            ok(product),
        ),
        w(
            "json-large",
            Json,
            "POST",
            "/json/large",
            post("/json/large", "application/json", json_body(&catalog)),
            ok(catalog),
        ),
        w(
            "path-simple",
            Path,
            "GET",
            "/path/simple/{id}",
            get("/path/simple/test123"),
            ok(json!({"id": "test123"})),
        ),
        w(
            "path-multiple",
            Path,
            "GET",
            "/path/multiple/{user_id}/{post_id}",
            get("/path/multiple/user456/post789"),
            ok(json!({"user_id": "user456", "post_id": "post789"})),
        ),
        w(
            "path-deep",
            Path,
            "GET",
            "/path/deep/{org}/{team}/{project}/{resource}/{id}",
            get("/path/deep/acme/engineering/backend/api/item123"),
            ok(
                json!({"org": "acme", "team": "engineering", "project": "backend",
                    "resource": "api", "id": "item123"}),
            ),
        ),
        w(
            "path-int",
            Path,
            "GET",
            "/path/int/{id}",
            get("/path/int/42"),
            ok(json!({"id": 42})),
        ),
        w(
            "path-uuid",
            Path,
            "GET",
            "/path/uuid/{id}",
            get("/path/uuid/550e8400-e29b-41d4-a716-446655440000"),
            ok(json!({"id": "550e8400-e29b-41d4-a716-446655440000"})),
        ),
        w(
            "path-date",
            Path,
            "GET",
            "/path/date/{date}",
            get("/path/date/2024-01-15"),
            ok(json!({"date": "2024-01-15", "day_of_week": 1})),
        ),
        w(
            "query-few",
            Query,
            "GET",
            "/query/few",
            get("/query/few?q=search&page=1&limit=20"),
            ok(json!({"q": "search", "page": 1, "limit": 20})),
        ),
        w(
            "query-medium",
            Query,
            "GET",
            "/query/medium",
            get(
                "/query/medium?category=electronics&tags=phone,smart&min_price=100\
               &max_price=1000&sort=price&order=asc&page=1&limit=20",
            ),
            ok(
                json!({"category": "electronics", "tags": ["phone", "smart"], "min_price": 100.0,
                    "max_price": 1000.0, "sort": "price", "order": "asc", "page": 1,
                    "limit": 20}),
            ),
        ),
        w(
            "query-many",
            Query,
            "GET",
            "/query/many",
            get(&format!("/query/many?{}", fixtures::QUERY_MANY)),
            ok(fixtures::query_many_answer()),
        ),
        w(
            "urlencoded-simple",
            Urlencoded,
            "POST",
            "/urlencoded/simple",
            post(
                "/urlencoded/simple",
                "application/x-www-form-urlencoded",
                fixtures::URLENCODED_SIMPLE,
            ),
            ok(
                json!({"name": "John Doe", "email": "john@example.com", "age": 30,
                    "city": "New York"}),
            ),
        ),
        w(
            "urlencoded-complex",
            Urlencoded,
            "POST",
            "/urlencoded/complex",
            post(
                "/urlencoded/complex",
                "application/x-www-form-urlencoded",
                fixtures::URLENCODED_COMPLEX,
            ),
            ok(fixtures::urlencoded_complex_answer()),
        ),
        multipart("multipart-small", "/multipart/small", 1024, 11),
        multipart("multipart-medium", "/multipart/medium", 10 * 1024, 22),
        multipart("multipart-large", "/multipart/large", 100 * 1024, 33),
        w(
            "mixed",
            Mixed,
            "POST",
            "/api/v1/users/{user_id}/posts",
            post(
                "/api/v1/users/42/posts?publish=true&notify=false",
                "application/json",
                json_body(&post_body),
            ),
            ok(json!({"user_id": 42, "publish": true, "notify": false, "post": post_body})),
        ),
        w(
            "sse",
            Streaming,
            "GET",
            "/sse/{count}",
            get("/sse/10"),
            Expected::Sse { count: 10 },
        ),
        w(
            "websocket",
            Streaming,
            "GET",
            "/ws/echo",
            get("/ws/echo"),
            Expected::WebSocketEcho,
        ),
        Workload {
            benchmarked: false,
            ..w(
                "fault",
                Fault,
                "GET",
                "/fault",
                get("/fault"),
                Expected::Problem { status: 500 },
            )
        },
    ]
}

/// Every workload, in the order of WORKLOADS.md.
pub fn table() -> &'static [Workload] {
    static TABLE: OnceLock<Vec<Workload>> = OnceLock::new();
    TABLE.get_or_init(build)
}

/// The workload called `name`.
pub fn find(name: &str) -> Option<&'static Workload> {
    table().iter().find(|w| w.name == name)
}

/// The `(method, route)` pairs of the table that `served` lacks (the Python-only servings
/// aside). A server refuses to start when this is not empty.
pub fn unserved(served: &[(&str, &str)]) -> Vec<&'static Workload> {
    table()
        .iter()
        .filter(|w| !w.python_only)
        .filter(|w| !served.iter().any(|(m, r)| *m == w.method && *r == w.route))
        .collect()
}

/// Compares two JSON documents; numbers compare as numbers (`100 == 100.0`). The error names
/// the first place where they differ.
pub fn json_matches(expected: &Value, actual: &Value) -> Result<(), String> {
    compare(expected, actual, &mut String::from("$"))
}

fn compare(expected: &Value, actual: &Value, at: &mut String) -> Result<(), String> {
    let differ = |at: &str| Err(format!("at {at}: expected {expected}, got {actual}"));
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) if x == y => Ok(()),
            _ => differ(at),
        },
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Err(format!(
                    "at {at}: expected {} items, got {}",
                    a.len(),
                    b.len()
                ));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                compare(x, y, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        (Value::Object(a), Value::Object(b)) => {
            if let Some(extra) = b.keys().find(|k| !a.contains_key(*k)) {
                return Err(format!("at {at}: unexpected member {extra:?}"));
            }
            for (key, x) in a {
                let len = at.len();
                at.push('.');
                at.push_str(key);
                match b.get(key) {
                    Some(y) => compare(x, y, at)?,
                    None => return Err(format!("at {at}: missing")),
                }
                at.truncate(len);
            }
            Ok(())
        }
        (a, b) if a == b => Ok(()),
        _ => differ(at),
    }
}

/// The body of a correct `/sse/{count}` answer.
pub fn sse_body(count: u64) -> String {
    (0..count)
        .map(|i| format!("event: tick\ndata: {{\"seq\":{i}}}\n\n"))
        .collect()
}

/// Checks an HTTP answer against `expected`; the error says what is wrong.
pub fn check(
    expected: &Expected,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let want = |code: u16, media_type: &str| -> Result<(), String> {
        if status != code {
            return Err(format!("status {status}, expected {code}"));
        }
        if media != media_type {
            return Err(format!(
                "content type {content_type:?}, expected {media_type}"
            ));
        }
        Ok(())
    };
    match expected {
        Expected::Json { body: want_body } => {
            want(200, "application/json")?;
            let actual: Value =
                serde_json::from_slice(body).map_err(|err| format!("body is not JSON: {err}"))?;
            json_matches(want_body, &actual)
        }
        Expected::Sse { count } => {
            want(200, "text/event-stream")?;
            let text = std::str::from_utf8(body).map_err(|_| "body is not UTF-8".to_owned())?;
            if text == sse_body(*count) {
                Ok(())
            } else {
                Err(format!("event stream differs from {count} tick events"))
            }
        }
        Expected::Problem { status: code } => {
            want(*code, "application/problem+json")?;
            let doc: Value = serde_json::from_slice(body)
                .map_err(|err| format!("problem is not JSON: {err}"))?;
            if doc["status"] != json!(code) || !doc["title"].is_string() || !doc["type"].is_string()
            {
                return Err(format!("not a problem document: {doc}"));
            }
            Ok(())
        }
        Expected::Text { body: want_body } => {
            want(200, "text/plain")?;
            if body == want_body.as_bytes() {
                Ok(())
            } else {
                Err(format!(
                    "body {:?}, expected {want_body:?}",
                    String::from_utf8_lossy(body)
                ))
            }
        }
        Expected::WebSocketEcho => Err("a WebSocket workload is checked over a WebSocket".into()),
        Expected::Db { .. } => Err("a database workload is checked against the database".into()),
    }
}

/// Writes the table for tools outside Rust: `DIR/table.json` (every workload with its sample
/// request and expected answer) and `DIR/bodies/NAME.body` (each sample's exact body bytes,
/// ready for `oha -D`).
pub fn export(dir: &std::path::Path) -> std::io::Result<()> {
    let bodies = dir.join("bodies");
    std::fs::create_dir_all(&bodies)?;
    let mut entries = Vec::new();
    for workload in table() {
        let mut entry = serde_json::to_value(workload)?;
        if !workload.sample.body.is_empty() {
            let file = bodies.join(format!("{}.body", workload.name));
            std::fs::write(&file, &workload.sample.body)?;
            entry["sample"]["body_file"] = json!(file.to_string_lossy());
        }
        entries.push(entry);
    }
    let text = serde_json::to_string_pretty(&entries)?;
    std::fs::write(dir.join("table.json"), text + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_writes_bodies_and_table() {
        let dir = std::env::temp_dir().join(format!("spikard-export-{}", std::process::id()));
        export(&dir).unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(dir.join("table.json")).unwrap_or_default();
        let entries: Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(entries.as_array().map(Vec::len), Some(table().len()));
        let small = std::fs::read(dir.join("bodies/json-small.body")).unwrap_or_default();
        assert_eq!(small, fixtures::JSON_SMALL.as_bytes());
        assert_eq!(entries[0]["expected"]["kind"], "json");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn numbers_compare_as_numbers() {
        assert!(json_matches(&json!({"a": 100}), &json!({"a": 100.0})).is_ok());
        assert!(json_matches(&json!({"a": [1, 2]}), &json!({"a": [1, 3]})).is_err());
        assert!(json_matches(&json!({"a": 1}), &json!({"a": 1, "b": 2})).is_err());
        assert!(json_matches(&json!({"a": 1, "b": 2}), &json!({"a": 1})).is_err());
        let err = json_matches(
            &json!({"a": {"b": [0, "x"]}}),
            &json!({"a": {"b": [0, "y"]}}),
        );
        assert_eq!(err, Err("at $.a.b[1]: expected \"x\", got \"y\"".into()));
    }

    #[test]
    fn table_is_complete_and_unique() {
        let names: std::collections::HashSet<_> = table().iter().map(|w| w.name).collect();
        assert_eq!(names.len(), table().len());
        assert_eq!(table().len(), 39);
        let routes: std::collections::HashSet<_> =
            table().iter().map(|w| (w.method, w.route)).collect();
        assert_eq!(routes.len(), table().len());
        let python_only = table().iter().filter(|w| w.python_only).count();
        assert_eq!(python_only, 11);
        assert_eq!(
            unserved(&[("GET", "/health")]).len(),
            table().len() - 1 - python_only
        );
        assert_eq!(table().last().map(|w| w.name), Some("fault"));
        let sync_db = find("queries-sync").map(|w| w.sample.target.as_str());
        assert_eq!(sync_db, Some("/sync/queries?queries=20"));
        let asyncpg_db = find("updates-asyncpg").map(|w| w.sample.target.as_str());
        assert_eq!(asyncpg_db, Some("/asyncpg/updates?queries=20"));
    }

    #[test]
    fn check_reports_wrong_answers() {
        let expected = Expected::Json {
            body: json!({"id": 42}),
        };
        assert!(check(&expected, 200, "application/json", br#"{"id":42.0}"#).is_ok());
        assert!(check(&expected, 200, "application/json", br#"{"id":43}"#).is_err());
        assert!(check(&expected, 404, "application/json", br#"{"id":42}"#).is_err());
        assert!(check(&expected, 200, "text/plain", br#"{"id":42}"#).is_err());
        let sse = Expected::Sse { count: 2 };
        let body = "event: tick\ndata: {\"seq\":0}\n\nevent: tick\ndata: {\"seq\":1}\n\n";
        assert!(check(&sse, 200, "text/event-stream", body.as_bytes()).is_ok());
        assert!(check(&sse, 200, "text/event-stream", &body.as_bytes()[..20]).is_err());
    }
}
