//! Small dense helpers shared by the problem model: symmetry and definiteness checks, scratch
//! vectors.

use nalgebra::DMatrix;

use crate::error::{fmt_num, ProblemError, Result};

/// Relative tolerance for symmetry: entries are stated in decimal JSON or computed in floating
/// point, so exact equality of `A[i][j]` and `A[j][i]` is too strict, while a genuine asymmetry
/// is many orders of magnitude larger than this.
const SYMMETRY_RTOL: f64 = 1e-12;

/// Checks `a == aᵀ` to rounding, naming the first offending pair.
pub(crate) fn check_symmetric(field: &str, a: &DMatrix<f64>) -> Result<()> {
    let scale = a
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for i in 0..a.nrows() {
        for j in (i + 1)..a.ncols() {
            if (a[(i, j)] - a[(j, i)]).abs() > SYMMETRY_RTOL * scale {
                return Err(ProblemError::NotPositiveDefinite {
                    field: field.to_string(),
                    message: format!(
                        "matrix is not symmetric: entry [{i}][{j}] = {} but [{j}][{i}] = {}",
                        a[(i, j)],
                        a[(j, i)]
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Smallest eigenvalue of a symmetric matrix.
pub(crate) fn min_eigenvalue(a: &DMatrix<f64>) -> f64 {
    a.clone()
        .symmetric_eigenvalues()
        .iter()
        .fold(f64::INFINITY, |m, &v| m.min(v))
}

/// Checks that `a` is symmetric positive definite (it has a Cholesky factor).
pub(crate) fn check_spd(field: &str, a: &DMatrix<f64>) -> Result<()> {
    check_symmetric(field, a)?;
    if a.clone().cholesky().is_none() {
        return Err(ProblemError::NotPositiveDefinite {
            field: field.to_string(),
            message: format!(
                "metric must be symmetric positive definite, but its smallest eigenvalue is {}",
                fmt_num(min_eigenvalue(a))
            ),
        });
    }
    Ok(())
}

/// Checks that `a` is symmetric positive semi-definite, to rounding relative to its largest
/// eigenvalue (a mobility may be singular: those directions cannot be moved).
pub(crate) fn check_psd(field: &str, a: &DMatrix<f64>) -> Result<()> {
    check_symmetric(field, a)?;
    let eig = a.clone().symmetric_eigenvalues();
    let max = eig.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    let min = eig.iter().fold(f64::INFINITY, |m, &v| m.min(v));
    // Eigenvalues of an exactly singular PSD matrix come out as ±(D·ε·‖A‖).
    if min < -1e-12 * max * a.nrows() as f64 {
        return Err(ProblemError::NotPositiveDefinite {
            field: field.to_string(),
            message: format!(
                "mobility must be symmetric positive semi-definite, but its smallest eigenvalue is {}",
                fmt_num(min)
            ),
        });
    }
    if max == 0.0 {
        return Err(ProblemError::NotPositiveDefinite {
            field: field.to_string(),
            message: "mobility is zero: no direction can be moved".to_string(),
        });
    }
    Ok(())
}

/// Runs `f` on a zeroed scratch vector of length `n`: on the stack for the small `D` of the
/// solvers' inner loops (where these per-point evaluations would otherwise allocate), on the
/// heap beyond.
pub(crate) fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
    const STACK: usize = 16;
    if n <= STACK {
        f(&mut [0.0; STACK][..n])
    } else {
        f(&mut vec![0.0; n])
    }
}
