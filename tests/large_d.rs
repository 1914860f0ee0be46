//! The direct method on a quadratic with a diagonal-plus-low-rank Hessian given only through
//! Hessian–vector products, against the Lanczos closed form (itself checked against a dense
//! eigendecomposition at moderate D).

use nalgebra::{DMatrix, DVector};

use lossnav::rules::krylov::fixed_end_cost;
use lossnav::solvers::Direct;
use lossnav::testbed::LowRankCase;

#[test]
fn lanczos_closed_form_matches_dense_eigendecomposition() {
    let case = LowRankCase::new(120, 5, 0.5, 3.0);
    let (problem, loss) = (&case.problem, &case.loss);
    let delta: Vec<f64> = problem
        .theta0()
        .iter()
        .zip(loss.minimum().iter())
        .map(|(a, b)| a - b)
        .collect();
    let f = |h: f64| fixed_end_cost(h, 1.0, 1.0, 0.5, 3.0);
    let lanczos = case.exact_cost(60);
    let mut h = DMatrix::zeros(120, 120);
    lossnav::problems::Landscape::hessian(loss, problem.theta0().as_slice(), 0.0, &mut h);
    let eig = h.symmetric_eigen();
    let proj = eig.eigenvectors.transpose() * DVector::from_vec(delta);
    let dense: f64 = (0..120)
        .map(|i| f(eig.eigenvalues[i]) * proj[i] * proj[i])
        .sum();
    // Two exact methods in floating point: 1e-12 relative.
    assert!(
        (lanczos - dense).abs() < 1e-12 * dense,
        "{lanczos} vs {dense}"
    );
}

#[test]
fn direct_method_matches_the_closed_form_at_d_500() {
    let case = LowRankCase::new(500, 8, 0.5, 3.0);
    let exact = case.exact_cost(80);
    // The path's own error estimate (collocation defect, O(h⁴)) is 2e-6 on 60 intervals; what
    // this test checks is the cost, accurate to O(h⁶).
    let sol = Direct::default()
        .with_intervals(60)
        .with_tol(1e-5)
        .solve(&case.problem)
        .unwrap();
    let rel = (sol.cost - exact).abs() / exact;
    eprintln!(
        "D = 500: direct {} vs closed form {exact}: relative {rel:.1e}",
        sol.cost
    );
    // Cost error O(h⁶) with h = 0.05 and curvatures up to ~2: below 1e-10; required 1e-8.
    assert!(rel < 1e-8, "relative cost error {rel:e}");
}
