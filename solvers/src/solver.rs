//! The [`Solver`] trait: every method takes a problem (and optionally a guess) and returns a
//! [`Solution`] or a typed [`SolverError`]; [`solve`] is `solve(problem, algorithm)`.

use lossnav_problems::Problem;

use crate::bvp::Bvp;
use crate::direct::Direct;
use crate::error::SolverError;
use crate::shooting::Shooting;
use crate::solution::{Guess, Solution};

/// An algorithm that computes optimal trajectories.
pub trait Solver {
    /// Solves `problem` from the algorithm's own initial guess.
    fn solve(&self, problem: &Problem) -> Result<Solution, SolverError>;
    /// Solves `problem` starting from `guess(t) = (θ(t), p(t))`.
    fn solve_from(&self, problem: &Problem, guess: &Guess) -> Result<Solution, SolverError>;
}

impl Solver for Direct {
    fn solve(&self, problem: &Problem) -> Result<Solution, SolverError> {
        Direct::solve(self, problem)
    }
    fn solve_from(&self, problem: &Problem, guess: &Guess) -> Result<Solution, SolverError> {
        Direct::solve_from(self, problem, Some(guess))
    }
}

impl Solver for Shooting {
    fn solve(&self, problem: &Problem) -> Result<Solution, SolverError> {
        Shooting::solve(self, problem)
    }
    fn solve_from(&self, problem: &Problem, guess: &Guess) -> Result<Solution, SolverError> {
        Shooting::solve_from(self, problem, Some(guess))
    }
}

impl Solver for Bvp {
    fn solve(&self, problem: &Problem) -> Result<Solution, SolverError> {
        Bvp::solve(self, problem)
    }
    fn solve_from(&self, problem: &Problem, guess: &Guess) -> Result<Solution, SolverError> {
        Bvp::solve_from(self, problem, guess)
    }
}

/// `solve(problem, algorithm)`.
pub fn solve(problem: &Problem, algorithm: &dyn Solver) -> Result<Solution, SolverError> {
    algorithm.solve(problem)
}
