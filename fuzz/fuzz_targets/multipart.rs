//! Multipart bodies (boundary `XB`), read and decoded as a form route does, then run through
//! a plan with a form parameter of every type and a file.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use spikard_core::body::{self, BodyData, BodyKind, BodyRules};
use spikard_core::error::Source;
use spikard_core::params::Inputs;
use spikard_core::{Param, ParamType};
use std::sync::LazyLock;
use std::time::Duration;

static PLAN: LazyLock<spikard_core::ParamPlan> = LazyLock::new(|| {
    let mut params = common::plan(Source::Form).params().to_vec();
    params.push(Param::form("file", ParamType::File).optional());
    spikard_core::ParamPlan::new(params)
});

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
}

fuzz_target!(|data: &[u8]| {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("multipart/form-data; boundary=XB"),
    );
    let rules = BodyRules {
        limit: 1 << 20,
        timeout: Duration::from_secs(5),
    };
    let body = axum::body::Body::from(data.to_vec());
    let read =
        RUNTIME.with(|rt| rt.block_on(body::read(BodyKind::Form, true, &headers, body, rules)));
    let form = match read {
        Ok(BodyData::Form(form)) => form,
        Ok(other) => panic!("a form route got {other:?}"),
        Err(err) => return common::check_refusal(&err),
    };
    let inputs = Inputs {
        path: &[],
        query: None,
        headers: &headers,
        form: Some(&form),
    };
    common::extract_and_check(&PLAN, inputs);
});
