//! Linear algebra written for the boundary-value Newton matrix, which no dependency factors
//! well: a banded LU and Cholesky ([`banded`]), and the alternate row and column elimination of
//! almost block-diagonal ("staircase") matrices ([`staircase`]).
//!
//! Owns: storage and factorisations of structured matrices. Uses: faer's dense kernels, and
//! nothing else of this crate. Used by the boundary-value, direct and shooting methods.

pub mod banded;
pub mod staircase;
