//! The bare axum ceiling: the same paths served by plain axum handlers with axum's own
//! extractors and the same typed records, without the engine (no parameter plans, no problem
//! documents beyond the minimum; JSON with the engine's codecs). Its throughput is the reference the engine's overhead is
//! measured against; it is not a framework and does not validate like one.

use crate::db;
use crate::types::*;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, WebSocketUpgrade};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spikard_core::{sse, Event, Message};

type Failure = (StatusCode, String);

/// A JSON body or answer, decoded (serde_json) and encoded (sonic-rs) as the engine does and
/// nothing else: no content-type check and no search for the failing field.
struct Json<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Failure;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Failure> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
        serde_json::from_slice(&body)
            .map(Json)
            .map_err(|e| unprocessable(e.to_string()))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match sonic_rs::to_vec(&self.0) {
            Ok(body) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        }
    }
}

fn unprocessable(msg: impl Into<String>) -> Failure {
    (StatusCode::UNPROCESSABLE_ENTITY, msg.into())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn json_small(Json(item): Json<SmallItem>) -> Json<SmallItem> {
    Json(item)
}

async fn json_medium(Json(product): Json<Product>) -> Json<Product> {
    Json(product)
}

async fn json_large(Json(catalog): Json<Catalog>) -> Json<Catalog> {
    Json(catalog)
}

async fn path_simple(Path(id): Path<String>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id }))
}

async fn path_multiple(
    Path((user_id, post_id)): Path<(String, String)>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "user_id": user_id, "post_id": post_id }))
}

async fn path_deep(
    Path((org, team, project, resource, id)): Path<(String, String, String, String, String)>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "org": org, "team": team, "project": project, "resource": resource, "id": id
    }))
}

async fn path_int(Path(id): Path<i64>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id }))
}

async fn path_uuid(Path(id): Path<String>) -> Result<Json<serde_json::Value>, Failure> {
    let id = uuid::Uuid::try_parse(&id).map_err(|_| unprocessable("not a UUID"))?;
    Ok(Json(
        serde_json::json!({ "id": id.hyphenated().to_string() }),
    ))
}

async fn path_date(Path(date): Path<String>) -> Result<Json<DateAnswer>, Failure> {
    let date =
        spikard_core::params::parse_date(&date).ok_or_else(|| unprocessable("not a date"))?;
    Ok(Json(DateAnswer {
        date: date.format("%Y-%m-%d").to_string(),
        day_of_week: spikard_core::params::iso_weekday(date),
    }))
}

fn one() -> i64 {
    1
}
fn twenty() -> i64 {
    20
}
fn relevance() -> String {
    "relevance".into()
}
fn asc() -> Order {
    Order::Asc
}

#[derive(Deserialize)]
struct FewParams {
    q: String,
    #[serde(default = "one")]
    page: i64,
    #[serde(default = "twenty")]
    limit: i64,
}

async fn query_few(Query(p): Query<FewParams>) -> Json<QueryFew> {
    Json(QueryFew {
        q: p.q,
        page: p.page,
        limit: p.limit,
    })
}

#[derive(Deserialize)]
struct MediumParams {
    category: String,
    tags: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    #[serde(default = "relevance")]
    sort: String,
    #[serde(default = "asc")]
    order: Order,
    #[serde(default = "one")]
    page: i64,
    #[serde(default = "twenty")]
    limit: i64,
}

fn split_commas(list: Option<String>) -> Vec<String> {
    list.map(|s| {
        s.split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

async fn query_medium(Query(p): Query<MediumParams>) -> Json<QueryMedium> {
    Json(QueryMedium {
        category: p.category,
        tags: split_commas(p.tags),
        min_price: p.min_price,
        max_price: p.max_price,
        sort: p.sort,
        order: p.order,
        page: p.page,
        limit: p.limit,
    })
}

#[derive(Deserialize)]
struct ManyParams {
    q: String,
    page: Option<i64>,
    limit: Option<i64>,
    sort: Option<String>,
    order: Option<Order>,
    category: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    in_stock: Option<bool>,
    brand: Option<String>,
    rating: Option<i64>,
    color: Option<String>,
    size: Option<String>,
    lang: Option<String>,
    include_archived: Option<bool>,
    fields: Option<String>,
}

async fn query_many(Query(p): Query<ManyParams>) -> Json<QueryMany> {
    Json(QueryMany {
        q: p.q,
        page: p.page,
        limit: p.limit,
        sort: p.sort,
        order: p.order,
        category: p.category,
        min_price: p.min_price,
        max_price: p.max_price,
        in_stock: p.in_stock,
        brand: p.brand,
        rating: p.rating,
        color: p.color,
        size: p.size,
        lang: p.lang,
        include_archived: p.include_archived,
        fields: split_commas(p.fields),
    })
}

async fn urlencoded_simple(axum::Form(form): axum::Form<FormSimple>) -> Json<FormSimple> {
    Json(form)
}

/// serde_urlencoded cannot gather repeated keys, so the complex form is decoded by hand.
async fn urlencoded_complex(body: axum::body::Bytes) -> Result<Json<FormComplex>, Failure> {
    let text =
        std::str::from_utf8(&body).map_err(|_| (StatusCode::BAD_REQUEST, "not UTF-8".into()))?;
    let mut form = FormComplex::default();
    let parse_bool = |v: &str| match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(unprocessable("not a boolean")),
    };
    for pair in spikard_core::urlencoded::pairs(text) {
        let (key, value) = pair.map_err(|_| (StatusCode::BAD_REQUEST, "not UTF-8".into()))?;
        let value = value.into_owned();
        match key.as_ref() {
            "first_name" => form.first_name = value,
            "last_name" => form.last_name = value,
            "email" => form.email = value,
            "phone" => form.phone = value,
            "age" => form.age = value.parse().map_err(|_| unprocessable("age"))?,
            "street" => form.street = value,
            "city" => form.city = value,
            "state" => form.state = value,
            "zip" => form.zip = value,
            "country" => form.country = value,
            "newsletter" => form.newsletter = parse_bool(&value)?,
            "interests" => form.interests.push(value),
            "plan" => form.plan = value,
            "referral_code" => form.referral_code = value,
            "company" => form.company = value,
            "job_title" => form.job_title = value,
            "bio" => form.bio = value,
            "terms_accepted" => form.terms_accepted = parse_bool(&value)?,
            _ => {}
        }
    }
    Ok(Json(form))
}

async fn upload(mut multipart: Multipart) -> Result<Json<UploadAnswer>, Failure> {
    let bad =
        |e: axum::extract::multipart::MultipartError| (StatusCode::BAD_REQUEST, e.to_string());
    let mut description = None;
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name() {
            Some("description") => description = Some(field.text().await.map_err(bad)?),
            Some("file") => {
                let filename = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().unwrap_or_default().to_owned();
                let data = field.bytes().await.map_err(bad)?;
                file = Some((filename, content_type, data));
            }
            _ => {}
        }
    }
    let (filename, content_type, data) = file.ok_or_else(|| unprocessable("file missing"))?;
    Ok(Json(UploadAnswer {
        description: description.ok_or_else(|| unprocessable("description missing"))?,
        filename,
        content_type,
        size: data.len(),
        crc32: crc32fast::hash(&data),
    }))
}

#[derive(Deserialize)]
struct MixedParams {
    #[serde(default)]
    publish: bool,
    #[serde(default)]
    notify: bool,
}

async fn mixed(
    Path(user_id): Path<i64>,
    Query(p): Query<MixedParams>,
    Json(post): Json<Post>,
) -> Json<MixedAnswer> {
    Json(MixedAnswer {
        user_id,
        publish: p.publish,
        notify: p.notify,
        post,
    })
}

async fn sse_ticks(Path(count): Path<u64>) -> Result<Response, Failure> {
    if !(1..=100_000).contains(&count) {
        return Err(unprocessable("count out of range"));
    }
    let events = futures_util::stream::iter(0..count).map(|seq| {
        Event::data(serde_json::to_string(&Tick { seq }).unwrap_or_default()).event("tick")
    });
    Ok(sse::sse(events))
}

async fn ws_echo(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.next().await {
            if matches!(message, Message::Text(_) | Message::Binary(_))
                && socket.send(message).await.is_err()
            {
                break;
            }
        }
    })
}

async fn fault() -> impl IntoResponse {
    (StatusCode::INTERNAL_SERVER_ERROR, "fault")
}

/// Every `(method, path, handler)` of the bare server.
fn routes() -> Vec<(&'static str, &'static str, MethodRouter)> {
    vec![
        ("GET", "/health", get(health)),
        ("POST", "/json/small", post(json_small)),
        ("POST", "/json/medium", post(json_medium)),
        ("POST", "/json/large", post(json_large)),
        ("GET", "/path/simple/{id}", get(path_simple)),
        (
            "GET",
            "/path/multiple/{user_id}/{post_id}",
            get(path_multiple),
        ),
        (
            "GET",
            "/path/deep/{org}/{team}/{project}/{resource}/{id}",
            get(path_deep),
        ),
        ("GET", "/path/int/{id}", get(path_int)),
        ("GET", "/path/uuid/{id}", get(path_uuid)),
        ("GET", "/path/date/{date}", get(path_date)),
        ("GET", "/query/few", get(query_few)),
        ("GET", "/query/medium", get(query_medium)),
        ("GET", "/query/many", get(query_many)),
        ("POST", "/urlencoded/simple", post(urlencoded_simple)),
        ("POST", "/urlencoded/complex", post(urlencoded_complex)),
        ("POST", "/multipart/small", post(upload)),
        ("POST", "/multipart/medium", post(upload)),
        ("POST", "/multipart/large", post(upload)),
        ("POST", "/api/v1/users/{user_id}/posts", post(mixed)),
        ("GET", "/sse/{count}", get(sse_ticks)),
        ("GET", "/ws/echo", get(ws_echo)),
        ("GET", "/fault", get(fault)),
        ("GET", "/json", get(json_hello)),
        ("GET", "/plaintext", get(plaintext)),
        ("GET", "/db", get(db_one)),
        ("GET", "/queries", get(queries)),
        ("GET", "/updates", get(updates)),
        ("GET", "/fortunes", get(fortunes)),
    ]
}

async fn json_hello() -> Json<HelloMessage> {
    Json(HelloMessage {
        message: "Hello, World!",
    })
}

async fn plaintext() -> &'static str {
    "Hello, World!"
}

/// A database failure, as little as axum needs.
fn db_failure(err: spikard_core::Error) -> Failure {
    (err.status(), err.to_string())
}

#[derive(Deserialize)]
struct Queries {
    queries: Option<String>,
}

async fn db_one() -> Result<Json<db::World>, Failure> {
    db::one().await.map(Json).map_err(db_failure)
}

async fn queries(Query(q): Query<Queries>) -> Result<Json<Vec<db::World>>, Failure> {
    let n = db::count(q.queries.as_deref());
    db::fetch(n).await.map(Json).map_err(db_failure)
}

async fn updates(Query(q): Query<Queries>) -> Result<Json<Vec<db::World>>, Failure> {
    let n = db::count(q.queries.as_deref());
    db::update(n).await.map(Json).map_err(db_failure)
}

async fn fortunes() -> Result<axum::response::Html<String>, Failure> {
    db::fortunes()
        .await
        .map(axum::response::Html)
        .map_err(db_failure)
}

/// The bare axum router and the `(method, path)` pairs it serves.
pub fn router() -> (Router, Vec<(&'static str, &'static str)>) {
    let mut router = Router::new();
    let mut endpoints = Vec::new();
    for (method, path, handler) in routes() {
        router = router.route(path, handler);
        endpoints.push((method, path));
    }
    (router, endpoints)
}
