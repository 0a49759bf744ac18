//! The typed records of the workloads: request bodies decode into them, answers encode from
//! them. Unknown JSON fields are dropped (serde's default).

use serde::{Deserialize, Serialize};
use spikard_core::{FromValue, Value};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, Serialize)]
pub struct SmallItem {
    pub id: i64,
    pub name: String,
    pub active: bool,
    pub count: i64,
    pub tags: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Dimensions {
    pub width: f64,
    pub height: f64,
    pub depth: f64,
    pub unit: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Ratings {
    pub average: f64,
    pub count: i64,
    pub distribution: BTreeMap<String, i64>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Variant {
    pub sku: String,
    pub color: String,
    pub size: String,
    pub price: f64,
    pub stock: i64,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Product {
    pub id: i64,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: f64,
    pub currency: String,
    pub in_stock: bool,
    pub quantity: i64,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub dimensions: Dimensions,
    pub ratings: Ratings,
    pub variants: Vec<Variant>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ItemAttributes {
    pub color: String,
    pub size: String,
    pub material: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct CatalogItem {
    pub id: i64,
    pub name: String,
    pub price: f64,
    pub in_stock: bool,
    pub tags: Vec<String>,
    pub attributes: ItemAttributes,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Catalog {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub items: Vec<CatalogItem>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct Post {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct MixedAnswer {
    pub user_id: i64,
    pub publish: bool,
    pub notify: bool,
    pub post: Post,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

impl Order {
    pub const CHOICES: [&'static str; 2] = ["asc", "desc"];
}

impl FromValue for Order {
    fn from_value(value: Value) -> Option<Self> {
        match value {
            Value::Str(s) if s == "asc" => Some(Order::Asc),
            Value::Str(s) if s == "desc" => Some(Order::Desc),
            _ => None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct QueryFew {
    pub q: String,
    pub page: i64,
    pub limit: i64,
}

#[derive(Debug, Serialize)]
pub struct QueryMedium {
    pub category: String,
    pub tags: Vec<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub sort: String,
    pub order: Order,
    pub page: i64,
    pub limit: i64,
}

#[derive(Debug, Serialize)]
pub struct QueryMany {
    pub q: String,
    pub page: Option<i64>,
    pub limit: Option<i64>,
    pub sort: Option<String>,
    pub order: Option<Order>,
    pub category: Option<String>,
    pub min_price: Option<f64>,
    pub max_price: Option<f64>,
    pub in_stock: Option<bool>,
    pub brand: Option<String>,
    pub rating: Option<i64>,
    pub color: Option<String>,
    pub size: Option<String>,
    pub lang: Option<String>,
    pub include_archived: Option<bool>,
    pub fields: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct FormSimple {
    pub name: String,
    pub email: String,
    pub age: i64,
    pub city: String,
}

#[derive(Debug, Default, Serialize)]
pub struct FormComplex {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: String,
    pub age: i64,
    pub street: String,
    pub city: String,
    pub state: String,
    pub zip: String,
    pub country: String,
    pub newsletter: bool,
    pub interests: Vec<String>,
    pub plan: String,
    pub referral_code: String,
    pub company: String,
    pub job_title: String,
    pub bio: String,
    pub terms_accepted: bool,
}

#[derive(Debug, Serialize)]
pub struct UploadAnswer {
    pub description: String,
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    pub crc32: u32,
}

#[derive(Debug, Serialize)]
pub struct DateAnswer {
    pub date: String,
    pub day_of_week: u32,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub seq: u64,
}

/// `{"message":"Hello, World!"}`, built per request.
#[derive(Serialize)]
pub struct HelloMessage {
    pub message: &'static str,
}
