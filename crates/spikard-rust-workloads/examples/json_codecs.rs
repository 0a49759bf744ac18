//! Decoding and encoding the JSON workloads' records with serde_json (owned strings, as the
//! handlers do), serde_json into borrowed strings, sonic-rs and simd-json: ns per body, best
//! of five rounds, with the workload server's allocator (mimalloc).
//!
//! The engine encodes with sonic-rs (same bytes as serde_json, faster) and decodes with
//! serde_json: sonic-rs 0.5 decodes faster too, but skips unknown fields recursively with no
//! depth limit, so one deeply nested request body overflows the stack and kills the process.
//!
//!     cargo run --release -p spikard-rust-workloads --features json-bench --example json_codecs

#![allow(clippy::unwrap_used)]

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spikard_rust_workloads::types::{Catalog, Product, SmallItem};
use spikard_workloads::fixtures;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

// The allocator of the workload server.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The same records with strings borrowed from the body where it has no escapes.
mod borrowed {
    use super::*;

    #[derive(Deserialize, Serialize)]
    pub struct SmallItem<'a> {
        pub id: i64,
        #[serde(borrow)]
        pub name: Cow<'a, str>,
        pub active: bool,
        pub count: i64,
        #[serde(borrow)]
        pub tags: Vec<Cow<'a, str>>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Dimensions<'a> {
        pub width: f64,
        pub height: f64,
        pub depth: f64,
        #[serde(borrow)]
        pub unit: Cow<'a, str>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Ratings<'a> {
        pub average: f64,
        pub count: i64,
        #[serde(borrow)]
        pub distribution: BTreeMap<Cow<'a, str>, i64>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Variant<'a> {
        #[serde(borrow)]
        pub sku: Cow<'a, str>,
        #[serde(borrow)]
        pub color: Cow<'a, str>,
        #[serde(borrow)]
        pub size: Cow<'a, str>,
        pub price: f64,
        pub stock: i64,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Product<'a> {
        pub id: i64,
        #[serde(borrow)]
        pub sku: Cow<'a, str>,
        #[serde(borrow)]
        pub name: Cow<'a, str>,
        #[serde(borrow)]
        pub description: Cow<'a, str>,
        pub price: f64,
        #[serde(borrow)]
        pub currency: Cow<'a, str>,
        pub in_stock: bool,
        pub quantity: i64,
        #[serde(borrow)]
        pub categories: Vec<Cow<'a, str>>,
        #[serde(borrow)]
        pub tags: Vec<Cow<'a, str>>,
        #[serde(borrow)]
        pub attributes: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
        #[serde(borrow)]
        pub dimensions: Dimensions<'a>,
        #[serde(borrow)]
        pub ratings: Ratings<'a>,
        #[serde(borrow)]
        pub variants: Vec<Variant<'a>>,
        #[serde(borrow)]
        pub created_at: Cow<'a, str>,
        #[serde(borrow)]
        pub updated_at: Cow<'a, str>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct ItemAttributes<'a> {
        #[serde(borrow)]
        pub color: Cow<'a, str>,
        #[serde(borrow)]
        pub size: Cow<'a, str>,
        #[serde(borrow)]
        pub material: Cow<'a, str>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct CatalogItem<'a> {
        pub id: i64,
        #[serde(borrow)]
        pub name: Cow<'a, str>,
        pub price: f64,
        pub in_stock: bool,
        #[serde(borrow)]
        pub tags: Vec<Cow<'a, str>>,
        #[serde(borrow)]
        pub attributes: ItemAttributes<'a>,
    }

    #[derive(Deserialize, Serialize)]
    pub struct Catalog<'a> {
        pub page: i64,
        pub per_page: i64,
        pub total: i64,
        #[serde(borrow)]
        pub items: Vec<CatalogItem<'a>>,
    }
}

/// Nanoseconds per call of `f`: the best of five rounds of `n` calls.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn row(name: &str, body: &[u8], timings: &[(&str, f64)]) {
    let cells: Vec<String> = timings
        .iter()
        .map(|(what, ns)| format!("{what} {:>8.0}", ns))
        .collect();
    println!("{name:<12} {:>6} B  {}", body.len(), cells.join("  "));
}

/// Every codec decodes `body` into `T` (and `borrowed` into its borrowed mirror), then
/// encodes it.
fn measure<T>(name: &str, body: &[u8], n: u32, borrowed: fn(&[u8]))
where
    T: DeserializeOwned + Serialize,
{
    let mut scratch = body.to_vec();
    let decode = [
        (
            "serde_json",
            time(n, || {
                black_box(serde_json::from_slice::<T>(black_box(body)).unwrap());
            }),
        ),
        (
            "serde_json borrowed",
            time(n, || {
                borrowed(black_box(body));
            }),
        ),
        (
            "sonic-rs",
            time(n, || {
                black_box(sonic_rs::from_slice::<T>(black_box(body)).unwrap());
            }),
        ),
        (
            "simd-json",
            time(n, || {
                // simd-json parses in place: each call gets a fresh copy, as a request would.
                scratch.copy_from_slice(body);
                black_box(simd_json::serde::from_slice::<T>(black_box(&mut scratch)).unwrap());
            }),
        ),
    ];
    row(&format!("{name} decode"), body, &decode);
    let value: T = serde_json::from_slice(body).unwrap();
    let mut out = Vec::with_capacity(body.len() + 64);
    let encode = [
        (
            "serde_json",
            time(n, || {
                out.clear();
                serde_json::to_writer(&mut out, black_box(&value)).unwrap();
            }),
        ),
        (
            "sonic-rs",
            time(n, || {
                out.clear();
                sonic_rs::to_writer(&mut out, black_box(&value)).unwrap();
            }),
        ),
        (
            "simd-json",
            time(n, || {
                out.clear();
                simd_json::serde::to_writer(&mut out, black_box(&value)).unwrap();
            }),
        ),
    ];
    row(&format!("{name} encode"), body, &encode);
}

fn main() {
    let medium = serde_json::to_vec(&fixtures::product()).unwrap();
    let large = serde_json::to_vec(&fixtures::catalog()).unwrap();
    println!("ns per body, best of 5 rounds");
    measure::<SmallItem>(
        "json-small",
        fixtures::JSON_SMALL.as_bytes(),
        200_000,
        |body| {
            black_box(serde_json::from_slice::<borrowed::SmallItem>(body).unwrap());
        },
    );
    measure::<Product>("json-medium", &medium, 50_000, |body| {
        black_box(serde_json::from_slice::<borrowed::Product>(body).unwrap());
    });
    measure::<Catalog>("json-large", &large, 5_000, |body| {
        black_box(serde_json::from_slice::<borrowed::Catalog>(body).unwrap());
    });
}
