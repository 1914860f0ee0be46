//! Multiple shooting against the boundary-value solver: three routes agree.

use lossnav_problems::load_problem;
use lossnav_solvers::{Bvp, Direct, Shooting};

#[test]
fn shooting_direct_and_bvp_agree() {
    for name in [
        "figure1-double-well",
        "fisher-metric",
        "figure2-anisotropic-2d",
        "figure3-rotation-discounted",
    ] {
        let p = load_problem(format!(
            "{}/../problems/specs/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let bvp = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
        let shooting = Shooting::default().solve(&p).unwrap();
        let direct = Direct::default().with_intervals(200).solve(&p).unwrap();
        let rel_s = (shooting.cost - bvp.cost).abs() / bvp.cost.abs();
        let rel_d = (direct.cost - bvp.cost).abs() / bvp.cost.abs();
        let p0 = shooting.p[0]
            .iter()
            .zip(&bvp.p[0])
            .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()));
        eprintln!("{name}: shooting {rel_s:.1e} (p(0) {p0:.1e}, {} Newton iterations), direct {rel_d:.1e}", shooting.diagnostics.iterations);
        // Integrator tolerance 1e-12, BVP tol 1e-12, direct O(h⁶): all three within 1e-8.
        assert!(rel_s < 1e-8 && rel_d < 1e-8, "{name}: {rel_s:e} {rel_d:e}");
        assert!(p0 < 1e-8, "{name}: p(0) differs by {p0:e}");
    }
}

/// With `c = −1` the double well is unbounded below in `y`: no optimal trajectory settles at
/// the requested equilibrium. Shooting finds an extremal that satisfies the projection
/// condition far from it; that is reported as not reaching the equilibrium (as the
/// boundary-value solver does), not as converged.
#[test]
fn an_extremal_that_misses_the_equilibrium_is_not_an_answer() {
    let problem = lossnav_problems::Spec::from_json(
        r#"{"loss": {"double_well": {"c": -1}}, "gamma": 0.1, "theta0": [-0.6, 0.55],
            "horizon": "infinite", "end": {"equilibrium": [1.06, 0.0]}}"#,
    )
    .unwrap()
    .to_problem()
    .unwrap();
    for result in [
        Shooting::default().solve(&problem),
        Bvp::default().solve(&problem),
    ] {
        match result {
            Err(lossnav_solvers::SolverError::TruncationLimit { gap, .. }) => {
                assert!(gap > 0.1, "gap {gap}")
            }
            Err(other) => panic!("expected a truncation error, got {other}"),
            Ok(s) => panic!("{} reported cost {} as converged", s.method, s.cost),
        }
    }
}
