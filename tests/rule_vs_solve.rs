//! `lossnav rule` (closed form) against `lossnav solve` (boundary-value solver) on the shipped
//! linear–quadratic specs, and the special closed forms against the general Riccati rule.

mod common;

use nalgebra::{DVector, Vector2};

use lossnav::problems::load_problem;
use lossnav::rules::diagonal::DiagonalRule;
use lossnav::rules::drift::{Rotation, WeightDecay};
use lossnav::rules::{LqData, LqRule};
use lossnav::solvers::Bvp;

const SPECS: &[&str] = &[
    "figure2-quadratic-1d",
    "figure2-anisotropic-2d",
    "figure3-isotropic",
    "figure3-anisotropic-metric",
    "figure3-rotation",
    "figure3-weight-decay",
    "figure3-rotation-discounted",
    "figure3-weight-decay-discounted",
    "partial-controllability",
];

#[test]
fn rule_agrees_with_solve_on_shipped_specs() {
    for name in SPECS {
        let problem = load_problem(format!(
            "{}/problems/specs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let data = LqData::from_problem(&problem).unwrap();
        let rule = LqRule::new(&data, problem.theta0()).unwrap();
        let sol = Bvp::default().with_tol(1e-10).solve(&problem).unwrap();
        let theta0 = problem.theta0();
        let mut e_theta = 0.0_f64;
        for i in 0..=40 {
            let t = 10.0 * i as f64 / 40.0;
            let a = sol.eval(t).0;
            let b = rule.theta(theta0, t);
            e_theta = e_theta.max(
                a.iter()
                    .zip(b.iter())
                    .fold(0.0, |m, (x, y)| f64::max(m, (x - y).abs())),
            );
        }
        let p0 = rule.momentum(theta0);
        let e_p0 = sol.p[0]
            .iter()
            .zip(p0.iter())
            .fold(0.0, |m, (x, y)| f64::max(m, (x - y).abs()));
        let cost = rule.cost(theta0);
        let e_j = (sol.cost - cost).abs() / cost.abs().max(1.0);
        eprintln!("{name}: θ {e_theta:.1e}, p(0) {e_p0:.1e}, J {e_j:.1e}");
        // Solver at tol 1e-10 (global error a few 1e-11): agreement to 1e-8 required.
        assert!(
            e_theta < 1e-8 && e_p0 < 1e-8 && e_j < 1e-8,
            "{name}: {e_theta:e} {e_p0:e} {e_j:e}"
        );
        assert_eq!(sol.cost_is_relative, problem.lagrangian().gamma() == 0.0);
    }
}

#[test]
fn special_closed_forms_match_the_general_riccati_rule() {
    for gamma in [0.0, 0.3, 1.0, 5.0] {
        for name in [
            "figure3-rotation",
            "figure3-weight-decay",
            "figure3-anisotropic-metric",
        ] {
            let mut spec = lossnav::problems::Spec::from_file(format!(
                "{}/problems/specs/{name}.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            spec.gamma = gamma;
            let problem = spec.to_problem().unwrap();
            let data = LqData::from_problem(&problem).unwrap();
            let rule = LqRule::new(&data, problem.theta0()).unwrap();
            let mu = Vector2::new(data.mu[0], data.mu[1]);
            // Two independent computations (scalar closed form vs eigenvectors): 1e-12.
            match name {
                "figure3-rotation" => {
                    let q = data.a[(1, 0)];
                    let r = Rotation::new(q, 1.0, mu, 1.0, 1.0, gamma);
                    assert!(
                        (rule.equilibrium - DVector::from_column_slice(r.equilibrium.as_slice()))
                            .amax()
                            < 1e-12
                    );
                    assert!(
                        (rule.p_equilibrium
                            - DVector::from_column_slice(r.p_equilibrium.as_slice()))
                        .amax()
                            < 1e-12
                    );
                    for (re, im) in &rule.rates {
                        assert!(
                            (re + r.rate).abs() < 1e-12 && (im.abs() - q).abs() < 1e-12,
                            "γ={gamma}: {re} {im}"
                        );
                    }
                }
                "figure3-weight-decay" => {
                    let j = -data.a[(0, 0)];
                    let w = WeightDecay::new(j, 1.0, mu, 1.0, 1.0, gamma);
                    assert!(
                        (rule.equilibrium - DVector::from_column_slice(w.equilibrium.as_slice()))
                            .amax()
                            < 1e-12
                    );
                    assert!((rule.riccati[(0, 0)] - w.riccati).abs() < 1e-12);
                    for (re, im) in &rule.rates {
                        assert!((re + w.rate).abs() < 1e-12 && im.abs() < 1e-12);
                    }
                }
                _ => {
                    let g = [1.0, 4.0];
                    let d = DiagonalRule::new(
                        &[1.0, 1.0],
                        &g,
                        &[0.0, 0.0],
                        problem.theta0().as_slice(),
                        1.0,
                        1.0,
                        gamma,
                    );
                    assert!((rule.cost(problem.theta0()) - d.cost()).abs() < 1e-12);
                    let mut rates: Vec<f64> = rule.rates.iter().map(|r| -r.0).collect();
                    rates.sort_by(f64::total_cmp);
                    let mut expected = d.rates.clone();
                    expected.sort_by(f64::total_cmp);
                    assert!(
                        (rates[0] - expected[0]).abs() < 1e-12
                            && (rates[1] - expected[1]).abs() < 1e-12
                    );
                }
            }
        }
    }
}

#[test]
fn rule_cli_reports_the_documented_keys_and_rejects_non_lq_specs() {
    let run = |spec: &str| common::lossnav(&["rule", spec]);
    let out = run("problems/specs/figure3-rotation-discounted.json");
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "equilibrium",
        "p_equilibrium",
        "riccati",
        "policy",
        "rates",
        "cost",
    ] {
        assert!(doc.get(key).is_some(), "missing {key}");
    }
    assert_eq!(
        doc["rates"][0].as_array().unwrap().len(),
        2,
        "rates are [re, im] pairs"
    );
    let out = run("problems/specs/fisher-metric.json");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a linear–quadratic problem"), "{err}");
}
