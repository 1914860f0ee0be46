//! # lossnav-solvers: how `lossnav` solves
//!
//! Solvers take a [`lossnav_problems::Problem`] and return a [`Solution`]; they never see
//! JSON. Problem and algorithm stay apart: `Bvp::default().solve(&problem)` (or
//! [`solve`]`(&problem, &Bvp::default())`).
//!
//! - [`Bvp`]: adaptive fourth-order Lobatto IIIA collocation for the Hamiltonian two-point
//!   boundary-value problem, finite and infinite horizons.

pub mod banded;
mod bvp;
mod collocation;
pub mod equilibrium;
pub mod error;
mod hermite;
pub mod mesh;
mod quadrature;
pub mod riccati;
pub mod solution;
mod target;

pub use bvp::{Bvp, Guess};
pub use error::SolverError;
pub use lossnav_problems as problems;
pub use solution::{Diagnostics, Solution, Tail};

/// An algorithm that computes optimal trajectories.
pub trait Solver {
    /// Solves `problem`.
    fn solve(&self, problem: &problems::Problem) -> Result<Solution, SolverError>;
}

impl Solver for Bvp {
    fn solve(&self, problem: &problems::Problem) -> Result<Solution, SolverError> {
        Bvp::solve(self, problem)
    }
}

/// `solve(problem, algorithm)`.
pub fn solve(problem: &problems::Problem, algorithm: &dyn Solver) -> Result<Solution, SolverError> {
    algorithm.solve(problem)
}
