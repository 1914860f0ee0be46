//! Warm starts (`Bvp::solve_near`): from a neighbouring solution the answer is the cold solve's
//! to the tolerance, on every shipped spec the boundary-value solver takes, with the same
//! certificate verdict; a start that cannot be used falls back to the cold solve; and where the
//! cold solve fails (a fold), the warm one fails alike.

use lossnav_problems::{load_problem, Problem, Spec};
use lossnav_solvers::{Bvp, SecondOrder, Solution};

fn shipped(name: &str) -> Problem {
    load_problem(format!(
        "{}/../problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn verdict(s: &Solution) -> Option<String> {
    match &s.second_order {
        SecondOrder::Checked(c) => Some(c.verdict.as_str().to_string()),
        _ => None,
    }
}

/// The largest difference of θ and p between two solutions at 201 times of the first's span.
fn path_difference(a: &Solution, b: &Solution) -> f64 {
    let t_end = a.t.last().unwrap().min(*b.t.last().unwrap());
    (0..=200)
        .map(|i| t_end * i as f64 / 200.0)
        .map(|t| {
            let ((ta, pa), (tb, pb)) = (a.eval(t), b.eval(t));
            ta.iter()
                .zip(&tb)
                .chain(pa.iter().zip(&pb))
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max)
        })
        .fold(0.0, f64::max)
}

/// Each shipped spec with γ (and, for finite horizons, T) moved by 2 %: the warm solve from the
/// original's solution equals the cold solve of the moved problem within a few times the
/// tolerance (both meet tol 1e-8 on their own meshes), with the same verdict; a warm start
/// never takes more Newton iterations than the cold one, and fewer on the three nonlinear
/// specs (the linear–quadratic ones take one either way).
#[test]
fn warm_and_cold_solves_agree_on_every_shipped_spec() {
    let bvp = Bvp::default();
    let mut fewer = 0;
    for name in [
        "figure1-double-well",
        "figure1-double-well-infinite",
        "figure2-anisotropic-2d",
        "figure3-rotation-discounted",
        "figure3-weight-decay",
        "fisher-metric",
        "heavy-ball-1d",
        "partial-controllability",
    ] {
        let p = shipped(name);
        let first = bvp.solve(&p).unwrap();
        let lag = p.lagrangian().clone();
        let gamma = lag.gamma();
        let moved_lag = lag.with_gamma(if gamma > 0.0 { 1.02 * gamma } else { 0.02 });
        let moved = p.with_lagrangian(moved_lag).unwrap();
        let cold = bvp.solve(&moved).unwrap();
        let warm = bvp.solve_near(&moved, &first).unwrap();
        let scale = 1.0 + cold.cost.abs();
        assert!(
            (warm.cost - cold.cost).abs() <= 1e-7 * scale,
            "{name}: warm {} cold {}",
            warm.cost,
            cold.cost
        );
        let path = path_difference(&warm, &cold);
        assert!(path <= 1e-6, "{name}: paths differ by {path:e}");
        assert_eq!(verdict(&warm), verdict(&cold), "{name}");
        assert!(warm.accuracy.tolerance_met(), "{name}: {}", warm.status());
        eprintln!(
            "{name}: cold {} iterations, {} passes; warm {} iterations, {} passes",
            cold.diagnostics.iterations,
            cold.diagnostics.mesh_passes,
            warm.diagnostics.iterations,
            warm.diagnostics.mesh_passes
        );
        // Linear–quadratic specs take one Newton step either way; the nonlinear ones fewer.
        let (w, c) = (warm.diagnostics.iterations, cold.diagnostics.iterations);
        assert!(w <= c, "{name}: warm {w} > cold {c} iterations");
        if c > 1 {
            assert!(w < c, "{name}: warm {w}, cold {c} iterations");
            fewer += 1;
        }
    }
    assert_eq!(fewer, 3, "nonlinear specs");
}

/// A finite horizon moved from T = 4 to T = 4.4: the previous mesh is stretched and the
/// solve agrees with the cold one.
#[test]
fn a_finite_horizon_of_another_length_is_stretched() {
    let bvp = Bvp::default();
    let mut spec = Spec::from_file(format!(
        "{}/../problems/specs/figure1-double-well.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let first = bvp.solve(&spec.to_problem().unwrap()).unwrap();
    spec.horizon = serde_json::from_str("4.4").unwrap();
    let moved = spec.to_problem().unwrap();
    let warm = bvp.solve_near(&moved, &first).unwrap();
    let cold = bvp.solve(&moved).unwrap();
    assert!(
        (warm.cost - cold.cost).abs() < 1e-7,
        "{} {}",
        warm.cost,
        cold.cost
    );
    assert!((warm.t.last().unwrap() - 4.4).abs() < 1e-12);
}

/// A previous solution that cannot start the solve (another dimension, another kind of
/// horizon) gives the cold solve's answer, bit for bit.
#[test]
fn an_unusable_start_falls_back_to_the_cold_solve() {
    let bvp = Bvp::default();
    let finite = shipped("figure1-double-well");
    let infinite = shipped("figure1-double-well-infinite");
    let one_d = shipped("heavy-ball-1d");
    // A mesh that does not start at 0 (the fields are public).
    let mut shifted = bvp.solve(&finite).unwrap();
    shifted.t.iter_mut().for_each(|t| *t += 0.1);
    for (p, previous) in [
        (&finite, bvp.solve(&infinite).unwrap()),
        (&infinite, bvp.solve(&finite).unwrap()),
        (&finite, bvp.solve(&one_d).unwrap()),
        (&finite, shifted),
    ] {
        let warm = bvp.solve_near(p, &previous).unwrap();
        let cold = bvp.solve(p).unwrap();
        assert_eq!(warm.cost.to_bits(), cold.cost.to_bits());
        assert_eq!(warm.t, cold.t);
    }
    // A truncation the caller fixed is the cold solve's, not the previous solution's.
    let fixed = Bvp {
        truncation: Some(30.0),
        ..Bvp::default()
    };
    let previous = bvp.solve(&infinite).unwrap();
    let warm = fixed.solve_near(&infinite, &previous).unwrap();
    let cold = fixed.solve(&infinite).unwrap();
    assert_eq!(warm.cost.to_bits(), cold.cost.to_bits());
    assert_eq!(*warm.t.last().unwrap(), 30.0);
}

/// Past the fold of the guide's sweep (the barrier-crossing extremal toward the far minimum
/// ceases to exist between γ = 0.85 and 0.9), the warm start from γ = 0.85 fails exactly as
/// the cold solve does; before it, the two agree.
#[test]
fn past_a_fold_the_warm_solve_fails_as_the_cold_one() {
    let bvp = Bvp::default();
    let p = shipped("figure1-double-well-infinite");
    let at = |g: f64| {
        p.with_lagrangian(p.lagrangian().clone().with_gamma(g))
            .unwrap()
    };
    let before = bvp.solve(&at(0.85)).unwrap();
    let cold = bvp.solve(&at(0.9)).unwrap_err();
    let warm = bvp.solve_near(&at(0.9), &before).unwrap_err();
    assert_eq!(warm.kind(), cold.kind());
    assert_eq!(warm.to_string(), cold.to_string());
}

/// The guide's sweep up to its fold (γ = 0.05 … 0.85 on the infinite-horizon double well),
/// each point started from the previous one: every point agrees with its cold solve, and every
/// warm start after the first is used (fewer Newton iterations than cold; horizons too short
/// for the new γ are lengthened, not handed back to the cold solve).
#[test]
fn a_warm_chain_along_the_guides_sweep_agrees_with_cold_solves() {
    let bvp = Bvp::default();
    let p = shipped("figure1-double-well-infinite");
    let mut previous: Option<Solution> = None;
    for i in 0..17 {
        let g = 0.05 + 0.05 * i as f64;
        let at = p
            .with_lagrangian(p.lagrangian().clone().with_gamma(g))
            .unwrap();
        let cold = bvp.solve(&at).unwrap();
        let warm = match &previous {
            Some(s) => bvp.solve_near(&at, s).unwrap(),
            None => cold.clone(),
        };
        assert!(
            (warm.cost - cold.cost).abs() <= 1e-7 * (1.0 + cold.cost.abs()),
            "γ = {g}: warm {} cold {}",
            warm.cost,
            cold.cost
        );
        assert_eq!(verdict(&warm), verdict(&cold), "γ = {g}");
        if previous.is_some() {
            assert!(
                warm.diagnostics.iterations < cold.diagnostics.iterations,
                "γ = {g}: warm {} cold {} iterations",
                warm.diagnostics.iterations,
                cold.diagnostics.iterations
            );
        }
        previous = Some(warm);
    }
}
