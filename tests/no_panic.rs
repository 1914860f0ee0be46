//! No input makes spec loading panic: random edits of a valid spec must give `Ok` or a typed
//! error.

use proptest::prelude::*;

use lossnav::problems::Spec;

const BASE: &str = r#"{"name": "w", "loss": {"expr": "a*(x^2-b)^2 + c*y^2 + d*x", "vars": ["x", "y"], "params": {"a": 1, "b": 1, "c": 1, "d": -0.5}}, "metric": {"expr": [["1 + x^2", "0.1*x*y"], ["0.1*x*y", "1 + y^2"]]}, "drift": {"expr": ["-0.1*y", "0.1*x"]}, "eta": 1.0, "k": 1.0, "gamma": 0.1, "theta0": [-0.6, 0.55], "horizon": 4.0, "end": {"fixed": [1.0625, 0.0]}}"#;

const PIECES: &[&str] = &[
    "0",
    "-1",
    "1e999",
    "null",
    "\"infinite\"",
    "[]",
    "[[1]]",
    "{}",
    "\"x\"",
    "\"/\"",
    "\"log(x)\"",
    "\"(\"",
    "\"x^\"",
    "\"sqrt(-1)\"",
    ",",
    ":",
    "]",
    "}",
    "\"t\"",
    "\"e\"",
    "-0.0",
    "1e-320",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_edits_never_panic(pos in 0usize..BASE.len(), cut in 0usize..12, piece in 0usize..PIECES.len()) {
        let mut text = BASE.to_string();
        let start = (0..=pos).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (start + cut..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(start..end, PIECES[piece]);
        let result = std::panic::catch_unwind(|| Spec::from_json(&text).and_then(|s| s.to_problem()).map(|_| ()));
        prop_assert!(result.is_ok(), "panicked on {text}");
    }
}
