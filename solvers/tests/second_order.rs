//! The second-order check (docs/theory.md §7) against closed forms and against Jacobi's test.

use lossnav_problems::{End, Horizon, Lagrangian, Problem, Spec};
use lossnav_solvers::certificate::SecondVariation;
use lossnav_solvers::jacobi::conjugate_points;
use lossnav_solvers::{Bvp, Direct, Verdict};
use nalgebra::dvector;

/// `L = −½θ²` (a hill), fixed end: the second variation `∫ e^{-γt}(δθ̇² − δθ²) dt` has the
/// Dirichlet eigenvalues `λ_n = (nπ/T)² + γ²/4 − 1` against `∫ e^{-γt} δθ²` (substitute
/// `δθ = e^{γt/2}u`), and conjugate points at `nπ/√(1 − γ²/4)`.
fn hill(gamma: f64, t_end: f64) -> Problem {
    let spec = format!(
        r#"{{"loss": {{"expr": "-0.5*x^2", "vars": ["x"]}}, "gamma": {gamma},
            "theta0": [1.0], "horizon": {t_end}, "end": {{"fixed": [0.5]}}}}"#
    );
    Spec::from_json(&spec).unwrap().to_problem().unwrap()
}

#[test]
fn hill_certificate_matches_the_closed_form() {
    for (gamma, t_end) in [
        (0.0, 2.0),
        (0.0, 10.0),
        (0.5, 10.0),
        (1.0, 7.0),
        (0.0, 20.0),
    ] {
        let p = hill(gamma, t_end);
        let sol = Bvp::default().with_tol(1e-10).solve(&p).unwrap();
        let c = sol.second_order.certificate().expect("checked").clone();
        let omega = (1.0 - gamma * gamma / 4.0_f64).sqrt();
        let period = std::f64::consts::PI / omega;
        let expected_index = (t_end / period).floor() as usize;
        assert_eq!(
            c.descent_directions, expected_index,
            "γ = {gamma}, T = {t_end}"
        );
        let lambda = (std::f64::consts::PI / t_end).powi(2) + gamma * gamma / 4.0 - 1.0;
        // P1 elements: eigenvalue error O(λ₁ h²) with h ≤ T/256; 1e-3 relative is ample and
        // still far below the spacing of the eigenvalues.
        assert!(
            (c.smallest_eigenvalue - lambda).abs() <= 1e-3 * (1.0 + lambda.abs()),
            "γ = {gamma}, T = {t_end}: λ_min {} vs {lambda}",
            c.smallest_eigenvalue
        );
        match c.first_conjugate_time {
            Some(tc) => {
                // Midpoint of the element that contains it: within one element.
                let h = t_end / c.elements as f64;
                assert!(
                    (tc - period).abs() <= 2.0 * h,
                    "conjugate time {tc} vs {period}"
                );
                assert_eq!(c.verdict, Verdict::Saddle);
            }
            None => {
                assert!(period >= t_end);
                assert_eq!(c.verdict, Verdict::Minimum);
            }
        }
        // Jacobi's test, independently.
        let jt = conjugate_points(&p, &sol, 2000).unwrap();
        assert_eq!(jt.index, expected_index);
        for (n, tc) in jt.times.iter().enumerate() {
            let exact = (n + 1) as f64 * period;
            assert!(
                (tc - exact).abs() < 1e-4,
                "Jacobi conjugate time {tc} vs {exact}"
            );
        }
    }
}

/// The issue's reproducer: the Figure 1 double well on a long horizon with a free end.
fn long_double_well(t_end: f64) -> Problem {
    let spec = format!(
        r#"{{"loss": {{"double_well": {{"a": 1, "b": 1, "c": 1, "d": -0.5}}}},
            "gamma": 0.01, "theta0": [0.2, 1.0], "horizon": {t_end}, "end": "free"}}"#
    );
    Spec::from_json(&spec).unwrap().to_problem().unwrap()
}

#[test]
fn discrete_inertia_agrees_with_jacobi_on_nonlinear_paths() {
    // Saddles and minima of the double well from both solvers, free and fixed ends.
    let mut cases = Vec::new();
    for (t_end, tol) in [(5.0, 1e-8), (20.0, 1e-8), (30.0, 1e-10)] {
        // The 1-D double well: the T = 30 solution at tol 1e-10 is another saddle.
        let spec = format!(
            r#"{{"loss": {{"expr": "(x^2-1)^2 - 0.5*x", "vars": ["x"]}}, "gamma": 0.01,
                "theta0": [0.2], "horizon": {t_end}, "end": "free"}}"#
        );
        let p = Spec::from_json(&spec).unwrap().to_problem().unwrap();
        cases.push((p.clone(), Bvp::default().with_tol(tol).solve(&p).unwrap()));
    }
    for t_end in [5.0, 20.0] {
        let p = long_double_well(t_end);
        cases.push((p.clone(), Bvp::default().solve(&p).unwrap()));
        // The direct path as it is (coarse: defect up to 8e-4): the check classifies whatever
        // path it is given, and Jacobi's test runs along the same path.
        let direct = Direct::default().with_tol(1e-2);
        cases.push((p.clone(), direct.solve(&p).unwrap()));
    }
    let lag = Lagrangian::new(lossnav_problems::AutoDiff(
        lossnav_problems::DoubleWell::figure1(),
    ));
    for t_end in [3.0, 12.0] {
        let p = Problem::new(
            lag.clone().with_gamma(0.1),
            dvector![0.2, 1.0],
            Horizon::Finite(t_end),
            End::Fixed(dvector![-1.0, 0.0]),
        )
        .unwrap();
        cases.push((p.clone(), Bvp::default().solve(&p).unwrap()));
    }
    let mut saddles = 0;
    for (p, sol) in &cases {
        let c = sol.second_order.certificate().unwrap();
        let jt = conjugate_points(p, sol, 4000).unwrap();
        // Counts must agree exactly, except for eigenvalues the discrete check calls zero.
        assert!(
            c.descent_directions <= jt.index && jt.index <= c.descent_directions + c.near_zero,
            "{} T = {}: discrete {c:?} vs Jacobi {jt:?}",
            sol.method,
            sol.end_time()
        );
        if let (Some(a), Some(&b)) = (c.first_conjugate_time, jt.times.first()) {
            let h = sol.end_time() / c.elements as f64;
            assert!((a - b).abs() < 0.05 + 2.0 * h, "{a} vs {b}");
        }
        saddles += usize::from(c.verdict == Verdict::Saddle);
    }
    // The set must contain both kinds, or the comparison proves little.
    assert!(saddles > 0 && saddles < cases.len(), "{saddles} saddles");
}

/// The smallest eigenvalue found by subspace iteration is the lowest of the spectrum, checked by
/// the independent inertia count: no eigenvalue lies below it, at least one just above it.
#[test]
fn lowest_mode_of_a_saddle_is_the_bottom_of_the_spectrum() {
    let p = long_double_well(20.0);
    let sol = Bvp::default().solve(&p).unwrap();
    assert!(sol.second_order.is_saddle());
    let sv = SecondVariation::new(&p, &sol).unwrap();
    let (lambda, mode, _) = sv.lowest_mode().expect("a finite lowest mode");
    assert!(lambda < 0.0);
    assert_eq!(mode.len(), sv.mesh().len());
    // Seven digits from the iteration: a margin of 1e-5 relative on either side.
    let margin = 1e-5 * lambda.abs();
    assert_eq!(sv.count_below(lambda - margin), 0);
    assert!(sv.count_below(lambda + margin) >= 1);
}

/// Free end, `Φ = 0`: the eigenfunctions are `sin((n+½)πt/T)`, `λ_n = ((n+½)π/T)² − 1`.
#[test]
fn free_end_hill_matches_the_closed_form() {
    let pi = std::f64::consts::PI;
    for t_end in [2.0, 4.0, 6.0, 8.0, 11.0] {
        let spec = format!(
            r#"{{"loss": {{"expr": "-0.5*x^2", "vars": ["x"]}}, "gamma": 0,
                "theta0": [1.0], "horizon": {t_end}, "end": "free"}}"#
        );
        let p = Spec::from_json(&spec).unwrap().to_problem().unwrap();
        let sol = Bvp::default().with_tol(1e-10).solve(&p).unwrap();
        let c = sol.second_order.certificate().unwrap();
        let exact = (0..100)
            .filter(|&n| (n as f64 + 0.5) * pi / t_end < 1.0)
            .count();
        assert_eq!(c.descent_directions, exact, "T = {t_end}");
        // Cubic elements: O(h⁶); measured 1e-12. 1e-8 leaves room for other meshes.
        let lambda = (0.5 * pi / t_end).powi(2) - 1.0;
        assert!((c.smallest_eigenvalue - lambda).abs() < 1e-8, "T = {t_end}");
        let jt = conjugate_points(&p, &sol, 2000).unwrap();
        assert_eq!(jt.index, exact, "Jacobi, T = {t_end}");
    }
}
