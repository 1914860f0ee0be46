//! `lossnav solve --sensitivities`: the derivatives in the document agree with differences of
//! the command's own costs on edited specs, and bad names fail cleanly.

mod common;

use common::{assert_clean_failure, lossnav, lossnav_json};

/// The Figure 1 spec with the loss parameter `d` (the tilt) at `v`, in a temporary file.
fn tilted(v: f64, dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string("problems/specs/figure1-double-well.json").unwrap();
    let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    spec["loss"]["params"]["d"] = serde_json::json!(v);
    let path = dir.join(format!("tilt{v}.json"));
    std::fs::write(&path, spec.to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn derivatives_match_differences_of_solves() {
    let doc = lossnav_json(&[
        "solve",
        "problems/specs/figure1-double-well.json",
        "--tol",
        "1e-10",
        "--sensitivities",
        "params.d,gamma,theta0[1]",
    ]);
    let s = doc["sensitivities"].as_array().unwrap();
    assert_eq!(s.len(), 3);
    let nodes = doc["t"].as_array().unwrap().len();
    for entry in s {
        assert_eq!(entry["theta"].as_array().unwrap().len(), nodes);
        assert!(entry["path_error"].as_f64().unwrap() < 1e-8);
    }
    // dJ*/dd against a central difference of two solves (h = 1e-3; the cost's third
    // derivative in d is O(1), so the truncation is ~1e-7; solves at tol 1e-10).
    let dir = std::env::temp_dir().join(format!("lossnav-sens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let h = 1e-3;
    let cost = |v: f64| {
        lossnav_json(&["solve", &tilted(v, &dir), "--tol", "1e-10", "--summary"])["cost"]
            .as_f64()
            .unwrap()
    };
    let fd = (cost(-0.5 + h) - cost(-0.5 - h)) / (2.0 * h);
    let got = s[0]["cost"]["value"].as_f64().unwrap();
    assert!((got - fd).abs() < 1e-6, "dJ/dd {got} vs difference {fd}");
    // ∂J*/∂θ0 = -p(0)/η (η = 1).
    let p0 = doc["p"][0][1].as_f64().unwrap();
    assert!((s[2]["cost"]["value"].as_f64().unwrap() + p0).abs() < 1e-12);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_names_fail_cleanly() {
    let spec = "problems/specs/figure1-double-well.json";
    for (names, fragment) in [
        ("nope", "nope"),
        ("gamma,gamma", "twice"),
        ("theta0[9]", "theta0"),
        ("loss.params", "object"),
    ] {
        let out = lossnav(&["solve", spec, "--sensitivities", names]);
        assert_clean_failure(&out, &[fragment]);
    }
    let out = lossnav(&[
        "solve",
        "problems/specs/figure1-double-well-infinite.json",
        "--sensitivities",
        "horizon",
    ]);
    assert_clean_failure(&out, &["horizon is infinite"]);
}
