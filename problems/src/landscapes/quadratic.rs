//! Quadratic losses `½(θ-μ)ᵀH(θ-μ)`: the linear–quadratic problems with closed forms.

use nalgebra::{DMatrix, DVector};

use crate::error::{check_finite, ProblemError, Result};
use crate::landscape::{Landscape, QuadraticForm};

/// How the Hessian is stored: dense for general `H`, a vector for diagonal `H` so that large
/// `D` costs `O(D)` memory.
#[derive(Debug, Clone, PartialEq)]
enum Curvature {
    Dense(DMatrix<f64>),
    Diagonal(DVector<f64>),
}

/// `L(θ) = ½(θ-μ)ᵀH(θ-μ)` with symmetric `H`.
///
/// ```
/// use lossnav_problems::{Landscape, Quadratic};
/// let q = Quadratic::diagonal(vec![1.0, 4.0], vec![0.0, 1.0]).unwrap();
/// assert_eq!(q.value(&[1.0, 1.0], 0.0), 0.5);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Quadratic {
    curvature: Curvature,
    minimum: DVector<f64>,
}

impl Quadratic {
    /// A quadratic with a full symmetric Hessian. `H` need not be definite.
    pub fn new(hessian: DMatrix<f64>, minimum: DVector<f64>) -> Result<Self> {
        let d = minimum.len();
        if hessian.nrows() != d || hessian.ncols() != d {
            return Err(ProblemError::dimension(
                "hessian",
                format!("{d}x{d} (the length of the minimum)"),
                format!("{}x{}", hessian.nrows(), hessian.ncols()),
            ));
        }
        check_finite("hessian", hessian.as_slice())?;
        check_finite("minimum", minimum.as_slice())?;
        crate::linalg::check_symmetric("hessian", &hessian)?;
        Ok(Self {
            curvature: Curvature::Dense(hessian),
            minimum,
        })
    }

    /// A quadratic with diagonal Hessian `diag(curvatures)`.
    pub fn diagonal(curvatures: Vec<f64>, minimum: Vec<f64>) -> Result<Self> {
        if curvatures.len() != minimum.len() {
            return Err(ProblemError::dimension(
                "curvatures",
                format!("{} entries (the length of the minimum)", minimum.len()),
                format!("{} entries", curvatures.len()),
            ));
        }
        check_finite("curvatures", &curvatures)?;
        check_finite("minimum", &minimum)?;
        Ok(Self {
            curvature: Curvature::Diagonal(DVector::from_vec(curvatures)),
            minimum: DVector::from_vec(minimum),
        })
    }

    /// The minimum `μ` (a stationary point when `H` is indefinite).
    pub fn minimum(&self) -> &DVector<f64> {
        &self.minimum
    }

    fn apply(&self, v: &[f64], out: &mut [f64]) {
        match &self.curvature {
            Curvature::Dense(h) => {
                // Column by column (`out += v_j·H[:, j]`): contiguous in the column-major
                // storage, where a row walk strides by D (seven times slower at D = 3000).
                out.iter_mut().for_each(|o| *o = 0.0);
                for (column, &vj) in h.column_iter().zip(v) {
                    for (o, hij) in out.iter_mut().zip(column.iter()) {
                        *o += hij * vj;
                    }
                }
            }
            Curvature::Diagonal(h) => {
                for ((o, hi), vi) in out.iter_mut().zip(h.iter()).zip(v) {
                    *o = hi * vi;
                }
            }
        }
    }
}

impl Landscape for Quadratic {
    centred_quadratic_methods!();

    fn hessian(&self, _theta: &[f64], _t: f64, hess: &mut DMatrix<f64>) {
        match &self.curvature {
            Curvature::Dense(h) => hess.copy_from(h),
            Curvature::Diagonal(h) => hess.copy_from(&DMatrix::from_diagonal(h)),
        }
    }

    fn hessian_vector(&self, _theta: &[f64], _t: f64, v: &[f64], out: &mut [f64]) {
        self.apply(v, out);
    }

    fn as_quadratic(&self) -> Option<QuadraticForm> {
        let hessian = match &self.curvature {
            Curvature::Dense(h) => h.clone(),
            Curvature::Diagonal(h) => DMatrix::from_diagonal(h),
        };
        Some(QuadraticForm {
            hessian,
            minimum: self.minimum.clone(),
        })
    }

    fn is_convex_quadratic(&self) -> Option<bool> {
        let psd =
            |values: &DVector<f64>, scale: f64| values.iter().all(|&v| v >= -1e-12 * (1.0 + scale));
        match &self.curvature {
            Curvature::Diagonal(h) => Some(psd(h, h.amax())),
            Curvature::Dense(h) if h.nrows() <= crate::landscape::DENSE_CHECK_MAX_DIM => {
                Some(psd(&h.symmetric_eigenvalues(), h.amax()))
            }
            Curvature::Dense(_) => None,
        }
    }

    fn describe(&self) -> String {
        match &self.curvature {
            Curvature::Dense(_) => format!("quadratic (full Hessian, D = {})", self.dim()),
            Curvature::Diagonal(h) if h.len() <= 8 => {
                format!("quadratic (curvatures {:?})", h.as_slice())
            }
            // A description is one line: the first few of a long list.
            Curvature::Diagonal(h) => format!(
                "quadratic (D = {} curvatures in [{}, {}]: {:?}, …)",
                h.len(),
                h.min(),
                h.max(),
                &h.as_slice()[..4]
            ),
        }
    }
}

/// The [`Landscape`] methods shared by the centred quadratics `½(θ-μ)ᵀH(θ-μ)` (dense,
/// diagonal, diagonal plus low rank): expanded inside an `impl Landscape` of a type with a
/// `minimum: DVector<f64>` field and an `apply(v, out)` method writing `H v`.
macro_rules! centred_quadratic_methods {
    () => {
        fn has_constant_hessian(&self) -> bool {
            true
        }
        fn dim(&self) -> usize {
            self.minimum.len()
        }
        fn value(&self, theta: &[f64], _t: f64) -> f64 {
            $crate::landscapes::quadratic::quadratic_value(
                |v, out| self.apply(v, out),
                theta,
                self.minimum.as_slice(),
            )
        }
        fn gradient(&self, theta: &[f64], _t: f64, grad: &mut [f64]) {
            $crate::landscapes::quadratic::quadratic_gradient(
                |v, out| self.apply(v, out),
                theta,
                self.minimum.as_slice(),
                grad,
            );
        }
        fn value_and_gradient(&self, theta: &[f64], _t: f64, grad: &mut [f64]) -> f64 {
            $crate::landscapes::quadratic::quadratic_value_and_gradient(
                |v, out| self.apply(v, out),
                theta,
                self.minimum.as_slice(),
                grad,
            )
        }
    };
}
pub(crate) use centred_quadratic_methods;

/// `½(θ-μ)ᵀH(θ-μ)` for `H` given by its action `apply`.
pub(crate) fn quadratic_value(
    apply: impl Fn(&[f64], &mut [f64]),
    theta: &[f64],
    mu: &[f64],
) -> f64 {
    let x: Vec<f64> = theta.iter().zip(mu).map(|(a, m)| a - m).collect();
    let mut hx = vec![0.0; x.len()];
    apply(&x, &mut hx);
    0.5 * x.iter().zip(&hx).map(|(a, b)| a * b).sum::<f64>()
}

/// `½(θ-μ)ᵀH(θ-μ)` with the gradient `H(θ-μ)` written to `grad`, from one product.
pub(crate) fn quadratic_value_and_gradient(
    apply: impl Fn(&[f64], &mut [f64]),
    theta: &[f64],
    mu: &[f64],
    grad: &mut [f64],
) -> f64 {
    let x: Vec<f64> = theta.iter().zip(mu).map(|(a, m)| a - m).collect();
    apply(&x, grad);
    0.5 * x.iter().zip(grad.iter()).map(|(a, b)| a * b).sum::<f64>()
}

/// `H(θ-μ)` for `H` given by its action `apply`.
pub(crate) fn quadratic_gradient(
    apply: impl Fn(&[f64], &mut [f64]),
    theta: &[f64],
    mu: &[f64],
    grad: &mut [f64],
) {
    let x: Vec<f64> = theta.iter().zip(mu).map(|(a, m)| a - m).collect();
    apply(&x, grad);
}
