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
//! - [`Search`]: the cheapest extremal that the second-order check ([`certificate`]) certifies
//!   as a strict local minimum.
//!
//! ## Layout
//!
//! One folder per idea; the shared vocabulary sits at the top and depends on no folder.
//!
//! | where | owns |
//! |---|---|
//! | `solution/` | [`Solution`], [`Accuracy`], the Hermite interpolant, the second-order result types ([`SecondOrder`], [`Verdict`], [`Certificate`]), [`Guess`] |
//! | `error.rs`, `budget.rs`, `memory.rs`, `observe.rs` | [`SolverError`], the time budget, memory probes, progress [`observe::Observer`]s |
//! | `solver.rs` | the [`Solver`] trait and [`solve`] |
//! | `linalg/` | [`banded`] and [`staircase`] factorisations of the Newton matrix |
//! | `target/` | the end of a path: the infinite-horizon target ([`equilibrium`], stable subspace by [`riccati`]), terminal values |
//! | `bvp/` | the boundary-value solver: collocation, [`scheme`], [`mesh`], discounted quadrature |
//! | `direct/` | the direct method and its in-place L-BFGS |
//! | `shooting/` | forward integration with diffsol: multiple shooting and [`simulate`] |
//! | `certify/` | the second-order [`certificate`] and [`jacobi`]'s conjugate points |
//! | `search/` | the [`search`] for the cheapest certified minimum over [`extremals`] |
//! | `sensitivity/` | [`sensitivity`]: `dJ*/dp` of any solution, `dθ(t)/dp` of boundary-value solutions |
//!
//! Arrows run one way: `search → {bvp, direct} → {certify, target, linalg} → solution → error`;
//! the direct method borrows the collocation residual of `bvp/` for its error estimate.
//! `docs/architecture.md` draws the whole workspace.

mod budget;
mod bvp;
mod certify;
pub mod diagnose;
mod direct;
pub mod error;
mod linalg;
mod memory;
pub mod observe;
pub mod search;
pub mod sensitivity;
mod shooting;
pub mod solution;
mod solver;
mod target;

// Public paths predate the folders and stay where users import them from.
pub use bvp::{mesh, scheme};
pub use certify::{certificate, jacobi};
pub use linalg::{banded, staircase};
pub use search::extremals;
pub use shooting::simulate;
pub use target::{equilibrium, riccati};

pub use budget::{check_max_seconds, Budget, BudgetHandle};
pub use bvp::Bvp;
pub use direct::Direct;
pub use error::SolverError;
pub use lossnav_problems as problems;
pub use scheme::Scheme;
pub use search::{solve_certified, Optimality, Search, SearchResult};
pub use shooting::Shooting;
pub use solution::{
    Accuracy, Certificate, Diagnostics, Guess, SecondOrder, Solution, Tail, Verdict,
};
pub use solver::{solve, Solver};
