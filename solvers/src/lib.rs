//! # lossnav-solvers: how `lossnav` solves
//!
//! Solvers take a [`lossnav_problems::Problem`] and return a [`Solution`]; they never see
//! JSON. Problem and algorithm stay apart: `Bvp::default().solve(&problem)` (or
//! [`solve`]`(&problem, &Bvp::default())`).
//!
//! - [`Bvp`]: adaptive collocation (sixth-order MIRK at tight tolerances, fourth-order
//!   Lobatto IIIA otherwise: [`Scheme`]) for the Hamiltonian two-point boundary-value
//!   problem, finite and infinite horizons.
//! - [`Direct`]: direct minimisation of the discretised objective over cubic-spline paths
//!   (L-BFGS, exact `O(N·D)` gradients): the independent route, and the large-`D` one.
//! - [`Shooting`]: multiple shooting with diffsol on each segment and Newton on the matching
//!   conditions: a third route with integrator-quality trajectories.

pub mod banded;
mod bvp;
pub mod certificate;
mod collocation;
mod direct;
pub mod equilibrium;
pub mod error;
pub mod extremals;
mod hermite;
mod integrate;
pub mod jacobi;
mod lbfgs;
mod memory;
pub mod mesh;
pub mod observe;
mod quadrature;
pub mod riccati;
pub mod scheme;
pub mod search;
mod shooting;
pub mod simulate;
pub mod solution;
pub mod staircase;
mod target;

pub use bvp::{Bvp, Guess};
pub use certificate::{Certificate, SecondOrder, Verdict};
pub use direct::Direct;
pub use error::SolverError;
pub use lossnav_problems as problems;
pub use scheme::Scheme;
pub use search::{Optimality, Search, SearchResult};
pub use shooting::Shooting;
pub use solution::{Accuracy, Diagnostics, Solution, Tail};

/// An algorithm that computes optimal trajectories.
pub trait Solver {
    /// Solves `problem` from the algorithm's own initial guess.
    fn solve(&self, problem: &problems::Problem) -> Result<Solution, SolverError>;
    /// Solves `problem` starting from `guess(t) = (θ(t), p(t))`.
    fn solve_from(
        &self,
        problem: &problems::Problem,
        guess: &Guess,
    ) -> Result<Solution, SolverError>;
}

impl Solver for Direct {
    fn solve(&self, problem: &problems::Problem) -> Result<Solution, SolverError> {
        Direct::solve(self, problem)
    }
    fn solve_from(
        &self,
        problem: &problems::Problem,
        guess: &Guess,
    ) -> Result<Solution, SolverError> {
        Direct::solve_from(self, problem, Some(guess))
    }
}

impl Solver for Shooting {
    fn solve(&self, problem: &problems::Problem) -> Result<Solution, SolverError> {
        Shooting::solve(self, problem)
    }
    fn solve_from(
        &self,
        problem: &problems::Problem,
        guess: &Guess,
    ) -> Result<Solution, SolverError> {
        Shooting::solve_from(self, problem, Some(guess))
    }
}

impl Solver for Bvp {
    fn solve(&self, problem: &problems::Problem) -> Result<Solution, SolverError> {
        Bvp::solve(self, problem)
    }
    fn solve_from(
        &self,
        problem: &problems::Problem,
        guess: &Guess,
    ) -> Result<Solution, SolverError> {
        Bvp::solve_from(self, problem, guess)
    }
}

/// `solve(problem, algorithm)`.
pub fn solve(problem: &problems::Problem, algorithm: &dyn Solver) -> Result<Solution, SolverError> {
    algorithm.solve(problem)
}

/// Deterministic pseudo-random numbers, uniform in `[-1, 1]`, for the unit tests' matrices.
#[cfg(test)]
pub(crate) fn test_uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}
