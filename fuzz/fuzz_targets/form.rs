//! URL-encoded form bodies, any bytes (not only UTF-8), through a plan with a form
//! parameter of every type.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use spikard_core::error::Source;
use spikard_core::params::{FormData, Inputs};
use std::sync::LazyLock;

static PLAN: LazyLock<spikard_core::ParamPlan> = LazyLock::new(|| common::plan(Source::Form));

fuzz_target!(|data: &[u8]| {
    let headers = http::HeaderMap::new();
    let form = FormData::UrlEncoded(bytes::Bytes::copy_from_slice(data));
    let inputs = Inputs {
        path: &[],
        query: None,
        headers: &headers,
        form: Some(&form),
    };
    common::extract_and_check(&PLAN, inputs);
});
