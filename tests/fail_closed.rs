//! Inputs that once gave a silent wrong answer, an abort or an unbounded run: each now gives
//! the right answer or a clean, typed refusal (exit status 2, one line, no panic).

mod common;

use std::path::{Path, PathBuf};

use common::{assert_clean_failure, lossnav, lossnav_json, temp_dir};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A metric written symmetric only at θ0 (`[0][1] = 0.5·x`, `[1][0] = 0`) was symmetrised
/// from its upper triangle and solved as another objective. It is refused, naming both
/// entries; a symmetric one written with commuted factors is accepted.
#[test]
fn a_metric_symmetric_only_at_theta0_is_refused() {
    let dir = temp_dir("fail-closed-metric");
    let bad = write(
        &dir,
        "bad.json",
        r#"{"loss":{"expr":"0.5*(x-1)^2 + 0.5*(y+1)^2","vars":["x","y"]},
            "metric":{"expr":[["1","0.5*x"],["0","1"]]},
            "theta0":[0,0],"horizon":2,"end":"free"}"#,
    );
    for command in ["validate", "solve"] {
        let out = lossnav(&[command, bad.to_str().unwrap()]);
        assert_clean_failure(&out, &["metric.expr[1][0]", "not symmetric", "0.5*x"]);
    }
    let good = write(
        &dir,
        "good.json",
        r#"{"loss":{"expr":"0.5*(x-1)^2 + 0.5*(y+1)^2","vars":["x","y"]},
            "metric":{"expr":[["2 + y^2","0.1*(x*y)"],["0.1*(y*x)","2 + x^2"]]},
            "theta0":[0,0],"horizon":2,"end":"free"}"#,
    );
    let out = lossnav(&["validate", good.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    // Constant entries compare as numbers: `0` and `-0` are the same entry.
    let zeros = write(
        &dir,
        "zeros.json",
        r#"{"loss":{"expr":"0.5*(x-1)^2 + 0.5*(y+1)^2","vars":["x","y"]},
            "metric":{"expr":[["2","0"],["-0","2"]]},
            "theta0":[0,0],"horizon":2,"end":"free"}"#,
    );
    let out = lossnav(&["validate", zeros.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// D = 10⁵ diagonal quadratic: the structure checks (convexity, the drift's form) formed dense
/// D × D matrices and aborted on 80 GB. Each command now finishes or refuses before any
/// dense allocation.
#[test]
fn a_large_diagonal_quadratic_is_checked_without_dense_matrices() {
    let dir = temp_dir("fail-closed-large");
    let d = 100_000;
    let list = |v: f64| vec![v.to_string(); d].join(",");
    let curvatures: Vec<String> = (0..d)
        .map(|i| format!("{}", 0.5 + (i % 10) as f64 / 10.0))
        .collect();
    let spec = |horizon: &str, end: &str| {
        format!(
            r#"{{"loss":{{"quadratic":{{"curvatures":[{}],"minimum":[{}]}}}},
                "theta0":[{}],"horizon":{horizon},"end":{end}}}"#,
            curvatures.join(","),
            list(0.0),
            list(1.0)
        )
    };
    let finite = write(&dir, "finite.json", &spec("1", "\"free\""));
    let infinite = write(
        &dir,
        "infinite.json",
        &spec("\"infinite\"", "\"equilibrium\""),
    );
    let (finite, infinite) = (finite.to_str().unwrap(), infinite.to_str().unwrap());
    let out = lossnav(&["validate", finite]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().all(|l| l.len() < 200),
        "a description is one short line"
    );
    for args in [
        vec!["solve", finite],
        vec!["solve", infinite],
        vec!["solve", finite, "--local"],
    ] {
        assert_clean_failure(&lossnav(&args), &["the direct method"]);
    }
    assert_clean_failure(&lossnav(&["rule", infinite]), &["dense", "D = 100000"]);
    // The shooting method's (2D)² sensitivities aborted the process; they are estimated first.
    for spec in [finite, infinite] {
        let out = lossnav(&["solve", spec, "--method", "shooting"]);
        assert_clean_failure(&out, &["shooting method", "the direct method"]);
    }
    // The direct method works in O(N·D), but its line search over 4·10⁷ unknowns ignored the
    // budget between trial points; it now stops with the time limit.
    let out = lossnav(&["solve", finite, "--method", "direct", "--max-seconds", "1"]);
    assert_clean_failure(&out, &["time budget"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A D = 200 metric of expressions, diagonal but written as a full matrix (off-diagonal
/// entries "0"): it took 10.8 GB and aborted (every entry carried a D² Hessian program, and
/// the metric's second derivatives a D⁴ tensor). Constant entries are now constants.
#[test]
fn a_large_expression_metric_with_constant_entries_validates() {
    let dir = temp_dir("fail-closed-expr-metric");
    let d = 200;
    let vars: Vec<String> = (0..d).map(|i| format!("\"x{i}\"")).collect();
    let rows: Vec<String> = (0..d)
        .map(|i| {
            let row: Vec<String> = (0..d)
                .map(|j| {
                    if i == j {
                        format!("\"1 + 0.1*x{i}^2\"")
                    } else {
                        "\"0\"".to_string()
                    }
                })
                .collect();
            format!("[{}]", row.join(","))
        })
        .collect();
    let loss: Vec<String> = (0..d).map(|i| format!("0.5*(x{i}-1)^2")).collect();
    let spec = format!(
        r#"{{"loss":{{"expr":"{}","vars":[{}]}},"metric":{{"expr":[{}]}},
            "theta0":[{}],"horizon":1,"end":"free"}}"#,
        loss.join(" + "),
        vars.join(","),
        rows.join(","),
        vec!["0"; d].join(",")
    );
    let path = write(&dir, "metric.json", &spec);
    let out = lossnav(&["validate", path.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Monte Carlo of an observed problem: a gain that makes Euler–Maruyama unstable
/// returned `"mean": null` with exit status 0; a horizon of 40/γ at γ = 10⁻⁶ asked for a
/// 160 GB table (and `rule` integrated it for minutes). Both are refused before anything runs.
#[test]
fn an_unstable_or_oversized_monte_carlo_is_refused() {
    let spec = "problems/specs/noisy-gradients.json";
    let out = lossnav(&["simulate", spec, "--gain-scale", "1e3", "--paths", "10"]);
    assert_clean_failure(&out, &["unstable", "time step below"]);
    // Stable at dt, unstable at the 2·dt of the bias estimate: the flag to change is named.
    let out = lossnav(&[
        "simulate",
        spec,
        "--gain-scale",
        "1e3",
        "--dt",
        "0.0015",
        "--paths",
        "10",
    ]);
    assert_clean_failure(&out, &["--dt 0.0015", "2·dt"]);
    let dir = temp_dir("fail-closed-mc");
    let text = std::fs::read_to_string(spec)
        .unwrap()
        .replace("\"gamma\": 1.0", "\"gamma\": 1e-6");
    assert!(text.contains("1e-6"));
    let long = write(&dir, "long.json", &text);
    let out = lossnav(&["simulate", long.to_str().unwrap(), "--paths", "2"]);
    // Refused when the spec is read: even the exact expected cost would need 4·10¹⁰ steps.
    assert_clean_failure(&out, &["40/γ", "steps"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// CSV shards concatenate to the unsharded output (the header only in shard 1), as `--help`
/// says of every format.
#[test]
fn csv_shards_concatenate_to_the_whole() {
    let run = |extra: &[&str]| -> String {
        let mut args = vec![
            "sweep",
            "problems/specs/figure2-quadratic-1d.json",
            "--set",
            "gamma=0.5:2:5",
            "--format",
            "csv",
        ];
        args.extend_from_slice(extra);
        let out = lossnav(&args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let whole = run(&[]);
    let parts = run(&["--shard", "1/2"]) + &run(&["--shard", "2/2"]);
    assert_eq!(whole, parts);
    assert_eq!(whole.lines().count(), 6, "a header and five rows");
}

/// Negative numbers are option values, not flags, so they reach the checks that explain
/// what is wrong with them.
#[test]
fn negative_option_values_reach_their_checks() {
    let spec = "problems/specs/figure1-double-well.json";
    let out = lossnav(&["solve", spec, "--max-seconds", "-1"]);
    assert_clean_failure(&out, &["--max-seconds", "-1"]);
    let out = lossnav(&["solve", spec, "--at", "-5"]);
    assert_clean_failure(&out, &["--at -5", "outside the horizon"]);
}

/// A tolerance below what rounding allows is refused by every method before it runs (the
/// shooting method reported a non-finite state at t = 0 for 1e-300).
#[test]
fn tolerances_below_rounding_are_refused_by_every_method() {
    let spec = "problems/specs/figure1-double-well.json";
    for method in ["bvp", "direct", "shooting"] {
        let out = lossnav(&["solve", spec, "--method", method, "--tol", "1e-300"]);
        assert_clean_failure(&out, &["tol", "rounding"]);
    }
}

/// A linear–quadratic problem whose loss is indefinite but whose drift keeps it bounded: the
/// closed-form rule was right (J = −0.082158…) while every solve failed, the default one at a
/// bogus equilibrium near 10¹³⁸ (the descent toward a minimum of the loss diverged). The
/// affine field's unique equilibrium is now found from θ0, and every method agrees with the
/// rule: to 1e-9 relative (boundary-value solves at tol 1e-8 measure about 2e-11 here, the
/// direct method and shooting about 1e-13).
#[test]
fn an_indefinite_loss_stabilised_by_its_drift_solves_by_every_method() {
    let dir = temp_dir("fail-closed-indefinite");
    let spec = write(
        &dir,
        "indefinite.json",
        r#"{"loss": {"quadratic": {"hessian": [[1.0, 0.2], [0.2, -0.5]], "minimum": [0.5, -0.3]}},
            "drift": {"linear": [[-2.0, 0.3], [0.0, -2.0]], "offset": [0.1, 0.0]},
            "eta": 1.0, "k": 1.0, "gamma": 0.5, "theta0": [1.0, 1.0],
            "horizon": "infinite", "end": "equilibrium"}"#,
    );
    let spec = spec.to_str().unwrap();
    let rule = lossnav_json(&["rule", spec]);
    let exact = rule["cost"].as_f64().unwrap();
    assert!((exact + 0.082158).abs() < 1e-5, "{exact}");
    for method in [
        vec!["solve", spec],
        vec!["solve", spec, "--local"],
        vec!["solve", spec, "--method", "direct"],
        vec!["solve", spec, "--method", "shooting"],
    ] {
        let doc = lossnav_json(&method);
        let cost = doc["cost"].as_f64().unwrap();
        assert!(
            (cost - exact).abs() <= 1e-9 * exact.abs(),
            "{method:?}: {cost} vs the rule's {exact}"
        );
        assert_eq!(doc["second_order"]["verdict"], "minimum", "{method:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Horizons and curvatures at the edge of floating point (each ran for 39–73 s before): an
/// astronomically long horizon ends with a clean error at once, and a curvature of 1e12 is
/// solved to the closed form `J = ½√c θ0² tanh(√c T)` (γ = 0, free end).
#[test]
fn extreme_horizons_and_curvatures_end_cleanly() {
    let dir = temp_dir("extreme");
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("problems/specs/figure1-double-well.json"),
    )
    .unwrap();
    for horizon in ["1e9", "1e308"] {
        let spec = write(
            &format!("h{horizon}.json"),
            base.replace("\"horizon\": 4.0", &format!("\"horizon\": {horizon}")),
        );
        let started = std::time::Instant::now();
        let out = lossnav(&["solve", &spec]);
        assert!(started.elapsed().as_secs_f64() < 30.0, "horizon {horizon}");
        assert_clean_failure(&out, &[]);
    }
    let c = 1e12_f64;
    let spec = write(
        "curvature.json",
        format!(
            r#"{{"loss": {{"expr": "{}*x^2", "vars": ["x"]}}, "theta0": [1.0], "horizon": 10, "end": "free"}}"#,
            0.5 * c
        ),
    );
    let doc = lossnav_json(&["solve", &spec, "--summary"]);
    let exact = 0.5 * c.sqrt() * (c.sqrt() * 10.0).tanh();
    let cost = doc["cost"].as_f64().unwrap();
    // The BVP's tolerance 1e-8 bounds the path's relative error; the cost inherits it.
    assert!(((cost - exact) / exact).abs() < 1e-8, "{cost} vs {exact}");
    assert_eq!(doc["second_order"]["verdict"], "minimum");
    let _ = std::fs::remove_dir_all(&dir);
}
