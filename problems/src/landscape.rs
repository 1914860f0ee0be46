//! The loss landscape: the potential term of the objective.

use nalgebra::{DMatrix, DVector};

/// A loss `L(θ, t)` with exact first and second derivatives.
///
/// Solvers need the value, the gradient and the Hessian (dense, for the boundary-value
/// solver's `D×D` blocks) or Hessian–vector products (for the large-`D` route, where a
/// `D×D` matrix must never be formed). Implementations must return exact derivatives:
/// from a closed form, automatic differentiation ([`crate::AutoDiff`]) or symbolic
/// differentiation ([`crate::ExprLoss`]).
///
/// Evaluation is infallible: where the loss is undefined (a logarithm of a negative number,
/// say) it returns NaN, and solvers report non-finite values as typed errors.
pub trait Landscape: Send + Sync {
    /// Number of parameters `D`.
    fn dim(&self) -> usize;

    /// `L(θ, t)`.
    fn value(&self, theta: &[f64], t: f64) -> f64;

    /// Writes `∇_θ L(θ, t)` into `grad` (length `D`).
    fn gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]);

    /// `L(θ, t)`, with `∇_θ L(θ, t)` written into `grad`: what the direct method needs at
    /// every quadrature point. The default calls [`Landscape::value`] and
    /// [`Landscape::gradient`]; landscapes whose value and gradient share their work (a
    /// network's forward pass, a quadratic's `H(θ − μ)`) override it, and the override must
    /// agree with the two.
    fn value_and_gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) -> f64 {
        self.gradient(theta, t, grad);
        self.value(theta, t)
    }

    /// Writes the Hessian `∇²_θ L(θ, t)` into `hess` (`D×D`).
    ///
    /// The default builds it column by column from [`Landscape::hessian_vector`]; closed
    /// forms override it.
    fn hessian(&self, theta: &[f64], t: f64, hess: &mut DMatrix<f64>) {
        let d = self.dim();
        let mut e = vec![0.0; d];
        let mut col = vec![0.0; d];
        for j in 0..d {
            e[j] = 1.0;
            self.hessian_vector(theta, t, &e, &mut col);
            hess.column_mut(j).copy_from_slice(&col);
            e[j] = 0.0;
        }
    }

    /// Writes the Hessian–vector product `∇²L(θ, t) v` into `out`.
    ///
    /// Every implementation must provide either this or [`Landscape::hessian`]; the defaults
    /// are written in terms of each other. Large-`D` landscapes implement this one.
    fn hessian_vector(&self, theta: &[f64], t: f64, v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        let mut h = DMatrix::zeros(d, d);
        self.hessian(theta, t, &mut h);
        let hv = h * DVector::from_column_slice(v);
        out.copy_from_slice(hv.as_slice());
    }

    /// `L` at several points: `out[j] = L(θ_j, t_j)` for `j < points.len()`.
    ///
    /// The default evaluates point by point; expression losses evaluate all points in one pass
    /// over their compiled tape, which is how solvers call them along a mesh. An override
    /// must agree with [`Landscape::value`] at every point (solvers mix the two freely).
    ///
    /// # Panics
    /// If `points.dim() != D` or `out.len() != points.len()`.
    fn values(&self, points: Points<'_>, out: &mut [f64]) {
        check_values(self.dim(), &points, out);
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.value(points.theta(j), points.t(j));
        }
    }

    /// `∇_θ L` at several points: point `j`'s gradient goes to `out[j·stride ..][..D]`; the
    /// other entries of `out` are left alone (solvers interleave gradients with other data).
    ///
    /// The default evaluates point by point (see [`Landscape::values`]); an override must
    /// agree with [`Landscape::gradient`] at every point.
    ///
    /// # Panics
    /// If `points.dim() != D`, `stride < D`, or `out` is shorter than
    /// `(points.len() − 1)·stride + D`.
    fn gradients(&self, points: Points<'_>, out: &mut [f64], stride: usize) {
        let d = self.dim();
        check_gradients(d, &points, out, stride);
        for j in 0..points.len() {
            self.gradient(
                points.theta(j),
                points.t(j),
                &mut out[j * stride..j * stride + d],
            );
        }
    }

    /// [`Landscape::values`] and [`Landscape::gradients`] at once: `L` at each point into
    /// `values`, its gradient into `grads[j·stride ..][..D]`.
    ///
    /// The default evaluates point by point with [`Landscape::value_and_gradient`] (one pass
    /// where a loss computes both together, as networks do); expression losses override it
    /// with their two batched passes and Python losses with one call of their callable.
    ///
    /// # Panics
    /// As [`Landscape::values`] and [`Landscape::gradients`].
    fn values_and_gradients(
        &self,
        points: Points<'_>,
        values: &mut [f64],
        grads: &mut [f64],
        stride: usize,
    ) {
        let d = self.dim();
        check_values(d, &points, values);
        check_gradients(d, &points, grads, stride);
        for (j, v) in values.iter_mut().enumerate() {
            *v = self.value_and_gradient(
                points.theta(j),
                points.t(j),
                &mut grads[j * stride..j * stride + d],
            );
        }
    }

    /// `∇²_θ L` at several points: point `j`'s Hessian, column-major, goes to
    /// `out[j·D² ..][..D²]`.
    ///
    /// The default evaluates point by point with [`Landscape::hessian`]; an override must agree
    /// with it at every point.
    ///
    /// # Panics
    /// If `points.dim() != D` or `out.len() != points.len()·D²`.
    fn hessians(&self, points: Points<'_>, out: &mut [f64]) {
        pointwise_hessians(self.dim(), points, out, |theta, t, h| {
            self.hessian(theta, t, h)
        });
    }

    /// Whether `L` depends on `t` (a changing task).
    fn is_time_dependent(&self) -> bool {
        false
    }

    /// Whether the Hessian is the same at every `θ` and `t` (a quadratic loss): solvers then
    /// evaluate it once per linearisation instead of once per point.
    fn has_constant_hessian(&self) -> bool {
        false
    }

    /// The exact quadratic form `½(θ-μ)ᵀH(θ-μ)` when the loss is one, for closed-form rules.
    fn as_quadratic(&self) -> Option<QuadraticForm> {
        None
    }

    /// Whether the loss is a quadratic `½(θ-μ)ᵀH(θ-μ)` with `H ⪰ 0` (to `1e-12` of its
    /// scale), decided at the cost its structure allows: `O(D)` for diagonal curvatures,
    /// `O(D·r)` for diagonal plus low rank, an eigendecomposition for a dense `H` up to
    /// [`DENSE_CHECK_MAX_DIM`]. `None`: not a quadratic, or too large to decide, so callers
    /// treat the loss as possibly non-convex. Unlike [`Landscape::as_quadratic`] it never
    /// forms a `D×D` matrix.
    fn is_convex_quadratic(&self) -> Option<bool> {
        None
    }

    /// A one-line human-readable description.
    fn describe(&self) -> String;
}

/// The largest `D` at which [`Landscape::is_convex_quadratic`] decomposes a dense Hessian
/// (`O(D³)`: about a second at 2048).
pub const DENSE_CHECK_MAX_DIM: usize = 2048;

/// Points `(θ_j, t_j)`, `j < t.len()`, read from strided storage: `θ_j` is the `dim` values
/// starting at `values[j·stride]`. With stride `2D` these are the `θ` parts of node-major
/// states `y = (θ, p)`, as a solver's mesh stores them.
///
/// ```
/// use lossnav_problems::Points;
/// let y = [1.0, 2.0, 0.1, 0.2, 3.0, 4.0, 0.3, 0.4]; // (θ, p) at two times
/// let points = Points::new(&y, 2, 4, &[0.0, 0.5]);
/// assert_eq!(points.theta(1), [3.0, 4.0]);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Points<'a> {
    values: &'a [f64],
    dim: usize,
    stride: usize,
    t: &'a [f64],
}

impl<'a> Points<'a> {
    /// `t.len()` points of dimension `dim` at times `t`, point `j` starting at
    /// `values[j·stride]`.
    ///
    /// # Panics
    /// If `stride < dim` or `values` is too short for the last point.
    pub fn new(values: &'a [f64], dim: usize, stride: usize, t: &'a [f64]) -> Self {
        assert!(stride >= dim, "point stride {stride} < dimension {dim}");
        if let Some(last) = t.len().checked_sub(1) {
            assert!(
                values.len() >= last * stride + dim,
                "{} values hold fewer than {} points of dimension {dim} with stride {stride}",
                values.len(),
                t.len()
            );
        }
        Self {
            values,
            dim,
            stride,
            t,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.t.len()
    }

    /// Whether there are no points.
    pub fn is_empty(&self) -> bool {
        self.t.is_empty()
    }

    /// Dimension of each point.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `θ_j`.
    pub fn theta(&self, j: usize) -> &'a [f64] {
        &self.values[j * self.stride..j * self.stride + self.dim]
    }

    /// Coordinate `i < dim` of `θ_j`.
    pub fn coordinate(&self, j: usize, i: usize) -> f64 {
        debug_assert!(i < self.dim);
        self.values[j * self.stride + i]
    }

    /// `t_j`.
    pub fn t(&self, j: usize) -> f64 {
        self.t[j]
    }
}

/// The size checks of [`Landscape::values`], shared with its overrides.
pub(crate) fn check_values(dim: usize, points: &Points<'_>, out: &[f64]) {
    assert_eq!(points.dim(), dim, "points of the wrong dimension");
    assert_eq!(out.len(), points.len(), "one output per point");
}

/// [`Landscape::hessians`] point by point with `hessian(θ, t, H)`, after its size checks.
pub(crate) fn pointwise_hessians(
    dim: usize,
    points: Points<'_>,
    out: &mut [f64],
    mut hessian: impl FnMut(&[f64], f64, &mut DMatrix<f64>),
) {
    check_hessians(dim, &points, out);
    let mut h = DMatrix::zeros(dim, dim);
    for (j, o) in out.chunks_exact_mut(dim * dim).enumerate() {
        hessian(points.theta(j), points.t(j), &mut h);
        o.copy_from_slice(h.as_slice());
    }
}

/// The size checks of [`Landscape::hessians`], shared with its overrides.
pub(crate) fn check_hessians(dim: usize, points: &Points<'_>, out: &[f64]) {
    assert_eq!(points.dim(), dim, "points of the wrong dimension");
    assert_eq!(
        out.len(),
        points.len() * dim * dim,
        "output must hold D² values per point"
    );
}

/// The size checks of [`Landscape::gradients`], shared with its overrides.
pub(crate) fn check_gradients(dim: usize, points: &Points<'_>, out: &[f64], stride: usize) {
    assert_eq!(points.dim(), dim, "points of the wrong dimension");
    check_strided_output(points.len(), dim, out, stride);
}

/// `out` holds `count` rows of `width` values, `stride` apart.
pub(crate) fn check_strided_output(count: usize, width: usize, out: &[f64], stride: usize) {
    assert!(
        stride >= width,
        "output stride {stride} < row width {width}"
    );
    if let Some(last) = count.checked_sub(1) {
        assert!(
            out.len() >= last * stride + width,
            "output of length {} too short for {count} rows of {width} with stride {stride}",
            out.len()
        );
    }
}

/// The data of a quadratic loss `½(θ-μ)ᵀH(θ-μ)`, dense, for closed-form rules (small `D`).
#[derive(Debug, Clone, PartialEq)]
pub struct QuadraticForm {
    /// The Hessian `H` (symmetric).
    pub hessian: DMatrix<f64>,
    /// The minimum `μ`.
    pub minimum: DVector<f64>,
}

/// Convenience: gradient as a new vector.
pub fn gradient_vec(loss: &dyn Landscape, theta: &[f64], t: f64) -> DVector<f64> {
    let mut g = DVector::zeros(loss.dim());
    loss.gradient(theta, t, g.as_mut_slice());
    g
}

/// Convenience: Hessian as a new matrix.
pub fn hessian_mat(loss: &dyn Landscape, theta: &[f64], t: f64) -> DMatrix<f64> {
    let d = loss.dim();
    let mut h = DMatrix::zeros(d, d);
    loss.hessian(theta, t, &mut h);
    h
}
