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

/// `L = ½ θᵀ H θ` with `H = Qᵀ diag(h) Q` for a rotation `Q` mixing every coordinate, the drift
/// `f = aθ`, fixed end, `γ = 0`: in `Qθ` the second variation decouples into 1-D problems
/// `∫ (δθ̇ − aδθ)² + hᵢδθ²`, whose cross term `−a d(δθ²)/dt` integrates to zero with both ends
/// fixed, so its smallest eigenvalue is `(π/T)² + a² + min h` and its index counts the pairs
/// `(n, i)` with `(nπ/T)² + a² + hᵢ < 0`. In D = 3, 6 and 10 this checks the check's
/// general-dimension code (the per-dimension kernels, the blocked products used for D > 4,
/// faer's Cholesky for D > 8, and the drift's terms `G J₁₁`) against the closed form, with every block full.
#[test]
fn rotated_quadratic_certificate_matches_the_closed_form() {
    let h_all = [-0.5, 0.3, 1.0, 2.0, -0.2, 0.7, 1.5, 0.1, 3.0, 0.4];
    for (d, t_end, a) in [
        (3usize, 2.0_f64, 0.0_f64),
        (3, 6.0, 0.0),
        (6, 2.0, 0.0),
        (6, 6.0, 0.0),
        (3, 2.0, 0.6),
        (3, 10.0, 0.6),
        (6, 10.0, 0.6),
        (10, 2.0, 0.6),
        (10, 10.0, 0.6),
    ] {
        let h = &h_all[..d];
        // Q: a product of Givens rotations between neighbouring coordinates.
        let mut q = nalgebra::DMatrix::<f64>::identity(d, d);
        for i in 0..d - 1 {
            let a = 0.4 + 0.3 * i as f64;
            let mut g = nalgebra::DMatrix::<f64>::identity(d, d);
            g[(i, i)] = a.cos();
            g[(i + 1, i + 1)] = a.cos();
            g[(i, i + 1)] = -a.sin();
            g[(i + 1, i)] = a.sin();
            q = g * q;
        }
        let hm = q.transpose()
            * nalgebra::DMatrix::from_diagonal(&nalgebra::DVector::from_row_slice(h))
            * &q;
        let vars: Vec<String> = (0..d).map(|i| format!("x{i}")).collect();
        let mut terms = Vec::new();
        for i in 0..d {
            for j in 0..d {
                terms.push(format!("0.5*({:.17e})*x{i}*x{j}", hm[(i, j)]));
            }
        }
        let spec = serde_json::json!({
            "loss": {"expr": terms.join(" + "), "vars": vars},
            "theta0": vec![1.0; d],
            "horizon": t_end,
            "end": {"fixed": vec![0.5; d]},
            "drift": {"linear": (0..d)
                .map(|i| (0..d).map(|j| if i == j { a } else { 0.0 }).collect::<Vec<_>>())
                .collect::<Vec<_>>()},
        });
        let p = Spec::from_json(&spec.to_string())
            .unwrap()
            .to_problem()
            .unwrap();
        let sol = Bvp::default().with_tol(1e-10).solve(&p).unwrap();
        let c = sol.second_order.certificate().expect("checked").clone();
        let base = (std::f64::consts::PI / t_end).powi(2);
        let lambda = base + a * a + h.iter().copied().fold(f64::INFINITY, f64::min);
        let index: usize = h
            .iter()
            .map(|&hi| {
                (1..100)
                    .filter(|&n| (n as f64).powi(2) * base + a * a + hi < 0.0)
                    .count()
            })
            .sum();
        assert_eq!(c.descent_directions, index, "D = {d}, T = {t_end}, a = {a}");
        // Cubic elements at h·ω ≤ 1 and ≥ 128 of them: the discretisation error of the lowest
        // eigenvalue is O((λh²)³), below 1e-8 here. The subspace iteration stops when its
        // value changes by under 1e-7 relative, which within a cluster of low eigenvalues (six
        // within a factor 1.8 at D = 6, T = 2) leaves up to ~4e-7: 1e-6 is the bound.
        assert!(
            (c.smallest_eigenvalue - lambda).abs() <= 1e-6 * (1.0 + lambda.abs()),
            "D = {d}, T = {t_end}: λ_min {} vs {lambda}",
            c.smallest_eigenvalue
        );
        let expected = if index > 0 {
            Verdict::Saddle
        } else {
            Verdict::Minimum
        };
        assert_eq!(c.verdict, expected, "D = {d}, T = {t_end}");
    }
}

/// A linearisation that is not finite at a node (here a loss whose Hessian is infinite at the
/// path's start) leaves the check unchecked, at once: nalgebra's SVD, used for the local
/// frequency when D ≥ 3, does not end on a non-finite block, so the check must refuse first.
#[test]
fn a_non_finite_linearisation_is_unchecked_not_a_hang() {
    let spec = |loss: &str, x0: f64| {
        format!(
            r#"{{"loss": {{"expr": "{loss}", "vars": ["x", "y", "z"]}}, "gamma": 0.5,
                "theta0": [{x0}, 0.1, 0.2], "horizon": 3.0, "end": "free"}}"#
        )
    };
    let plain = Spec::from_json(&spec("0.5*(x^2 + y^2 + z^2)", 0.25))
        .unwrap()
        .to_problem()
        .unwrap();
    let sol = Bvp::default().solve(&plain).unwrap();
    // The same landscape plus a term whose curvature is infinite at x = 0.25, the first node.
    let kinked = Spec::from_json(&spec("0.5*(x^2 + y^2 + z^2) + 1e-3*abs(x - 0.25)^1.5", 0.5))
        .unwrap()
        .to_problem()
        .unwrap();
    match lossnav_solvers::certificate::check(&kinked, &sol) {
        lossnav_solvers::SecondOrder::Unchecked(why) => {
            assert!(why.contains("not finite"), "{why}")
        }
        other => panic!("a non-finite linearisation gave {other:?}"),
    }
}
