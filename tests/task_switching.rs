//! Task uncertainty (docs/theory.md §6): the closed-form rule against the boundary-value solution of
//! the expected problem, and against a Monte Carlo of the switching process.

mod common;

use lossnav::problems::Spec;
use lossnav::rules::task_switching::TaskRule;
use lossnav::solvers::Bvp;
use nalgebra::DVector;

fn spec_1d() -> Spec {
    Spec::from_json(
        r#"{"loss": {"quadratic": {"curvatures": [2.0], "minimum": [1.0]}},
            "eta": 1.0, "k": 1.0, "gamma": 0.5, "theta0": [0.0], "horizon": "infinite",
            "task_switching": {"hazard": 0.5, "prior_mean": [0.0], "prior_cov": [[0.8]]}}"#,
    )
    .unwrap()
}

fn spec_2d() -> Spec {
    Spec::from_json(
        r#"{"loss": {"quadratic": {"hessian": [[2.0, 0.6], [0.6, 1.0]], "minimum": [1.0, -0.5]}},
            "metric": {"matrix": [[1.5, 0.3], [0.3, 0.8]]},
            "eta": 0.7, "k": 1.3, "gamma": 0.4, "theta0": [0.2, 0.6], "horizon": "infinite",
            "task_switching": {"hazard": 0.3, "prior_mean": [0.1, 0.2],
                               "prior_cov": [[0.8, 0.1], [0.1, 0.3]]}}"#,
    )
    .unwrap()
}

#[test]
fn closed_form_matches_the_boundary_value_solution() {
    for spec in [spec_1d(), spec_2d()] {
        let rule = TaskRule::from_spec(&spec).unwrap();
        // The expected problem on [0, T], T = 30/(slowest rate), with the limit problem's value
        // as terminal cost: an independent numerical route (the boundary-value solver on the
        // time-dependent loss ½(θ − c(t))ᵀH(θ − c(t)) + ½tr(H Var(t))).
        let (p, t_end, rest) = rule.truncated_problem().unwrap();
        let sol = Bvp::default().with_tol(1e-11).solve(&p).unwrap();
        let cost = sol.cost + (-spec.gamma * t_end).exp() * rest;
        // Boundary-value solution at tol 1e-11: global error a few 1e-11 on LQ problems;
        // 1e-8 is the issue's bar and leaves room for the truncation (e^{-30}).
        assert!(
            (cost - rule.expected_cost).abs() < 1e-8 * (1.0 + rule.expected_cost.abs()),
            "E[J]: BVP {cost} vs closed form {}",
            rule.expected_cost
        );
        for t in [0.0, 0.5, 1.0, 2.0, 5.0] {
            let (theta, _) = sol.eval(t);
            let exact = rule.theta(t);
            for (a, b) in theta.iter().zip(exact.iter()) {
                assert!((a - b).abs() < 1e-8, "θ({t}): {a} vs {b}");
            }
        }
        // θ̇(0): from the solution's slope, and the rule's feedback form at m_0 = m.
        let theta0 = DVector::from_vec(spec.theta0.clone());
        let m = &rule.prior_mean + &rule.delta;
        let feedback = rule.velocity(&theta0, &m);
        let along = rule.theta_dot(0.0);
        for i in 0..theta0.len() {
            assert!(
                (sol.theta_dot[0][i] - feedback[i]).abs() < 1e-7,
                "θ̇(0)[{i}]"
            );
            assert!(
                (along[i] - feedback[i]).abs() < 1e-12,
                "θ̇(0) two closed forms"
            );
        }
    }
}

/// `lossnav rule` and `lossnav solve` on the shipped task-switching spec agree on E[J]
/// (the solve at tol 1e-10: a few 1e-11 globally on LQ problems; required 1e-8).
#[test]
fn rule_and_solve_agree_on_the_shipped_spec() {
    let run = common::lossnav_json;
    let spec = "problems/specs/task-switching.json";
    let rule = run(&["rule", spec]);
    let solve = run(&["solve", spec, "--tol", "1e-10"]);
    let (a, b) = (
        rule["expected_cost"].as_f64().unwrap(),
        solve["cost"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-8 * a.abs(), "rule {a} vs solve {b}");
    assert_eq!(solve["horizon"]["infinite"], true);
}
