//! Query strings: decoded pair by pair (checked against the `form_urlencoded` crate) and run
//! through a plan with a parameter of every type.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use spikard_core::error::Source;
use spikard_core::params::Inputs;
use spikard_core::urlencoded;
use std::sync::LazyLock;

static PLAN: LazyLock<spikard_core::ParamPlan> = LazyLock::new(|| common::plan(Source::Query));

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let ours: Result<Vec<_>, _> = urlencoded::pairs(query).collect();
    if let Ok(pairs) = ours {
        let theirs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
        assert_eq!(pairs, theirs, "decoded otherwise than form_urlencoded");
    }
    let headers = http::HeaderMap::new();
    let inputs = Inputs {
        path: &[],
        query: Some(query),
        headers: &headers,
        form: None,
    };
    common::extract_and_check(&PLAN, inputs);
});
