//! The drift `f(θ, t)`: what parameters do when the learner exerts no control.
//!
//! The learner pays only for the deviation `u = θ̇ - f`. Weight decay is `f = -jθ`, a
//! rotation is `f = qJθ`. The Hamiltonian field needs `f`, its Jacobian `Df`, `Dfᵀp` and,
//! for Newton's method, the contraction `Σ_k p_k ∇²f_k`.

use nalgebra::{DMatrix, DVector};

use crate::error::{check_finite, ProblemError, Result};
use crate::expr::{ExprFunction, Scope};

/// Default parameter dynamics with exact derivatives.
pub trait Drift: Send + Sync {
    /// Number of parameters.
    fn dim(&self) -> usize;

    /// Whether `f ≡ 0` (lets solvers skip work).
    fn is_zero(&self) -> bool {
        false
    }

    /// Whether `f` is affine in `θ` (`Df` the same everywhere) and independent of `t`.
    fn is_affine(&self) -> bool {
        self.is_zero()
    }

    /// Whether `f` depends on `t`.
    fn is_time_dependent(&self) -> bool {
        false
    }

    /// Writes `f(θ, t)` into `out`.
    fn value(&self, theta: &[f64], t: f64, out: &mut [f64]);

    /// Writes the Jacobian `Df` (entry `[i][j] = ∂f_i/∂θ_j`) into `out`.
    fn jacobian(&self, theta: &[f64], t: f64, out: &mut DMatrix<f64>);

    /// Writes `Df(θ, t)ᵀ p` into `out`. The default forms `Df`; large-`D` drifts override it.
    fn jacobian_transpose_mul(&self, theta: &[f64], t: f64, p: &[f64], out: &mut [f64]) {
        let d = self.dim();
        let mut j = DMatrix::zeros(d, d);
        self.jacobian(theta, t, &mut j);
        let r = j.transpose() * DVector::from_column_slice(p);
        out.copy_from_slice(r.as_slice());
    }

    /// Writes `Σ_k p_k ∇²f_k(θ, t)` (the `θ`-Jacobian of `Dfᵀp`) into `out`.
    fn contracted_hessian(&self, theta: &[f64], t: f64, p: &[f64], out: &mut DMatrix<f64>);

    /// `(A, b)` when `f = Aθ + b` exactly (for closed forms).
    fn as_affine(&self) -> Option<(DMatrix<f64>, DVector<f64>)> {
        None
    }

    /// A one-line description.
    fn describe(&self) -> String;
}

/// `f ≡ 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoDrift {
    /// Number of parameters.
    pub dim: usize,
}

impl NoDrift {
    /// No drift on `dim` parameters.
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl Drift for NoDrift {
    fn dim(&self) -> usize {
        self.dim
    }
    fn is_zero(&self) -> bool {
        true
    }
    fn value(&self, _theta: &[f64], _t: f64, out: &mut [f64]) {
        out.fill(0.0);
    }
    fn jacobian(&self, _theta: &[f64], _t: f64, out: &mut DMatrix<f64>) {
        out.fill(0.0);
    }
    fn jacobian_transpose_mul(&self, _theta: &[f64], _t: f64, _p: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn contracted_hessian(&self, _theta: &[f64], _t: f64, _p: &[f64], out: &mut DMatrix<f64>) {
        out.fill(0.0);
    }
    fn as_affine(&self) -> Option<(DMatrix<f64>, DVector<f64>)> {
        Some((DMatrix::zeros(self.dim, self.dim), DVector::zeros(self.dim)))
    }
    fn describe(&self) -> String {
        "none".to_string()
    }
}

/// `f(θ) = Aθ + b`.
///
/// ```
/// use nalgebra::{dmatrix, dvector};
/// use lossnav_problems::{Affine, Drift};
/// // Weight decay with rate 0.5.
/// let decay = Affine::new(dmatrix![-0.5, 0.0; 0.0, -0.5], dvector![0.0, 0.0]).unwrap();
/// let mut f = [0.0; 2];
/// decay.value(&[2.0, -4.0], 0.0, &mut f);
/// assert_eq!(f, [-1.0, 2.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    a: DMatrix<f64>,
    b: DVector<f64>,
}

impl Affine {
    /// Checks that `A` is square with as many rows as `b` has entries.
    pub fn new(a: DMatrix<f64>, b: DVector<f64>) -> Result<Self> {
        let d = b.len();
        if a.nrows() != d || a.ncols() != d {
            return Err(ProblemError::dimension(
                "drift.linear",
                format!("{d}x{d} (the length of drift.offset)"),
                format!("{}x{}", a.nrows(), a.ncols()),
            ));
        }
        check_finite("drift.linear", a.as_slice())?;
        check_finite("drift.offset", b.as_slice())?;
        Ok(Self { a, b })
    }
}

impl Drift for Affine {
    fn is_affine(&self) -> bool {
        true
    }
    fn dim(&self) -> usize {
        self.b.len()
    }
    fn value(&self, theta: &[f64], _t: f64, out: &mut [f64]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.b[i]
                + self
                    .a
                    .row(i)
                    .iter()
                    .zip(theta)
                    .map(|(x, y)| x * y)
                    .sum::<f64>();
        }
    }
    fn jacobian(&self, _theta: &[f64], _t: f64, out: &mut DMatrix<f64>) {
        out.copy_from(&self.a);
    }
    fn jacobian_transpose_mul(&self, _theta: &[f64], _t: f64, p: &[f64], out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.a.column(j).iter().zip(p).map(|(x, y)| x * y).sum();
        }
    }
    fn contracted_hessian(&self, _theta: &[f64], _t: f64, _p: &[f64], out: &mut DMatrix<f64>) {
        out.fill(0.0);
    }
    fn as_affine(&self) -> Option<(DMatrix<f64>, DVector<f64>)> {
        Some((self.a.clone(), self.b.clone()))
    }
    fn describe(&self) -> String {
        format!("affine A θ + b (D = {})", self.dim())
    }
}

/// A drift whose components are expressions in the coordinates, named constants and `t`.
#[derive(Debug, Clone)]
pub struct ExprDrift {
    components: Vec<ExprFunction>,
}

impl ExprDrift {
    /// Parses one expression per coordinate; `field` names them in errors.
    pub fn parse(field: &str, texts: &[String], scope: &Scope) -> Result<Self> {
        let d = scope.vars().len();
        if texts.len() != d {
            return Err(ProblemError::dimension(
                field,
                format!("{d} expressions (the dimension of theta0)"),
                format!("{}", texts.len()),
            ));
        }
        let components = texts
            .iter()
            .enumerate()
            .map(|(i, s)| ExprFunction::parse(&format!("{field}[{i}]"), s, scope))
            .collect::<Result<_>>()?;
        Ok(Self { components })
    }
}

impl Drift for ExprDrift {
    fn dim(&self) -> usize {
        self.components.len()
    }
    fn is_time_dependent(&self) -> bool {
        self.components.iter().any(ExprFunction::uses_time)
    }
    fn value(&self, theta: &[f64], t: f64, out: &mut [f64]) {
        for (o, f) in out.iter_mut().zip(&self.components) {
            *o = f.value(theta, t);
        }
    }
    fn jacobian(&self, theta: &[f64], t: f64, out: &mut DMatrix<f64>) {
        let mut row = vec![0.0; self.dim()];
        for (i, f) in self.components.iter().enumerate() {
            f.gradient(theta, t, &mut row);
            for (j, v) in row.iter().enumerate() {
                out[(i, j)] = *v;
            }
        }
    }
    fn contracted_hessian(&self, theta: &[f64], t: f64, p: &[f64], out: &mut DMatrix<f64>) {
        let d = self.dim();
        let mut h = DMatrix::zeros(d, d);
        out.fill(0.0);
        for (f, &pk) in self.components.iter().zip(p) {
            f.hessian(theta, t, &mut h);
            *out += &h * pk;
        }
    }
    fn describe(&self) -> String {
        let texts: Vec<&str> = self.components.iter().map(ExprFunction::text).collect();
        format!("expression {texts:?}")
    }
}
