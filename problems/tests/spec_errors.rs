//! Every kind of bad input gets a typed error whose message names the cause.

use serde_json::{json, Value};

use lossnav_problems::{ProblemError, Spec};

fn base() -> Value {
    json!({
        "name": "figure-1 double well",
        "loss": {"expr": "a*(x^2-b)^2 + c*y^2 + d*x", "vars": ["x", "y"],
                 "params": {"a": 1, "b": 1, "c": 1, "d": -0.5}},
        "metric": "identity",
        "drift": null,
        "eta": 1.0, "k": 1.0, "gamma": 0.1,
        "theta0": [-0.6, 0.55],
        "horizon": 4.0,
        "end": {"fixed": [1.0625, 0.0]}
    })
}

fn with(path: &[&str], value: Value) -> String {
    let mut v = base();
    let mut slot = &mut v;
    for key in &path[..path.len() - 1] {
        slot = &mut slot[*key];
    }
    slot[path[path.len() - 1]] = value;
    v.to_string()
}

fn error_of(text: &str) -> ProblemError {
    match Spec::from_json(text).and_then(|s| s.to_problem()) {
        Ok(_) => panic!("spec was accepted: {text}"),
        Err(e) => e,
    }
}

/// Asserts the message contains every fragment.
fn assert_mentions(text: &str, fragments: &[&str]) -> ProblemError {
    let e = error_of(text);
    let msg = e.to_string();
    for f in fragments {
        assert!(msg.contains(f), "message {msg:?} does not mention {f:?}");
    }
    e
}

#[test]
fn base_spec_is_valid() {
    Spec::from_json(&base().to_string())
        .unwrap()
        .to_problem()
        .unwrap();
}

#[test]
fn malformed_json_reports_line_and_column() {
    let text = "{\n  \"loss\": {\"expr\": \"x^2\"},\n  \"theta0\": [1.0,, 2.0]\n}";
    let e = assert_mentions(text, &["line 3", "column"]);
    match e {
        ProblemError::Json { line, column, .. } => {
            assert_eq!(line, 3);
            assert_eq!(column, 18);
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

/// A value of the wrong type names the field it sits in, however deep.
#[test]
fn wrong_types_name_their_field() {
    assert_mentions(&with(&["eta"], json!("1")), &["eta:", "expected f64"]);
    assert_mentions(
        &with(&["theta0"], json!([0.1, "a"])),
        &["theta0[1]:", "expected f64"],
    );
}

#[test]
fn unknown_fields_are_named() {
    assert_mentions(&with(&["gama"], json!(0.1)), &["unknown field `gama`"]);
    assert_mentions(
        &with(&["loss", "exprr"], json!("x")),
        &["unknown field `exprr`"],
    );
    assert_mentions(
        &with(&["metric"], json!({"diagonal": [1, 2]})),
        &["unknown variant `diagonal`"],
    );
    assert_mentions(&with(&["end"], json!({"fix": [1, 2]})), &["end", "\"fix\""]);
    assert_mentions(
        &with(&["horizon"], json!("forever")),
        &["horizon", "\"infinite\""],
    );
}

#[test]
fn dimension_mismatches_name_field_and_sizes() {
    assert_mentions(
        &with(&["end", "fixed"], json!([1.0, 0.0, 0.0])),
        &["end.fixed", "2 entries", "3 entries"],
    );
    assert_mentions(
        &with(&["metric"], json!({"diag": [1.0]})),
        &["metric.diag", "2 entries", "1 entries"],
    );
    assert_mentions(
        &with(&["metric"], json!({"matrix": [[1.0, 0.0], [0.0]]})),
        &["metric.matrix[1]", "2 entries", "1 entries"],
    );
    // The loss names one variable, θ0 has two entries: θ0 is blamed, naming the variables.
    assert_mentions(
        &with(&["loss", "vars"], json!(["x"])),
        &[
            "theta0",
            "1 entries",
            "variable of the loss (x)",
            "got 2 entries",
        ],
    );
    assert_mentions(
        &with(
            &["loss"],
            json!({"quadratic": {"curvatures": [1, 2, 3], "minimum": [0, 0]}}),
        ),
        &["loss.quadratic.curvatures", "3 entries"],
    );
    assert_mentions(
        &with(&["drift"], json!({"linear": [[0, 1, 0], [1, 0, 0]]})),
        &["drift.linear[0]", "3 entries"],
    );
    assert_mentions(
        &with(&["drift"], json!({"expr": ["x"]})),
        &["drift.expr", "2 expressions"],
    );
    assert_mentions(
        &with(&["end"], json!({"equilibrium": [1.0]})).replace("4.0", "\"infinite\""),
        &["end.equilibrium", "1 entries"],
    );
}

#[test]
fn non_finite_numbers_are_rejected() {
    // JSON has no NaN or infinity; an overflowing literal is the way one sneaks in.
    assert_mentions(
        &with(&["theta0"], json!([0.0, 0.0])).replace("[0.0,0.0]", "[1e999, 0.0]"),
        &["line 1"],
    );
    // Through the Rust API a NaN is named with its field and index.
    let e = lossnav_problems::Quadratic::diagonal(vec![1.0, f64::NAN], vec![0.0, 0.0]).unwrap_err();
    assert!(e.to_string().contains("curvatures[1]"), "{e}");
    assert!(e.to_string().contains("not a finite number"), "{e}");
}

#[test]
fn parameter_ranges() {
    assert_mentions(&with(&["eta"], json!(0.0)), &["eta = 0", "> 0"]);
    assert_mentions(&with(&["eta"], json!(-1.0)), &["eta = -1", "> 0"]);
    assert_mentions(&with(&["k"], json!(-0.5)), &["k = -0.5", ">= 0"]);
    assert_mentions(&with(&["gamma"], json!(-0.1)), &["gamma = -0.1", ">= 0"]);
    assert_mentions(&with(&["horizon"], json!(-2.0)), &["horizon = -2", "> 0"]);
    assert_mentions(
        &with(&["theta0"], json!([])),
        &["theta0", "at least one entry"],
    );
}

#[test]
fn metric_must_be_spd_and_mobility_psd() {
    assert_mentions(
        &with(&["metric"], json!({"matrix": [[1.0, 2.0], [2.0, 1.0]]})),
        &[
            "metric.matrix",
            "positive definite",
            "smallest eigenvalue is -1.0",
        ],
    );
    assert_mentions(
        &with(&["metric"], json!({"matrix": [[1.0, 0.5], [0.4, 1.0]]})),
        &["metric.matrix", "not symmetric", "[0][1]"],
    );
    assert_mentions(
        &with(&["metric"], json!({"diag": [1.0, -2.0]})),
        &["metric.diag", "positive", "entry 1"],
    );
    assert_mentions(
        &with(&["metric"], json!({"mobility": [[1.0, 0.0], [0.0, -0.1]]})),
        &["metric.mobility", "semi-definite"],
    );
    assert_mentions(
        &with(&["metric"], json!({"expr": [["1", "2*x"], ["2*x", "1"]]})),
        &["metric.expr (at theta0)", "positive definite"],
    );
    assert_mentions(
        &with(
            &["metric"],
            json!({"expr": [["1", "0.1*x"], ["0.2*x", "1"]]}),
        ),
        &["metric.expr", "not symmetric"],
    );
    // A singular mobility is allowed: partial controllability.
    Spec::from_json(&with(
        &["metric"],
        json!({"mobility": [[1.0, 0.0], [0.0, 0.0]]}),
    ))
    .unwrap()
    .to_problem()
    .unwrap();
}

#[test]
fn expression_errors() {
    assert_mentions(
        &with(&["loss", "expr"], json!("x + * y")),
        &["loss.expr", "x + * y", "column 5", "found `*`"],
    );
    assert_mentions(
        &with(&["loss", "expr"], json!("x^2 + z")),
        &["loss.expr", "unknown variable `z`", "known: x, y"],
    );
    // Every function of the language has a derivative (abs: signum, away from 0).
    assert!(
        Spec::from_json(&with(&["loss", "expr"], json!("abs(x) + y^2")))
            .and_then(|s| s.to_problem())
            .is_ok()
    );
    assert_mentions(
        &with(&["loss", "expr"], json!("pow(x)")),
        &["loss.expr", "`pow` at column 1 takes two arguments, not 1"],
    );
    assert_mentions(
        &with(&["loss", "vars"], json!(["x", "t"])),
        &["vars[1]", "reserved for time"],
    );
    assert_mentions(
        &with(&["loss", "vars"], json!(["x", "e"])),
        &["vars[1]", "constant"],
    );
    assert_mentions(
        &with(&["drift"], json!({"expr": ["y", "q*x"]})),
        &["drift.expr[1]", "unknown variable `q`"],
    );
}

#[test]
fn end_condition_must_fit_horizon() {
    assert_mentions(
        &with(&["end"], json!("equilibrium")),
        &["end", "infinite horizon", "4"],
    );
    assert_mentions(
        &with(&["end"], json!({"fixed": [1, 0]})).replace("4.0", "\"infinite\""),
        &["end", "infinite horizon needs", "equilibrium"],
    );
}

#[test]
fn nan_at_theta0_is_named() {
    assert_mentions(
        &with(&["loss", "expr"], json!("log(x) + y^2")),
        &["the loss", "not finite at theta0", "-0.6"],
    );
    // Finite value, infinite gradient: sqrt at zero.
    assert_mentions(
        &with(&["loss", "expr"], json!("sqrt(x+0.6) + y^2")),
        &["the gradient of the loss", "not finite"],
    );
    assert_mentions(
        &with(&["drift"], json!({"expr": ["log(x)", "0"]})),
        &["the drift", "not finite"],
    );
}

#[test]
fn forms_must_be_exclusive() {
    assert_mentions(
        &with(
            &["loss", "quadratic"],
            json!({"curvatures": [1, 1], "minimum": [0, 0]}),
        ),
        &["loss", "exactly one of"],
    );
    assert_mentions(
        &with(
            &["loss"],
            json!({"quadratic": {"curvatures": [1, 1], "hessian": [[1, 0], [0, 1]], "minimum": [0, 0]}}),
        ),
        &[
            "loss.quadratic",
            "exactly one of \"hessian\" and \"curvatures\"",
        ],
    );
    assert_mentions(
        &with(&["drift"], json!({"offset": [1, 1]})),
        &["drift.offset", "needs \"linear\""],
    );
}

/// A file that never ends is cut off at the size limit with an I/O error, not read until memory
/// runs out.
#[cfg(unix)]
#[test]
fn endless_file_is_refused_at_the_size_limit() {
    match Spec::from_file("/dev/zero").unwrap_err() {
        ProblemError::Io { source, .. } => {
            assert!(source.to_string().contains("larger than"), "{source}")
        }
        other => panic!("expected an I/O error, got {other}"),
    }
}

/// Messages a new user found confusing, and what they say now.
#[test]
fn messages_name_the_cause_once() {
    // A prefix once: "end: end: expected ..." and "horizon: horizon: ..." before.
    let e = assert_mentions(&with(&["end"], json!("open")), &["end: expected \"free\""]);
    assert!(!e.to_string().contains("end: end"), "{e}");
    let e = assert_mentions(
        &with(&["horizon"], json!("forever")),
        &["horizon: expected"],
    );
    assert!(!e.to_string().contains("horizon: horizon"), "{e}");
    // A syntax error outside any field has no "?: " path.
    let text = base().to_string();
    let trailing = format!("{},}}", &text[..text.len() - 1]);
    let e = assert_mentions(&trailing, &["trailing comma"]);
    assert!(!e.to_string().contains("?:"), "{e}");
    // A θ0 of the wrong length is blamed on θ0, with the loss's variables.
    assert_mentions(
        &with(&["theta0"], json!([1.0, 2.0, 3.0])),
        &["theta0: expected 2 entries, one per variable of the loss (x, y), got 3"],
    );
    // A JSON array is not a spec.
    assert_mentions(&format!("[{text}]"), &["a spec is a JSON object"]);
    // A tiny parameter is printed as written.
    assert_mentions(
        &with(&["eta"], json!(-1e-300)),
        &["eta = -1e-300 is not allowed"],
    );
}

/// A UTF-8 byte-order mark (some editors write one) is not an error.
#[test]
fn byte_order_mark_is_accepted() {
    let text = format!("\u{feff}{}", base());
    assert!(Spec::from_json(&text).unwrap().to_problem().is_ok());
}
