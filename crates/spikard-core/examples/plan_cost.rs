//! What a route's parameter plan costs per request, without the network: the
//! urlencoded-complex form (18 fields) decoded pair by pair, then run through the plan.
//!
//!     cargo run --release -p spikard-core --example plan_cost
#![allow(clippy::unwrap_used)]

use spikard_core::params::{FormData, Inputs};
use spikard_core::{Param, ParamPlan, ParamType, Scalar};
use std::hint::black_box;
use std::time::Instant;

const FORM: &str = "first_name=Jane&last_name=O%27Neil&email=jane.oneil%40example.com\
&phone=%2B1+555+0100&age=34&street=42+Elm+Street%2C+Apt+5&city=San+Francisco&state=CA\
&zip=94110&country=United+States&newsletter=true&interests=hiking&interests=jazz+music\
&interests=caf%C3%A9s&plan=pro&referral_code=FRIEND-2024&company=Acme+%26+Co.\
&job_title=Senior+Engineer&bio=Loves+long+walks%2C+short+code+%26+clear+docs.\
&terms_accepted=true";

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

fn main() {
    let str_field = |name: &str| Param::form(name, ParamType::STR);
    let plan = ParamPlan::new(vec![
        str_field("first_name"),
        str_field("last_name"),
        str_field("email"),
        str_field("phone"),
        Param::form("age", ParamType::INT),
        str_field("street"),
        str_field("city"),
        str_field("state"),
        str_field("zip"),
        str_field("country"),
        Param::form("newsletter", ParamType::BOOL),
        Param::form("interests", ParamType::repeated(Scalar::Str)),
        str_field("plan"),
        str_field("referral_code"),
        str_field("company"),
        str_field("job_title"),
        str_field("bio"),
        Param::form("terms_accepted", ParamType::BOOL),
    ]);
    let headers = http::HeaderMap::new();
    let form = FormData::UrlEncoded(bytes::Bytes::from_static(FORM.as_bytes()));
    let n = 200_000;
    let decode = time(n, || {
        for pair in spikard_core::urlencoded::pairs(black_box(FORM)) {
            black_box(pair.unwrap());
        }
    });
    let owned = time(n, || {
        for pair in spikard_core::urlencoded::pairs(black_box(FORM)) {
            let (k, v) = pair.unwrap();
            black_box((k, v.into_owned()));
        }
    });
    let extract = time(n, || {
        let values = plan
            .extract(Inputs {
                path: &[],
                query: None,
                headers: &headers,
                form: Some(black_box(&form)),
            })
            .unwrap();
        black_box(values);
    });
    println!("ns per form: pairs {decode:.0}, pairs + owned values {owned:.0}, plan {extract:.0}");
}
