//! What a stationary path is: the second-order check that it is a strict local minimum of `J`
//! (or a saddle, with its descent directions), and the independent conjugate-point test it is
//! compared with.
//!
//! Owns: [`certificate`] (the discretised second variation and its inertia, attached to a
//! [`crate::Solution`] as [`crate::SecondOrder`]) and [`jacobi`] (Jacobi fields and conjugate
//! points). Uses: the solution vocabulary and the problem's field Jacobian only, so any
//! method can ask for the check and none is needed to run it.

pub mod certificate;
pub mod jacobi;
