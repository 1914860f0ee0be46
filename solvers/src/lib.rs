//! # lossnav-solvers: how `lossnav` solves
//!
//! Solvers take a [`lossnav_problems::Problem`] and return a solution; they never see JSON.
//! The boundary-value collocation solver, the direct trajectory minimiser, multiple shooting
//! and forward simulation of learning rules live here.

pub use lossnav_problems as problems;
