//! Spikard's benchmark workloads with Rust handlers, and the bare axum ceiling they are
//! measured against. Both refuse to start unless they serve every route of the table.

pub mod bare;
pub mod db;
pub mod handlers;
pub mod types;

/// Which server to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The Spikard engine with Rust handlers.
    Engine,
    /// Plain axum, the ceiling.
    Bare,
}

use spikard_core::server::Respond;
use spikard_core::BodyRules;

/// A router of either flavor.
#[derive(Clone)]
pub enum Routes {
    Engine(spikard_core::Router),
    Bare(axum::Router),
}

impl Respond for Routes {
    fn respond(
        &self,
        req: http::Request<hyper::body::Incoming>,
    ) -> futures_util::future::BoxFuture<'static, axum::response::Response> {
        match self {
            Routes::Engine(router) => router.respond(req),
            Routes::Bare(router) => Respond::respond(router, req),
        }
    }
}

/// Builds the router of `flavor`, or says which routes of the table it does not serve. The
/// bare ceiling takes the body limit only (axum has no body timeout).
pub fn router(flavor: Flavor, body: BodyRules) -> Result<Routes, String> {
    let (router, endpoints) = match flavor {
        Flavor::Engine => {
            let app = handlers::app().body_rules(body);
            let endpoints: Vec<(String, String)> = app
                .endpoints()
                .into_iter()
                .map(|(m, p)| (m.to_string(), p))
                .collect();
            let router = app.into_router().map_err(|e| e.to_string())?;
            (Routes::Engine(router), endpoints)
        }
        Flavor::Bare => {
            let (router, endpoints) = bare::router();
            let endpoints = endpoints
                .into_iter()
                .map(|(m, p)| (m.to_owned(), p.to_owned()))
                .collect();
            let limit = axum::extract::DefaultBodyLimit::max(body.limit);
            (Routes::Bare(router.layer(limit)), endpoints)
        }
    };
    let served: Vec<(&str, &str)> = endpoints
        .iter()
        .map(|(m, p)| (m.as_str(), p.as_str()))
        .collect();
    let missing = spikard_workloads::unserved(&served);
    if missing.is_empty() {
        Ok(router)
    } else {
        let names: Vec<String> = missing
            .iter()
            .map(|w| format!("{} ({} {})", w.name, w.method, w.route))
            .collect();
        Err(format!(
            "routes of the table not served: {}",
            names.join(", ")
        ))
    }
}
