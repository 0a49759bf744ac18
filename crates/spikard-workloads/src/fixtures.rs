//! Deterministic request bodies of the specified sizes.

use serde_json::{json, Value};

/// json-small: exactly the 86-byte body of WORKLOADS.md.
pub const JSON_SMALL: &str =
    r#"{"id":12345,"name":"test_item","active":true,"count":42,"tags":["tag1","tag2","tag3"]}"#;

/// json-medium: a Product of about 1.5 KB.
pub fn product() -> Value {
    json!({
        "id": 98765,
        "sku": "SPK-TRAIL-42-BLU",
        "name": "Trailblazer 42L Hiking Backpack",
        "description": "A lightweight 42-litre pack for multi-day hikes: ventilated back panel, \
            adjustable torso length, hip-belt pockets, a hydration sleeve and a rain cover \
            stowed in the lid. Made from recycled ripstop nylon with a water-repellent finish; \
            the aluminium frame sheet is removable, and every buckle can be replaced in the \
            field with the spare kit sewn into the hip belt.",
        "price": 149.99,
        "currency": "EUR",
        "in_stock": true,
        "quantity": 37,
        "categories": ["outdoor", "hiking", "backpacks", "travel"],
        "tags": ["lightweight", "recycled", "waterproof", "unisex", "bestseller"],
        "attributes": {
            "material": "recycled nylon",
            "capacity": "42 L",
            "weight": "1.35 kg",
            "warranty": "5 years",
            "origin": "Portugal"
        },
        "dimensions": {"width": 32.5, "height": 64.0, "depth": 24.25, "unit": "cm"},
        "ratings": {
            "average": 4.6,
            "count": 1287,
            "distribution": {"1": 21, "2": 34, "3": 97, "4": 310, "5": 825}
        },
        "variants": [
            {"sku": "SPK-TRAIL-42-BLU-S", "color": "blue", "size": "S", "price": 149.99, "stock": 8},
            {"sku": "SPK-TRAIL-42-BLU-M", "color": "blue", "size": "M", "price": 149.99, "stock": 14},
            {"sku": "SPK-TRAIL-42-GRN-M", "color": "green", "size": "M", "price": 154.5, "stock": 6},
            {"sku": "SPK-TRAIL-42-BLK-L", "color": "black", "size": "L", "price": 159.0, "stock": 9},
            {"sku": "SPK-TRAIL-42-BLK-XL", "color": "black", "size": "XL", "price": 159.0, "stock": 3},
            {"sku": "SPK-TRAIL-42-RED-S", "color": "red", "size": "S", "price": 139.99, "stock": 0}
        ],
        "created_at": "2024-03-18T09:41:27Z",
        "updated_at": "2024-11-02T16:05:13Z"
    })
}

/// json-large: a Catalog page of 100 items, about 15 KB.
pub fn catalog() -> Value {
    const COLORS: [&str; 5] = ["red", "green", "blue", "black", "white"];
    const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
    const MATERIALS: [&str; 3] = ["cotton", "wool", "polyester"];
    let items: Vec<Value> = (1..=100u32)
        .map(|i| {
            let cents = (i * 7919) % 10_000;
            json!({
                "id": 10_000 + i,
                "name": format!("Item {i:03}"),
                "price": f64::from(cents) / 100.0 + 1.0,
                "in_stock": i % 3 != 0,
                "tags": [format!("group-{}", i % 7), format!("batch-{}", i % 11)],
                "attributes": {
                    "color": COLORS[(i % 5) as usize],
                    "size": SIZES[(i % 4) as usize],
                    "material": MATERIALS[(i % 3) as usize]
                }
            })
        })
        .collect();
    json!({"page": 3, "per_page": 100, "total": 4210, "items": items})
}

/// The mixed workload's post.
pub fn post() -> Value {
    json!({
        "title": "Shipping the engine",
        "body": "Typed parameters, problem documents and a route table.",
        "tags": ["release", "engine"]
    })
}

pub const URLENCODED_SIMPLE: &str = "name=John+Doe&email=john%40example.com&age=30&city=New+York";

pub const URLENCODED_COMPLEX: &str = "first_name=Jane&last_name=O%27Neil\
&email=jane.oneil%40example.com&phone=%2B1+555+0100&age=34\
&street=42+Elm+Street%2C+Apt+5&city=San+Francisco&state=CA&zip=94110\
&country=United+States&newsletter=true&interests=hiking&interests=jazz+music\
&interests=caf%C3%A9s&plan=pro&referral_code=FRIEND-2024&company=Acme+%26+Co.\
&job_title=Senior+Engineer&bio=Loves+long+walks%2C+short+code+%26+clear+docs.\
&terms_accepted=true";

pub fn urlencoded_complex_answer() -> Value {
    json!({
        "first_name": "Jane", "last_name": "O'Neil", "email": "jane.oneil@example.com",
        "phone": "+1 555 0100", "age": 34, "street": "42 Elm Street, Apt 5",
        "city": "San Francisco", "state": "CA", "zip": "94110", "country": "United States",
        "newsletter": true, "interests": ["hiking", "jazz music", "cafés"], "plan": "pro",
        "referral_code": "FRIEND-2024", "company": "Acme & Co.", "job_title": "Senior Engineer",
        "bio": "Loves long walks, short code & clear docs.", "terms_accepted": true
    })
}

pub const QUERY_MANY: &str = "q=hello%20world%21&page=2&limit=50&sort=created&order=desc\
&category=books&min_price=5.5&max_price=99.99&in_stock=true&brand=acme&rating=4&color=blue\
&size=large&lang=en&include_archived=false&fields=id,name,price";

pub fn query_many_answer() -> Value {
    json!({
        "q": "hello world!", "page": 2, "limit": 50, "sort": "created", "order": "desc",
        "category": "books", "min_price": 5.5, "max_price": 99.99, "in_stock": true,
        "brand": "acme", "rating": 4, "color": "blue", "size": "large", "lang": "en",
        "include_archived": false, "fields": ["id", "name", "price"]
    })
}

/// The multipart boundary of the sample bodies.
pub const BOUNDARY: &str = "spikard-boundary-7MA4YWxkTrZu0gW";

/// `len` deterministic pseudo-random bytes (a 32-bit LCG), every byte value possible.
pub fn file_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect()
}

/// A `multipart/form-data` body with a `description` text field and a `file` field.
pub fn multipart_body(
    description: &str,
    filename: &str,
    content_type: &str,
    file: &[u8],
) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 512);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n\
             {description}\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub fn multipart_content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(value: &Value) -> usize {
        serde_json::to_vec(value).map(|v| v.len()).unwrap_or(0)
    }

    #[test]
    fn sizes_are_as_specified() {
        assert_eq!(JSON_SMALL.len(), 86);
        let medium = size(&product());
        assert!(
            (1400..=1600).contains(&medium),
            "json-medium is {medium} bytes"
        );
        let large = size(&catalog());
        assert!(
            (14_000..=16_000).contains(&large),
            "json-large is {large} bytes"
        );
        assert_eq!(file_bytes(1024, 1).len(), 1024);
        assert_eq!(file_bytes(16, 7), file_bytes(16, 7));
        assert_ne!(file_bytes(16, 7), file_bytes(16, 8));
    }
}
