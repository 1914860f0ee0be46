//! Quadratics with a diagonal-plus-low-rank Hessian, applied without forming it: the large-`D`
//! test case of the direct method.

use nalgebra::{DMatrix, DVector};

use crate::error::{check_finite, ProblemError, Result};
use crate::landscape::Landscape;
use crate::landscapes::quadratic::centred_quadratic_methods;

/// `L(θ) = ½(θ-μ)ᵀ(diag(d) + U Uᵀ)(θ-μ)` with `U` of size `D×r`: `O(D·r)` memory and work
/// per gradient or Hessian–vector product; the `D×D` Hessian is never formed (its `hessian`
/// method is for small `D` only).
#[derive(Debug, Clone, PartialEq)]
pub struct LowRankQuadratic {
    diag: DVector<f64>,
    u: DMatrix<f64>,
    minimum: DVector<f64>,
}

impl LowRankQuadratic {
    /// Checks shapes and finiteness.
    pub fn new(diag: DVector<f64>, u: DMatrix<f64>, minimum: DVector<f64>) -> Result<Self> {
        let d = minimum.len();
        if diag.len() != d || u.nrows() != d {
            return Err(ProblemError::dimension(
                "low-rank quadratic",
                format!("diag of length {d} and U with {d} rows"),
                format!(
                    "diag of length {} and U with {} rows",
                    diag.len(),
                    u.nrows()
                ),
            ));
        }
        check_finite("diag", diag.as_slice())?;
        check_finite("U", u.as_slice())?;
        check_finite("minimum", minimum.as_slice())?;
        Ok(Self { diag, u, minimum })
    }

    /// `H v` in `O(D·r)`.
    pub fn apply(&self, v: &[f64], out: &mut [f64]) {
        let vv = DVector::from_column_slice(v);
        let utv = self.u.tr_mul(&vv);
        let low = &self.u * utv;
        for i in 0..out.len() {
            out[i] = self.diag[i] * v[i] + low[i];
        }
    }

    /// The minimum μ.
    pub fn minimum(&self) -> &DVector<f64> {
        &self.minimum
    }
}

impl Landscape for LowRankQuadratic {
    centred_quadratic_methods!();

    fn hessian(&self, _theta: &[f64], _t: f64, hess: &mut DMatrix<f64>) {
        hess.copy_from(&(DMatrix::from_diagonal(&self.diag) + &self.u * self.u.transpose()));
    }
    fn hessian_vector(&self, _theta: &[f64], _t: f64, v: &[f64], out: &mut [f64]) {
        self.apply(v, out);
    }
    fn is_convex_quadratic(&self) -> Option<bool> {
        // diag(c) + UUᵀ ⪰ 0 when c ≥ 0; with a negative c it may still be, which would take a
        // small eigenproblem to decide: undecided.
        self.diag.iter().all(|&c| c >= 0.0).then_some(true)
    }
    fn describe(&self) -> String {
        format!(
            "diagonal plus rank-{} quadratic (D = {})",
            self.u.ncols(),
            self.dim()
        )
    }
}
