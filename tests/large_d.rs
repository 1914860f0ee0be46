//! The direct method on a quadratic with a diagonal-plus-low-rank Hessian given only through
//! Hessian–vector products, against the Lanczos closed form (itself checked against a dense
//! eigendecomposition at moderate D).

use nalgebra::{DMatrix, DVector};

use lossnav::problems::{End, Horizon, Lagrangian, LowRankQuadratic, Problem};
use lossnav::rules::krylov::{fixed_end_cost, quadratic_form};
use lossnav::solvers::Direct;

/// Deterministic pseudo-random numbers in [-1, 1].
fn rng(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn low_rank_problem(d: usize, rank: usize, gamma: f64, t_end: f64) -> (Problem, LowRankQuadratic) {
    let mut r = rng(7);
    let diag = DVector::from_fn(d, |_, _| 1.0 + 0.5 * r());
    let u = DMatrix::from_fn(d, rank, |_, _| r() / (d as f64).sqrt());
    let mu = DVector::from_fn(d, |_, _| 0.5 * r());
    let loss = LowRankQuadratic::new(diag, u, mu.clone()).unwrap();
    let theta0 = DVector::from_fn(d, |_, _| r());
    let problem = Problem::new(
        Lagrangian::new(loss.clone()).with_gamma(gamma),
        theta0,
        Horizon::Finite(t_end),
        End::Fixed(mu),
    )
    .unwrap();
    (problem, loss)
}

#[test]
fn lanczos_closed_form_matches_dense_eigendecomposition() {
    let (problem, loss) = low_rank_problem(120, 5, 0.5, 3.0);
    let delta: Vec<f64> = problem
        .theta0()
        .iter()
        .zip(loss.minimum().iter())
        .map(|(a, b)| a - b)
        .collect();
    let f = |h: f64| fixed_end_cost(h, 1.0, 1.0, 0.5, 3.0);
    let lanczos = quadratic_form(&|v, out| loss.apply(v, out), &delta, 60, &f);
    let mut h = DMatrix::zeros(120, 120);
    lossnav::problems::Landscape::hessian(&loss, problem.theta0().as_slice(), 0.0, &mut h);
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
    let (problem, loss) = low_rank_problem(500, 8, 0.5, 3.0);
    let delta: Vec<f64> = problem
        .theta0()
        .iter()
        .zip(loss.minimum().iter())
        .map(|(a, b)| a - b)
        .collect();
    let exact = quadratic_form(&|v, out| loss.apply(v, out), &delta, 80, &|h| {
        fixed_end_cost(h, 1.0, 1.0, 0.5, 3.0)
    });
    let sol = Direct::default()
        .with_intervals(60)
        .solve(&problem)
        .unwrap();
    let rel = (sol.cost - exact).abs() / exact;
    eprintln!(
        "D = 500: direct {} vs closed form {exact}: relative {rel:.1e}",
        sol.cost
    );
    // Cost error O(h⁶) with h = 0.05 and curvatures up to ~2: below 1e-10; required 1e-8.
    assert!(rel < 1e-8, "relative cost error {rel:e}");
}
