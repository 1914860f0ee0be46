//! Forward simulation of rules: against closed forms, and the optimal policy against the
//! boundary-value solution.

use lossnav_problems::{load_problem, Problem};
use lossnav_solvers::simulate::{simulate, Rule};
use lossnav_solvers::Bvp;

fn problem(name: &str) -> Problem {
    load_problem(format!(
        "{}/../problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn gradient_flow_on_a_quadratic_matches_the_exponential_and_its_cost() {
    // L = ½ Σ hᵢθᵢ², θ̇ = -cHθ: θᵢ(t) = θ0ᵢ e^{-c hᵢ t}; with γ = 1, η = k = 1:
    // J = Σ ∫ e^{-t} (½ c² hᵢ² + ½ hᵢ) θ0ᵢ² e^{-2 c hᵢ t} dt = Σ (½c²hᵢ² + ½hᵢ) θ0ᵢ² / (1 + 2chᵢ).
    let p = problem("figure2-anisotropic-2d");
    let c = 0.7;
    let t_end = 60.0;
    let sim = simulate(
        &p,
        &Rule::gradient_flow(&p, c),
        Some(t_end),
        &[1.0, 2.0],
        1e-10,
    )
    .unwrap();
    let h = [1.0, 4.0];
    for (j, &t) in sim.t.iter().enumerate().filter(|(_, t)| **t <= 2.0) {
        for (i, hi) in h.iter().enumerate() {
            let exact = (-c * hi * t).exp();
            // Integrator tolerance 1e-10 (relative and absolute): 1e-8.
            assert!((sim.theta[j][i] - exact).abs() < 1e-8, "θ{i}({t})");
        }
    }
    let exact: f64 = h
        .iter()
        .map(|&h| (0.5 * c * c * h * h + 0.5 * h) / (1.0 + 2.0 * c * h))
        .sum();
    // Truncation at t = 60 leaves e^{-60}; integrator error 1e-10 relative.
    assert!(
        (sim.cost - exact).abs() < 1e-8 * exact,
        "{} vs {exact}",
        sim.cost
    );
}

#[test]
fn the_optimal_policy_reproduces_the_optimal_cost_and_beats_gradient_flow() {
    // On an LQ problem the optimal policy is θ̇ = -r(θ - μ) per direction; simulating it must
    // give the boundary-value cost, and any other rule a higher one.
    let p = problem("figure2-anisotropic-2d");
    let opt = Bvp::default().with_tol(1e-10).solve(&p).unwrap();
    let r: Vec<f64> = [1.0, 4.0]
        .iter()
        .map(|&h: &f64| (0.25 + h).sqrt() - 0.5)
        .collect();
    let policy = Rule::FirstOrder(Box::new(move |_t, th: &[f64]| {
        vec![-r[0] * th[0], -r[1] * th[1]]
    }));
    let sim = simulate(&p, &policy, Some(60.0), &[], 1e-11).unwrap();
    assert!(
        (sim.cost - opt.cost).abs() < 1e-8,
        "{} vs {}",
        sim.cost,
        opt.cost
    );
    for rate in [0.2, 0.5, 1.0, 2.0] {
        let gf = simulate(&p, &Rule::gradient_flow(&p, rate), Some(60.0), &[], 1e-10).unwrap();
        assert!(
            gf.cost > opt.cost,
            "gradient flow at rate {rate} beats the optimum: {} < {}",
            gf.cost,
            opt.cost
        );
    }
}

#[test]
fn heavy_ball_and_gradient_flow_stay_in_the_near_basin_of_the_double_well() {
    let p = problem("figure1-double-well");
    let gf = simulate(&p, &Rule::gradient_flow(&p, 1.0), Some(40.0), &[], 1e-9).unwrap();
    assert!(gf.theta.last().unwrap()[0] < 0.0);
    let hb = simulate(
        &p,
        &Rule::HeavyBall {
            friction: 2.0,
            rate: 1.0,
        },
        Some(40.0),
        &[],
        1e-9,
    )
    .unwrap();
    assert!(hb.theta.last().unwrap()[0] < 0.0);
    // Fixed end: the rules miss θ_T, and say by how much.
    assert!(gf.end_error.unwrap() > 1.0);
}

#[test]
fn infinite_horizon_needs_an_end_time() {
    let p = problem("figure2-quadratic-1d");
    let err = simulate(&p, &Rule::gradient_flow(&p, 1.0), None, &[], 1e-8).unwrap_err();
    assert!(err.to_string().contains("t_end"), "{err}");
}

/// A rule far too stiff for the explicit integrator (curvature 1e9: a stable step is about
/// 3e-9, so 5 time units need over 10⁹ steps) is reported after the step budget, not
/// integrated for hours.
#[test]
fn a_stiff_rule_exhausts_the_step_budget_with_a_typed_error() {
    let p = lossnav_problems::Spec::from_json(
        r#"{"name": "stiff", "loss": {"quadratic": {"curvatures": [1e9, 1.0], "minimum": [0.0, 0.0]}},
            "eta": 1.0, "k": 1.0, "gamma": 1.0, "theta0": [1.0, 1.0],
            "horizon": "infinite", "end": "equilibrium"}"#,
    )
    .unwrap()
    .to_problem()
    .unwrap();
    let err = simulate(&p, &Rule::gradient_flow(&p, 1.0), Some(5.0), &[], 1e-8).unwrap_err();
    match err {
        lossnav_solvers::SolverError::StepLimit { steps, t, t_end } => {
            assert_eq!(steps, 1_000_000);
            assert!(t < 0.01 && t_end == 5.0, "reached {t} of {t_end}");
        }
        other => panic!("expected a step-limit error, got {other}"),
    }
}

/// Gradient flow on `√x + y²` reaches `x = 0`, where the field stops being finite, at
/// `t* = x0^{3/2}/(3/4)` (from `d(x^{3/2})/dt = −3/4`). The simulation stops there with a typed
/// error naming the time, instead of integrating on with NaN.
#[test]
fn a_field_that_stops_being_finite_is_reported_where_it_happens() {
    let p = lossnav_problems::Spec::from_json(
        r#"{"name": "edge", "loss": {"expr": "sqrt(x) + y^2", "vars": ["x", "y"]},
            "eta": 1.0, "k": 1.0, "gamma": 1.0, "theta0": [0.5, 0.5],
            "horizon": 5.0, "end": "free"}"#,
    )
    .unwrap()
    .to_problem()
    .unwrap();
    let t_star = 0.5_f64.powf(1.5) / 0.75;
    let err = simulate(&p, &Rule::gradient_flow(&p, 1.0), None, &[], 1e-8).unwrap_err();
    match err {
        // The step size collapses within a few tolerances' worth of time before t*.
        lossnav_solvers::SolverError::NonFinite { t, .. } => {
            assert!(
                (t - t_star).abs() < 1e-3,
                "stopped at {t}, edge at {t_star}"
            )
        }
        other => panic!("expected a non-finite error, got {other}"),
    }
}

/// A singular mobility gives velocities no finite kinetic cost; simulation refuses it up front.
#[test]
fn singular_mobility_is_refused() {
    let p = problem("partial-controllability");
    let err = simulate(&p, &Rule::gradient_flow(&p, 1.0), Some(1.0), &[], 1e-8).unwrap_err();
    assert!(
        matches!(err, lossnav_solvers::SolverError::Unsupported(_)),
        "{err}"
    );
}
