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

/// Cases per property: `LOSSNAV_FUZZ_CASES` for long runs (docs/spec.md, "Fuzzing").
fn cases(default: u32) -> u32 {
    std::env::var("LOSSNAV_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The shipped specs: the seed corpus of the mutation fuzzer.
fn corpus() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/problems/specs");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Pieces of the expression language, valid and not, for random expressions.
const TOKENS: &[&str] = &[
    "x",
    "y",
    "t",
    "a",
    "2",
    "0",
    "-1",
    "1e300",
    "1e-300",
    "0.5",
    "+",
    "-",
    "*",
    "/",
    "^",
    "(",
    ")",
    ",",
    "sin(",
    "exp(",
    "ln(",
    "sqrt(",
    "abs(",
    "tanh(",
    "sigmoid(",
    "softplus(",
    "min(",
    "max(",
    "atan2(",
    "pow(",
    "floor(",
    "PI",
    "e",
    "q",
    "2x",
    "%",
    "^-",
    "--",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(300)))]

    /// Byte-range edits of every shipped spec: `Ok` or a typed error, never a panic.
    #[test]
    fn edits_of_shipped_specs_never_panic(
        which in 0usize..64,
        pos in 0usize..4096,
        cut in 0usize..16,
        piece in 0usize..PIECES.len(),
    ) {
        let corpus = corpus();
        let mut text = corpus[which % corpus.len()].clone();
        // (A spec file being rewritten while a long run reads it can be empty.)
        prop_assume!(!text.is_empty());
        let pos = pos % text.len();
        let start = (0..=pos).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (start + cut..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(start..end, PIECES[piece]);
        let result = std::panic::catch_unwind(|| Spec::from_json(&text).and_then(|s| s.to_problem()).map(|_| ()));
        prop_assert!(result.is_ok(), "panicked on {text}");
    }

    /// Random token strings as a loss: compiled (or refused with a typed error), and where
    /// compiled, value, gradient, Hessian and Hessian–vector product evaluate without panicking.
    #[test]
    fn random_expressions_never_panic(tokens in proptest::collection::vec(0usize..TOKENS.len(), 1..40)) {
        let expr: String = tokens.iter().map(|&i| TOKENS[i]).collect::<Vec<_>>().join(" ");
        let spec = serde_json::json!({
            "loss": {"expr": expr, "vars": ["x", "y"], "params": {"a": 1.5}},
            "theta0": [0.3, -0.7], "horizon": 1.0, "end": "free"
        })
        .to_string();
        let result = std::panic::catch_unwind(|| {
            if let Ok(p) = Spec::from_json(&spec).and_then(|s| s.to_problem()) {
                let loss = p.lagrangian().loss();
                let _ = loss.value(&[0.3, -0.7], 0.5);
                let mut g = [0.0; 2];
                loss.gradient(&[0.3, -0.7], 0.5, &mut g);
                let mut h = nalgebra::DMatrix::zeros(2, 2);
                loss.hessian(&[0.3, -0.7], 0.5, &mut h);
                loss.hessian_vector(&[0.3, -0.7], 0.5, &[1.0, -2.0], &mut g);
            }
        });
        prop_assert!(result.is_ok(), "panicked on {expr}");
    }
}
