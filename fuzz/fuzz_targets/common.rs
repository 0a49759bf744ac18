//! What every target shares: a plan with one parameter of every type, read from one
//! source, and the check that a refusal is a well-formed 400 or 422 problem document.
#![allow(dead_code)]

use spikard_core::error::Source;
use spikard_core::params::Inputs;
use spikard_core::{Error, Param, ParamPlan, ParamType, Scalar, Value};

/// A parameter of every kind, read from `source`. Path parameters are single values.
pub fn plan(source: Source) -> ParamPlan {
    let p = |name: &str, ty: ParamType| Param::new(name, source, ty);
    let mut params = vec![
        p("s", ParamType::STR),
        p("i", ParamType::INT).optional(),
        p("f", ParamType::FLOAT).optional(),
        p("b", ParamType::BOOL).optional(),
        p("u", ParamType::UUID).optional(),
        p("d", ParamType::DATE).optional(),
        p("t", ParamType::DATETIME).optional(),
        p("e", ParamType::one_of(["asc", "desc"])).optional(),
        p("r", ParamType::INT).range(1, 100).default(Value::Int(20)),
    ];
    if source != Source::Path {
        params.push(p("c", ParamType::csv(Scalar::Str)));
        params.push(p("n", ParamType::repeated(Scalar::Int)).optional());
        params.push(p("x", ParamType::repeated(Scalar::Uuid)).optional());
    }
    ParamPlan::new(params)
}

/// A refusal must be a 400 or 422 whose problem document says the same.
pub fn check_refusal(err: &Error) {
    let status = err.status().as_u16();
    assert!(status == 400 || status == 422, "unexpected answer {err}");
    let doc: serde_json::Value =
        serde_json::from_slice(&err.to_problem_json()).expect("a problem document is JSON");
    assert_eq!(doc["status"], status);
    assert!(doc["type"]
        .as_str()
        .is_some_and(|t| t.starts_with("urn:spikard:problem:")));
    if status == 422 {
        assert!(doc["errors"].as_array().is_some_and(|e| !e.is_empty()));
    }
}

/// Runs `plan` on `inputs`: what it accepts holds no NUL, what it refuses is a well-formed
/// 400 or 422.
pub fn extract_and_check(plan: &ParamPlan, inputs: Inputs<'_>) {
    match plan.extract(inputs) {
        Ok(values) => check_values(plan, &values),
        Err(err) => check_refusal(&err),
    }
}

/// Values a plan accepted hold no NUL character.
pub fn check_values(plan: &ParamPlan, values: &[Value]) {
    assert_eq!(values.len(), plan.params().len());
    for value in values {
        match value {
            Value::Str(s) => assert!(!s.contains('\0'), "NUL reached a value"),
            Value::List(items) => check_values_list(items),
            _ => {}
        }
    }
}

fn check_values_list(items: &[Value]) {
    for item in items {
        if let Value::Str(s) = item {
            assert!(!s.contains('\0'), "NUL reached a value");
        }
    }
}
