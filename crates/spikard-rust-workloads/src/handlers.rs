//! Every workload as a Spikard route with a Rust handler. Each route declares its parameter
//! plan; the engine validates the request against it and the handler gets typed values.

use crate::db;
use crate::types::*;
use futures_util::StreamExt;
use spikard_core::{response, websocket};
use spikard_core::{
    sse, App, BodyKind, Error, Event, Message, Param, ParamType, Request, Response, Route, Scalar,
    UploadFile, Value, WebSocket,
};
use uuid::Uuid;

type Answer = Result<Response, Error>;

async fn json_hello(_: Request) -> Answer {
    response::json(&HelloMessage {
        message: "Hello, World!",
    })
}

async fn plaintext(_: Request) -> Answer {
    Ok(response::text("Hello, World!"))
}

async fn db_one(_: Request) -> Answer {
    response::json(&db::one().await?)
}

async fn queries(mut req: Request) -> Answer {
    let n = db::count(req.param::<Option<String>>("queries")?.as_deref());
    response::json(&db::fetch(n).await?)
}

async fn updates(mut req: Request) -> Answer {
    let n = db::count(req.param::<Option<String>>("queries")?.as_deref());
    response::json(&db::update(n).await?)
}

async fn fortunes(_: Request) -> Answer {
    Ok(response::html(db::fortunes().await?))
}

async fn health(_: Request) -> Answer {
    response::json(&serde_json::json!({"status": "ok"}))
}

async fn json_small(req: Request) -> Answer {
    response::json(&req.json::<SmallItem>()?)
}

async fn json_medium(req: Request) -> Answer {
    response::json(&req.json::<Product>()?)
}

async fn json_large(req: Request) -> Answer {
    response::json(&req.json::<Catalog>()?)
}

async fn path_simple(mut req: Request) -> Answer {
    let id: String = req.param("id")?;
    response::json(&serde_json::json!({ "id": id }))
}

async fn path_multiple(mut req: Request) -> Answer {
    let user_id: String = req.param("user_id")?;
    let post_id: String = req.param("post_id")?;
    response::json(&serde_json::json!({ "user_id": user_id, "post_id": post_id }))
}

async fn path_deep(mut req: Request) -> Answer {
    let mut answer = serde_json::Map::with_capacity(5);
    for name in ["org", "team", "project", "resource", "id"] {
        answer.insert(name.to_owned(), serde_json::Value::String(req.param(name)?));
    }
    response::json(&answer)
}

async fn path_int(mut req: Request) -> Answer {
    let id: i64 = req.param("id")?;
    response::json(&serde_json::json!({ "id": id }))
}

async fn path_uuid(mut req: Request) -> Answer {
    let id: Uuid = req.param("id")?;
    response::json(&serde_json::json!({ "id": id.hyphenated().to_string() }))
}

async fn path_date(mut req: Request) -> Answer {
    let date: chrono::NaiveDate = req.param("date")?;
    response::json(&DateAnswer {
        date: date.format("%Y-%m-%d").to_string(),
        day_of_week: spikard_core::params::iso_weekday(date),
    })
}

async fn query_few(mut req: Request) -> Answer {
    response::json(&QueryFew {
        q: req.param("q")?,
        page: req.param("page")?,
        limit: req.param("limit")?,
    })
}

async fn query_medium(mut req: Request) -> Answer {
    response::json(&QueryMedium {
        category: req.param("category")?,
        tags: req.param("tags")?,
        min_price: req.param("min_price")?,
        max_price: req.param("max_price")?,
        sort: req.param("sort")?,
        order: req.param("order")?,
        page: req.param("page")?,
        limit: req.param("limit")?,
    })
}

async fn query_many(mut req: Request) -> Answer {
    response::json(&QueryMany {
        q: req.param("q")?,
        page: req.param("page")?,
        limit: req.param("limit")?,
        sort: req.param("sort")?,
        order: req.param("order")?,
        category: req.param("category")?,
        min_price: req.param("min_price")?,
        max_price: req.param("max_price")?,
        in_stock: req.param("in_stock")?,
        brand: req.param("brand")?,
        rating: req.param("rating")?,
        color: req.param("color")?,
        size: req.param("size")?,
        lang: req.param("lang")?,
        include_archived: req.param("include_archived")?,
        fields: req.param("fields")?,
    })
}

async fn urlencoded_simple(mut req: Request) -> Answer {
    response::json(&FormSimple {
        name: req.param("name")?,
        email: req.param("email")?,
        age: req.param("age")?,
        city: req.param("city")?,
    })
}

async fn urlencoded_complex(mut req: Request) -> Answer {
    response::json(&FormComplex {
        first_name: req.param("first_name")?,
        last_name: req.param("last_name")?,
        email: req.param("email")?,
        phone: req.param("phone")?,
        age: req.param("age")?,
        street: req.param("street")?,
        city: req.param("city")?,
        state: req.param("state")?,
        zip: req.param("zip")?,
        country: req.param("country")?,
        newsletter: req.param("newsletter")?,
        interests: req.param("interests")?,
        plan: req.param("plan")?,
        referral_code: req.param("referral_code")?,
        company: req.param("company")?,
        job_title: req.param("job_title")?,
        bio: req.param("bio")?,
        terms_accepted: req.param("terms_accepted")?,
    })
}

async fn upload(mut req: Request) -> Answer {
    let file: UploadFile = req.param("file")?;
    response::json(&UploadAnswer {
        description: req.param("description")?,
        size: file.size(),
        crc32: crc32fast::hash(&file.data),
        filename: file.filename,
        content_type: file.content_type,
    })
}

async fn mixed(mut req: Request) -> Answer {
    let post: Post = req.json()?;
    response::json(&MixedAnswer {
        user_id: req.param("user_id")?,
        publish: req.param("publish")?,
        notify: req.param("notify")?,
        post,
    })
}

async fn sse_ticks(mut req: Request) -> Answer {
    let count: i64 = req.param("count")?;
    let events = futures_util::stream::iter(0..count.unsigned_abs()).map(|seq| {
        let data = serde_json::to_string(&Tick { seq }).unwrap_or_default();
        Event::data(data).event("tick")
    });
    Ok(sse::sse(events))
}

async fn echo(mut socket: WebSocket) {
    while let Some(message) = websocket::receive(&mut socket).await {
        let reply = match message {
            Message::Text(_) | Message::Binary(_) => message,
            Message::Close(_) => break,
            // Pings are answered by the protocol layer.
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

async fn fault(_: Request) -> Answer {
    panic!("the fault workload panics on purpose");
}

/// `queries`, read as text: the handler counts what is not an integer as 1.
fn queries_param() -> Param {
    Param::query("queries", ParamType::STR).optional()
}

/// The Spikard application serving every workload of the route table.
pub fn app() -> App {
    let int = |v| Value::Int(v);
    let order = || ParamType::one_of(Order::CHOICES);
    let bool_default = |name: &str| Param::query(name, ParamType::BOOL).default(Value::Bool(false));
    let upload_route = |path: &str| {
        Route::post(path, upload).params([
            Param::form("description", ParamType::STR),
            Param::form("file", ParamType::File),
        ])
    };
    App::new()
        .route(Route::get("/health", health))
        .route(Route::post("/json/small", json_small).body(BodyKind::Json))
        .route(Route::post("/json/medium", json_medium).body(BodyKind::Json))
        .route(Route::post("/json/large", json_large).body(BodyKind::Json))
        .route(Route::get("/path/simple/{id}", path_simple))
        .route(Route::get(
            "/path/multiple/{user_id}/{post_id}",
            path_multiple,
        ))
        .route(Route::get(
            "/path/deep/{org}/{team}/{project}/{resource}/{id}",
            path_deep,
        ))
        .route(Route::get("/path/int/{id}", path_int).param(Param::path("id", ParamType::INT)))
        .route(Route::get("/path/uuid/{id}", path_uuid).param(Param::path("id", ParamType::UUID)))
        .route(
            Route::get("/path/date/{date}", path_date).param(Param::path("date", ParamType::DATE)),
        )
        .route(Route::get("/query/few", query_few).params([
            Param::query("q", ParamType::STR),
            Param::query("page", ParamType::INT).default(int(1)),
            Param::query("limit", ParamType::INT).default(int(20)),
        ]))
        .route(Route::get("/query/medium", query_medium).params([
            Param::query("category", ParamType::STR),
            Param::query("tags", ParamType::csv(Scalar::Str)).optional(),
            Param::query("min_price", ParamType::FLOAT).optional(),
            Param::query("max_price", ParamType::FLOAT).optional(),
            Param::query("sort", ParamType::STR).default(Value::Str("relevance".into())),
            Param::query("order", order()).default(Value::Str("asc".into())),
            Param::query("page", ParamType::INT).default(int(1)),
            Param::query("limit", ParamType::INT).default(int(20)),
        ]))
        .route(
            Route::get("/query/many", query_many)
                .param(Param::query("q", ParamType::STR))
                .params(
                    [
                        Param::query("page", ParamType::INT),
                        Param::query("limit", ParamType::INT),
                        Param::query("sort", ParamType::STR),
                        Param::query("order", order()),
                        Param::query("category", ParamType::STR),
                        Param::query("min_price", ParamType::FLOAT),
                        Param::query("max_price", ParamType::FLOAT),
                        Param::query("in_stock", ParamType::BOOL),
                        Param::query("brand", ParamType::STR),
                        Param::query("rating", ParamType::INT),
                        Param::query("color", ParamType::STR),
                        Param::query("size", ParamType::STR),
                        Param::query("lang", ParamType::STR),
                        Param::query("include_archived", ParamType::BOOL),
                        Param::query("fields", ParamType::csv(Scalar::Str)),
                    ]
                    .map(Param::optional),
                ),
        )
        .route(
            Route::post("/urlencoded/simple", urlencoded_simple).params([
                Param::form("name", ParamType::STR),
                Param::form("email", ParamType::STR),
                Param::form("age", ParamType::INT),
                Param::form("city", ParamType::STR),
            ]),
        )
        .route(
            // Declared in the order forms send them, which is also the order the handler
            // reads them: each key is then found with one comparison.
            Route::post("/urlencoded/complex", urlencoded_complex).params([
                Param::form("first_name", ParamType::STR),
                Param::form("last_name", ParamType::STR),
                Param::form("email", ParamType::STR),
                Param::form("phone", ParamType::STR),
                Param::form("age", ParamType::INT),
                Param::form("street", ParamType::STR),
                Param::form("city", ParamType::STR),
                Param::form("state", ParamType::STR),
                Param::form("zip", ParamType::STR),
                Param::form("country", ParamType::STR),
                Param::form("newsletter", ParamType::BOOL),
                Param::form("interests", ParamType::repeated(Scalar::Str)),
                Param::form("plan", ParamType::STR),
                Param::form("referral_code", ParamType::STR),
                Param::form("company", ParamType::STR),
                Param::form("job_title", ParamType::STR),
                Param::form("bio", ParamType::STR),
                Param::form("terms_accepted", ParamType::BOOL),
            ]),
        )
        .route(upload_route("/multipart/small"))
        .route(upload_route("/multipart/medium"))
        .route(upload_route("/multipart/large"))
        .route(
            Route::post("/api/v1/users/{user_id}/posts", mixed)
                .body(BodyKind::Json)
                .params([
                    Param::path("user_id", ParamType::INT),
                    bool_default("publish"),
                    bool_default("notify"),
                ]),
        )
        .route(
            Route::get("/sse/{count}", sse_ticks)
                .param(Param::path("count", ParamType::INT).range(1, 100_000)),
        )
        .route(Route::websocket("/ws/echo", echo))
        .route(Route::get("/fault", fault))
        .route(Route::get("/json", json_hello))
        .route(Route::get("/plaintext", plaintext))
        .route(Route::get("/db", db_one))
        .route(Route::get("/queries", queries).param(queries_param()))
        .route(Route::get("/updates", updates).param(queries_param()))
        .route(Route::get("/fortunes", fortunes))
}
