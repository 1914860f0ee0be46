//! Synthetic problems of any size with known answers, for measuring the solvers at large `D`
//! (tests, benchmarks and examples use the same instances).

use nalgebra::{DMatrix, DVector};

use crate::problems::{End, Horizon, Lagrangian, LowRankQuadratic, Problem, Quadratic};
use crate::rules::krylov::{fixed_end_cost, quadratic_form};

/// Deterministic pseudo-random numbers, uniform in `[-1, 1)`: the workspace's one test
/// generator ([`crate::problems::testbed`]), re-exported here for the root crate's users.
///
/// ```
/// let mut r = lossnav::testbed::uniform(7);
/// let x = r();
/// assert!((-1.0..=1.0).contains(&x));
/// assert_eq!(x, lossnav::testbed::uniform(7)());
/// ```
pub use crate::problems::testbed::uniform;

/// A quadratic loss with Hessian `diag(c) + UUᵀ` (`c ∈ [0.5, 1.5]`, `U` of size `D × rank`
/// with entries of size `1/√D`), given to the solvers only through Hessian–vector products; the
/// path starts at a random `θ0` and ends fixed at the minimum `μ` (η = k = 1).
pub struct LowRankCase {
    /// The problem.
    pub problem: Problem,
    /// Its loss.
    pub loss: LowRankQuadratic,
    gamma: f64,
    t_end: f64,
}

impl LowRankCase {
    /// The instance of dimension `d` (seed 7 of [`uniform`]).
    ///
    /// ```
    /// let case = lossnav::testbed::LowRankCase::new(50, 3, 0.5, 3.0);
    /// assert_eq!(case.problem.dim(), 50);
    /// assert!(case.exact_cost(40) > 0.0);
    /// ```
    pub fn new(d: usize, rank: usize, gamma: f64, t_end: f64) -> Self {
        let mut r = uniform(7);
        let diag = DVector::from_fn(d, |_, _| 1.0 + 0.5 * r());
        let u = DMatrix::from_fn(d, rank, |_, _| r() / (d as f64).sqrt());
        let mu = DVector::from_fn(d, |_, _| 0.5 * r());
        let loss = LowRankQuadratic::new(diag, u, mu.clone())
            .expect("the generated Hessian is positive definite");
        let theta0 = DVector::from_fn(d, |_, _| r());
        let problem = Problem::new(
            Lagrangian::new(loss.clone()).with_gamma(gamma),
            theta0,
            Horizon::Finite(t_end),
            End::Fixed(mu),
        )
        .expect("the generated problem is valid");
        Self {
            problem,
            loss,
            gamma,
            t_end,
        }
    }

    /// The optimal cost `δᵀF(H)δ` (`δ = θ0 − μ`, `F` the fixed-end closed form of
    /// `docs/claims.md`), by Lanczos quadrature with `steps` steps.
    pub fn exact_cost(&self, steps: usize) -> f64 {
        let delta: Vec<f64> = self
            .problem
            .theta0()
            .iter()
            .zip(self.loss.minimum().iter())
            .map(|(a, b)| a - b)
            .collect();
        let (gamma, t_end) = (self.gamma, self.t_end);
        quadratic_form(&|v, out| self.loss.apply(v, out), &delta, steps, &|h| {
            fixed_end_cost(h, 1.0, 1.0, gamma, t_end)
        })
    }
}

/// The infinite-horizon benchmark quadratic of `benches/bvp.rs` and `benches/peers_bvp.py`:
/// `L = ½θᵀHθ` with a random SPD Hessian `H = Q diag(λ) Qᵀ` (eigenvalues evenly spaced in
/// [0.5, 5], `Q` from the QR factorisation of a uniform random matrix), `θ0` uniform in
/// [-1, 1], `γ = 1`, `η = k = 1`. Returns the problem and `H`. `d` must be at least 2.
///
/// ```
/// let (problem, h) = lossnav::testbed::random_spd_quadratic(4);
/// assert_eq!(problem.dim(), 4);
/// assert!((&h - h.transpose()).amax() == 0.0);
/// ```
pub fn random_spd_quadratic(d: usize) -> (Problem, DMatrix<f64>) {
    let mut rnd = uniform(12345);
    let a = DMatrix::from_fn(d, d, |_, _| rnd());
    let q = a.qr().q();
    let eig = DVector::from_fn(d, |i, _| 0.5 + 4.5 * i as f64 / (d - 1) as f64);
    let h = &q * DMatrix::from_diagonal(&eig) * q.transpose();
    let h = (&h + h.transpose()) * 0.5;
    let theta0 = DVector::from_fn(d, |_, _| rnd());
    let problem = Problem::new(
        Lagrangian::new(Quadratic::new(h.clone(), DVector::zeros(d)).unwrap()).with_gamma(1.0),
        theta0,
        Horizon::Infinite,
        End::Equilibrium { guess: None },
    )
    .unwrap();
    (problem, h)
}
