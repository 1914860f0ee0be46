//! The direct method against the boundary-value solver (two independent routes), its order of
//! convergence, and the search for several extremals on the double well.

use lossnav_problems::{load_problem, spec::EndSpec, Problem, Spec};
use lossnav_solvers::extremals::{candidate_minima, extremals};
use lossnav_solvers::{Bvp, Direct, Solution};

fn spec(name: &str) -> Spec {
    Spec::from_file(format!(
        "{}/../problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn problem(name: &str) -> Problem {
    load_problem(format!(
        "{}/../problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn trajectory_error(a: &Solution, b: &Solution) -> f64 {
    let end = a.end_time().min(b.end_time());
    (0..=200)
        .map(|i| {
            let t = end * i as f64 / 200.0;
            let (x, y) = (a.eval(t).0, b.eval(t).0);
            x.iter()
                .zip(&y)
                .fold(0.0_f64, |m, (p, q)| m.max((p - q).abs()))
        })
        .fold(0.0, f64::max)
}

#[test]
fn direct_and_bvp_costs_agree() {
    // Fixed end (Figure 1), θ-dependent metric with drift and terminal cost, infinite horizon.
    for name in [
        "figure1-double-well",
        "fisher-metric",
        "figure1-double-well-infinite",
        "figure3-weight-decay-discounted",
    ] {
        let p = problem(name);
        let bvp = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
        let direct = Direct::default().with_intervals(200).solve(&p).unwrap();
        assert!(direct.accuracy.tolerance_met());
        let rel = (direct.cost - bvp.cost).abs() / bvp.cost.abs();
        let traj = trajectory_error(&direct, &bvp);
        eprintln!(
            "{name}: cost {} vs {} (rel {rel:.1e}), trajectory {traj:.1e}",
            direct.cost, bvp.cost
        );
        // Required: 1e-8 relative. The direct cost error at N = 200 is O(h⁶) ≈ 1e-12 and the
        // BVP's at tol 1e-12 is below 1e-13.
        assert!(rel < 1e-8, "{name}: relative cost difference {rel:e}");
    }
}

#[test]
fn direct_method_converges_at_the_predicted_orders() {
    let p = problem("figure1-double-well");
    let reference = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
    let runs: Vec<(f64, f64)> = [25, 50, 100]
        .iter()
        .map(|&n| {
            // Coarse meshes on purpose (their errors are measured against the reference): the
            // accuracy guard is off.
            let s = Direct::default()
                .with_intervals(n)
                .with_tol(1.0)
                .solve(&p)
                .unwrap();
            (
                (s.cost - reference.cost).abs(),
                trajectory_error(&s, &reference),
            )
        })
        .collect();
    for w in runs.windows(2) {
        let cost_order = (w[0].0 / w[1].0).log2();
        let traj_order = (w[0].1 / w[1].1).log2();
        eprintln!("observed orders: cost {cost_order:.2}, trajectory {traj_order:.2}");
        // The cost is stationary at the optimum: its error is the square of the energy-norm
        // error, O(h⁶). The cubic-spline trajectory converges at O(h⁴) asymptotically; on these
        // meshes 3.5–3.7 is observed (pre-asymptotic), so ≥ 3.3 is required.
        assert!((5.4..6.6).contains(&cost_order), "cost order {cost_order}");
        assert!(traj_order > 3.3, "trajectory order {traj_order}");
    }
}

#[test]
fn double_well_extremals_and_the_global_one() {
    let p = problem("figure1-double-well-infinite");
    let candidates = candidate_minima(&p);
    assert_eq!(candidates.len(), 2, "both basins are found: {candidates:?}");
    for solver in [
        &Direct::default() as &dyn lossnav_solvers::Solver,
        &Bvp::default(),
    ] {
        let found = extremals(&p, solver, &candidates);
        assert_eq!(
            found.found.len(),
            2,
            "two extremals; failures: {:?}",
            found.failed
        );
        let global = found.found.iter().find(|e| e.global).unwrap();
        let other = found.found.iter().find(|e| !e.global).unwrap();
        eprintln!(
            "global ends at {:?} with J = {:.6}; other at {:?} with J = {:.6}",
            global.end, global.solution.cost, other.end, other.solution.cost
        );
        // γ = 0.1: the far (right, deeper) minimum is worth the climb.
        assert!(global.end[0] > 0.0 && other.end[0] < 0.0);
        assert!(global.solution.cost < other.solution.cost);
        // The loss rises before it falls along the crossing.
        let l0 = global.solution.loss[0];
        assert!(global.solution.loss.iter().any(|&l| l > l0 + 0.05));
    }
}

#[test]
fn large_discount_stays_in_the_near_basin() {
    let mut s = spec("figure1-double-well-infinite");
    s.gamma = 10.0;
    s.end = Some(EndSpec::Equilibrium(None));
    let p = s.to_problem().unwrap();
    let candidates = candidate_minima(&p);
    let found = extremals(&p, &Bvp::default(), &candidates);
    let global = found.found.iter().find(|e| e.global).unwrap();
    // Short horizon: crossing the barrier does not pay (or no crossing extremal exists).
    assert!(
        global.end[0] < 0.0,
        "global extremal ends at {:?}",
        global.end
    );
}

#[test]
fn singular_mobility_is_a_typed_error_for_the_direct_method() {
    let p = problem("partial-controllability");
    let err = Direct::default().solve(&p).unwrap_err();
    assert!(err.to_string().contains("invertible metric"), "{err}");
}

/// An end point so far away that the straight-line path's kinetic term overflows: a typed
/// error at once, not an optimiser that spends its budget in line searches from infinity.
#[test]
fn non_finite_initial_path_is_a_typed_error() {
    let text = r#"{"loss": {"expr": "(x^2 - 1)^2", "vars": ["x"]}, "gamma": 0.1,
        "theta0": [-0.5], "horizon": 4.0, "end": {"fixed": [1e200]}}"#;
    let p = lossnav_problems::Spec::from_json(text)
        .unwrap()
        .to_problem()
        .unwrap();
    let err = Direct::default().solve(&p).unwrap_err();
    assert!(
        matches!(err, lossnav_solvers::SolverError::NonFinite { .. }),
        "{err}"
    );
}

#[test]
fn fixed_end_at_a_conjugate_point_of_the_linearisation() {
    // The end is the barrier top x = 0 of (x² − 1)², where the curvature is −4: linearised
    // about rest there the problem oscillates at frequency 2 and, with γ = 0, has a conjugate
    // point at T = π/2. The boundary-value solver's linearised initial guess is then (nearly)
    // singular and it must fall back to its plain guess; the direct method, which never uses
    // that guess, is the independent check.
    let text = format!(
        r#"{{"loss": {{"expr": "(x^2 - 1)^2", "vars": ["x"]}}, "gamma": 0,
            "theta0": [-0.5], "horizon": {}, "end": {{"fixed": [0.0]}}}}"#,
        std::f64::consts::FRAC_PI_2
    );
    bvp_agrees_with_direct(&text);
}

#[test]
fn time_dependent_terminal_cost_is_taken_at_the_final_time() {
    // Φ(θ, t) = 3(x − t)² at T = 2 pulls the end toward x = 2; evaluated at t = 0 it would pull
    // toward 0. The direct method evaluates Φ at T independently of the boundary-value solver's
    // end condition.
    let text = r#"{"loss": {"expr": "0.5*x^2", "vars": ["x"]}, "gamma": 0.2,
        "theta0": [-1.0], "horizon": 2.0, "end": {"cost": {"expr": "3*(x - t)^2"}}}"#;
    let bvp = bvp_agrees_with_direct(text);
    let end = bvp.theta.last().unwrap()[0];
    assert!(end > 0.5, "the end is pulled toward x = T = 2, got {end}");
}

/// Solves the spec `text` with the boundary-value solver (tol 1e-12) and the direct method
/// (N = 200), asserts that both converge to the same cost, and returns the former.
fn bvp_agrees_with_direct(text: &str) -> Solution {
    let p = Spec::from_json(text).unwrap().to_problem().unwrap();
    let bvp = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
    let direct = Direct::default().with_intervals(200).solve(&p).unwrap();
    assert!(bvp.accuracy.tolerance_met() && direct.accuracy.tolerance_met());
    let rel = (direct.cost - bvp.cost).abs() / bvp.cost.abs();
    // As in `direct_and_bvp_costs_agree`: both errors are far below the required 1e-8.
    assert!(
        rel < 1e-8,
        "cost {} vs {}: relative {rel:e}",
        direct.cost,
        bvp.cost
    );
    bvp
}

/// A mesh whose estimated memory is over the budget is refused before anything of its size
/// is allocated, with a typed error naming the estimate; the estimate follows the documented
/// count (`2m + 9` vectors of the unknowns, and the objective's batch of Gauss points: θ, θ̇
/// and ∇L at three points per interval, at most 3·2²⁰ values).
#[test]
fn a_mesh_over_the_memory_budget_is_refused() {
    let p = problem("figure1-double-well");
    let direct = Direct {
        max_memory: 1 << 20,
        ..Direct::default().with_intervals(100_000)
    };
    // m = 20: 49 vectors of 2·100 001·2 unknowns, and 3 × (3·2·100 000) batch values.
    assert_eq!(
        direct.memory_estimate(2, false),
        8 * (49 * 2 * 100_001 * 2 + 3 * 3 * 2 * 100_000)
    );
    match direct.solve(&p) {
        Err(e @ lossnav_solvers::SolverError::MemoryLimit { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains("direct method") && text.contains("L-BFGS"),
                "{text}"
            );
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    }
    // Within the default budget the same problem on a small mesh solves.
    assert!(Direct::default().with_intervals(64).solve(&p).is_ok());
}
