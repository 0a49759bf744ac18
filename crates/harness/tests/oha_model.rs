//! oha's JSON, as oha 1.16 wrote it, parsed by the harness's model.
#![allow(clippy::unwrap_used)]

use harness::oha::Output;

fn load(name: &str) -> Output {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    Output::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_clean_run_counts() {
    let out = load("oha-ok.json");
    assert!(out.summary.requests_per_sec.unwrap() > 1000.0);
    assert!(out.percentile("p99").unwrap() > out.percentile("p50").unwrap());
    assert!(out.percentile("p99.9").is_some());
    assert_eq!(out.failure(), None, "the deadline abort is not a failure");
}

#[test]
fn four_xx_answers_fail_the_run_although_oha_calls_them_successes() {
    let out = load("oha-422.json");
    assert_eq!(out.summary.success_rate, Some(1.0));
    let failure = out.failure().unwrap();
    assert!(failure.contains("HTTP 422"), "{failure}");
}

#[test]
fn transport_errors_and_nan_fields() {
    let out = load("oha-refused.json");
    assert_eq!(out.summary.average, None, "NaN is written as null");
    assert!(out.failure().unwrap().contains("Connection refused"));
}

#[test]
fn unknown_fields_from_newer_versions_are_ignored() {
    let json = r#"{"summary":{"requestsPerSec":5.0,"newField":1},"statusCodeDistribution":{"200":5},
                   "errorDistribution":{},"brandNewSection":[1,2]}"#;
    let out = Output::parse(json).unwrap();
    assert_eq!(out.summary.requests_per_sec, Some(5.0));
    assert_eq!(out.failure(), None);
}
