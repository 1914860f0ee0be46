//! The discretisation schemes of the boundary-value solver.
//!
//! Both are mono-implicit Runge–Kutta (MIRK) schemes: the internal stages of an interval are
//! explicit in the two nodal states, so they are eliminated from the unknowns by construction
//! (only the node blocks of the Newton matrix are stored and factored) and enter the Jacobian
//! through the chain rule.
//!
//! * [`Scheme::Order4`]: three-stage Lobatto IIIA (Simpson collocation, MIRK4, the scheme of
//!   scipy's `solve_bvp`). Continuous extension: the cubic Hermite interpolant of nodal values
//!   and slopes, accurate to `O(h⁴)`.
//! * [`Scheme::Order6`]: the sixth-order MIRK scheme built on Boole's rule (Cash & Singhal
//!   1982; the `MIRK6` of BoundaryValueDiffEq.jl). With `f₀ = F(y_i)`, `f₁ = F(y_{i+1})`:
//!
//!   ```text
//!   Y₃ = 27/32 y_i + 5/32 y_{i+1} + h (9/64 f₀ − 3/64 f₁),   K₃ = F(t_i + h/4,  Y₃)
//!   Y₄ = 5/32 y_i + 27/32 y_{i+1} + h (3/64 f₀ − 9/64 f₁),   K₄ = F(t_i + 3h/4, Y₄)
//!   Y₅ = (y_i + y_{i+1})/2 + h (−5/24 f₀ + 5/24 f₁ + 2/3 K₃ − 2/3 K₄),  K₅ = F(t_i + h/2, Y₅)
//!   r_i = y_{i+1} − y_i − h (7/90 (f₀ + f₁) + 16/45 (K₃ + K₄) + 2/15 K₅) = 0
//!   ```
//!
//!   (`Y₃`, `Y₄` are the cubic Hermite interpolant at the quarter points, the weights are
//!   Boole's). Continuous extension: the quintic Hermite interpolant of nodal values, slopes
//!   and second derivatives `y'' = ∂F(y)·F(y)`, accurate to `O(h⁶)`; for this the field must
//!   not depend on time explicitly, so time-dependent problems use the fourth-order scheme.
//!   Per interval it costs three field evaluations and six block products of the Jacobian
//!   (against one and two), and needs far fewer intervals at tight tolerances.
//!
//! The measured orders (nodal values, interpolant, cost) are tested in
//! `solvers/tests/orders.rs`.

/// Which scheme the boundary-value solver discretises with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheme {
    /// [`Scheme::Order6`] when the tolerance is at most [`SIXTH_ORDER_BELOW`] and the field is
    /// autonomous, [`Scheme::Order4`] otherwise.
    #[default]
    Auto,
    /// Three-stage Lobatto IIIA, order 4.
    Order4,
    /// Sixth-order MIRK (Boole), for autonomous fields; a time-dependent problem falls back
    /// to order 4.
    Order6,
}

/// Tolerances at or below which [`Scheme::Auto`] discretises with the sixth-order scheme. At
/// looser tolerances the fourth-order scheme's cheaper intervals win: measured in
/// docs/benchmarks.md.
pub const SIXTH_ORDER_BELOW: f64 = 1e-6;

impl Scheme {
    /// Whether the sixth-order scheme is used at tolerance `tol` for a field that is
    /// (`autonomous`) or is not time-independent.
    pub(crate) fn sixth_order(self, tol: f64, autonomous: bool) -> bool {
        autonomous
            && match self {
                Scheme::Auto => tol <= SIXTH_ORDER_BELOW,
                Scheme::Order4 => false,
                Scheme::Order6 => true,
            }
    }

    /// The order of accuracy of the scheme used at `tol`.
    pub(crate) fn order(self, tol: f64, autonomous: bool) -> u32 {
        if self.sixth_order(tol, autonomous) {
            6
        } else {
            4
        }
    }
}

/// Coefficients of the sixth-order scheme (see the module docs).
pub(crate) mod mirk6 {
    /// Weights of `y_i`, `y_{i+1}`, `h f₀`, `h f₁` in `Y₃` (and, mirrored, `Y₄`).
    pub const QUARTER: [f64; 4] = [27.0 / 32.0, 5.0 / 32.0, 9.0 / 64.0, -3.0 / 64.0];
    /// Weights of `h f₀`, `h f₁`, `h K₃`, `h K₄` in `Y₅` (besides `(y_i + y_{i+1})/2`).
    pub const MIDDLE: [f64; 4] = [-5.0 / 24.0, 5.0 / 24.0, 2.0 / 3.0, -2.0 / 3.0];
    /// Boole's weights of `f₀ + f₁`, `K₃ + K₄` and `K₅`.
    pub const WEIGHTS: [f64; 3] = [7.0 / 90.0, 16.0 / 45.0, 2.0 / 15.0];
}
