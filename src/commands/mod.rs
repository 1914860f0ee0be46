//! What each command computes, as values: the JSON documents and rows that the command line
//! prints and the Python package converts. One function per command, shared by both front
//! ends so they give the same answer to the bit; printing, files and argument parsing stay in
//! [`crate::cli`], conversions to Python objects in the `python/` crate.

pub mod rule;
pub mod schedule;
pub mod simulate;
pub mod solve;
pub mod sweep;
#[cfg(feature = "train")]
pub mod train;

pub use rule::rule;
pub use solve::{parameters, solve, SolveOptions, Solved};
pub use sweep::{Axis, SweepGrid};
