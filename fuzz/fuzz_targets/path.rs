//! Path parameters: up to nine `/`-separated segments, percent-decoded as the router does,
//! bound in order to a plan of single-valued parameters of every type.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use spikard_core::error::Source;
use spikard_core::params::Inputs;
use std::sync::LazyLock;

static PLAN: LazyLock<spikard_core::ParamPlan> = LazyLock::new(|| common::plan(Source::Path));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names: Vec<&str> = PLAN.params().iter().map(|p| p.key.as_str()).collect();
    let path: Vec<(&str, &str)> = names.iter().copied().zip(text.split('/')).collect();
    let headers = http::HeaderMap::new();
    let inputs = Inputs {
        path: &path,
        query: None,
        headers: &headers,
        form: None,
    };
    match PLAN.extract(inputs) {
        Ok(values) => assert_eq!(values.len(), PLAN.params().len()),
        Err(err) => common::check_refusal(&err),
    }
});
