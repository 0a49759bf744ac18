//! JSON bodies into Python objects and back: the engine's decoder accepts exactly what
//! serde_json accepts, the objects encode back to the same JSON value, and the body rules
//! (depth, 64-bit integers) agree with serde_json.
#![no_main]

use _spikard::convert::{json_to_py, py_to_json};
use libfuzzer_sys::fuzz_target;
use pyo3::Python;
use spikard_core::json;

fuzz_target!(|data: &[u8]| {
    Python::initialize();
    let expected = serde_json::from_slice::<serde_json::Value>(data);
    if expected.is_ok() {
        assert!(
            !json::too_deep(data),
            "serde_json decoded a body the depth rule refuses"
        );
    }
    if json::check_integers(data).is_err() {
        let run_of_19_digits = data.windows(19).any(|w| w.iter().all(u8::is_ascii_digit));
        assert!(
            run_of_19_digits,
            "a wide integer found in a body without one"
        );
    }
    Python::attach(|py| {
        let decoded = json_to_py(py, data);
        assert_eq!(
            decoded.is_ok(),
            expected.is_ok(),
            "{:?}",
            decoded.as_ref().err()
        );
        let (Ok(object), Ok(expected)) = (decoded, expected) else {
            return;
        };
        let encoded = py_to_json(&object).expect("a decoded body encodes");
        let again: serde_json::Value =
            serde_json::from_slice(&encoded).expect("the encoding is JSON");
        // serde_json's float parsing is not always correctly rounded (its `float_roundtrip`
        // feature is off), so the reference goes through the same encode-and-parse.
        let reference: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&expected).expect("encodes"))
                .expect("the reference is JSON");
        assert_eq!(again, reference);
    });
});
