//! # lossnav: learning rules as optimal control
//!
//! Re-exports the problem model ([`problems`]) and the solvers ([`solvers`]), and holds the
//! command-line interface ([`cli`]).

pub mod atomic;
pub mod cli;
pub mod commands;
pub mod escape;
pub mod figures;
pub mod fit;
pub mod rules;
pub mod testbed;
#[cfg(feature = "train")]
pub mod train;
pub mod verify;

/// candle, the tensor crate the training code uses (re-exported so versions match).
#[cfg(feature = "train")]
pub use candle_core;
/// candle's layers, losses and optimiser trait.
#[cfg(feature = "train")]
pub use candle_nn;
pub use lossnav_problems as problems;
pub use lossnav_solvers as solvers;
pub use lossnav_solvers::solve_certified;
/// The linear-algebra crate of every public signature, at the version lossnav uses.
pub use nalgebra;

/// The README's examples compile and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
