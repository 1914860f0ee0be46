//! The stabilising solution of the Riccati equation of a linearised Hamiltonian system, via
//! the matrix sign function.
//!
//! At an equilibrium `y* = (θ*, p*)` the linearised field `δẏ = Z δy` (`Z` is `2D×2D`) has
//! eigenvalues symmetric about `γ/2`. Solutions that approach the equilibrium live on the
//! invariant subspace of the `D` eigenvalues with real part below `γ/2`; writing it as
//! `δp = -η P δθ` defines `P`, the Hessian of the value function and, for linear–quadratic
//! problems, the solution of the discounted algebraic Riccati equation of docs/theory.md §4.
//!
//! `sign(Z - γ/2·I)` maps that subspace to `-1`; the subspace is then the solution of a
//! least-squares problem (Byers' method). The Newton iteration for the sign function with
//! determinant scaling converges quadratically and needs no eigenvectors, so it is robust for
//! non-normal `Z` (drifts) where an eigendecomposition is not.

use nalgebra::DMatrix;

use crate::error::SolverError;

/// From this order of `Z` (`D ≥ 64`) the sign iteration and the least-squares solve use faer's
/// blocked LU and column-pivoted QR (at `D = 500` the target went from 5.9 s to 1.9 s), and
/// so do the equilibrium's Newton step and the closed-loop eigenvalues; below it, nalgebra's
/// unblocked LU and SVD, whose rounding small problems keep (the tol-1e-12 continuation of
/// `figure3-rotation-discounted` is sensitive to the target at that level).
pub(crate) const BLOCKED_MIN_ORDER: usize = 128;

/// The stable invariant subspace of the linearisation, as a Riccati matrix and a policy.
#[derive(Debug, Clone)]
pub struct StableSubspace {
    /// `P` with `p - p* = -η P (θ - θ*)` on the subspace (symmetrised).
    pub riccati: DMatrix<f64>,
    /// The closed-loop matrix `K`: `θ̇ = K (θ - θ*)` on the subspace.
    pub closed_loop: DMatrix<f64>,
    /// `‖Z V - V K‖ / ‖Z‖` with `V = [I; -ηP]`: how invariant the subspace is.
    pub residual: f64,
    /// `‖P - Pᵀ‖ / ‖P‖` before symmetrisation.
    pub asymmetry: f64,
}

/// Computes the stable subspace of `z` (the `2D×2D` field Jacobian at the equilibrium).
pub fn stable_subspace(
    z: &DMatrix<f64>,
    gamma: f64,
    eta: f64,
) -> Result<StableSubspace, SolverError> {
    let n = z.nrows();
    let d = n / 2;
    let shifted = z - DMatrix::identity(n, n) * (0.5 * gamma);
    let s = matrix_sign(&shifted)?;
    // [S12; S22 + I] Y = -[S11 + I; S21], Y = -ηP.
    let mut lhs = DMatrix::zeros(n, d);
    let mut rhs = DMatrix::zeros(n, d);
    for i in 0..d {
        for j in 0..d {
            lhs[(i, j)] = s[(i, d + j)];
            lhs[(d + i, j)] = s[(d + i, d + j)] + if i == j { 1.0 } else { 0.0 };
            rhs[(i, j)] = -(s[(i, j)] + if i == j { 1.0 } else { 0.0 });
            rhs[(d + i, j)] = -s[(d + i, j)];
        }
    }
    let not_a_graph = || {
        SolverError::NotHyperbolic(
            "the stable subspace cannot be written as p = p* - ηP(θ - θ*) \
             (some parameter directions are neither controllable nor stable)"
                .into(),
        )
    };
    let y = if n >= BLOCKED_MIN_ORDER {
        // Column-pivoted QR: a rank test (the smallest |Rₖₖ| bounds the smallest singular
        // value from above; the residual test below backs it up) and a least-squares solver
        // for the consistent system.
        let qr = to_faer(&lhs).col_piv_qr();
        let r = qr.thin_R();
        // `f64::min`/`max` skip NaN: non-finite diagonals are checked on their own.
        if (0..d).any(|i| !r[(i, i)].is_finite()) {
            return Err(non_finite());
        }
        let (rmax, rmin) = (0..d).fold((0.0_f64, f64::INFINITY), |(a, b), i| {
            (a.max(r[(i, i)].abs()), b.min(r[(i, i)].abs()))
        });
        if rmin <= 1e-12 * rmax.max(1.0) {
            return Err(not_a_graph());
        }
        let mut x = to_faer(&rhs);
        {
            use faer::linalg::solvers::SolveLstsq;
            qr.solve_lstsq_in_place(x.as_mut());
        }
        DMatrix::from_fn(d, d, |i, j| x[(i, j)])
    } else {
        let svd = lhs.svd(true, true);
        let sv = &svd.singular_values;
        if sv.min() <= 1e-12 * sv.max().max(1.0) {
            return Err(not_a_graph());
        }
        svd.solve(&rhs, 0.0)
            .map_err(|e| SolverError::NotHyperbolic(e.to_string()))?
    };
    let p_raw = -&y / eta;
    let norm = p_raw.norm().max(f64::MIN_POSITIVE);
    let asymmetry = (&p_raw - p_raw.transpose()).norm() / norm;
    let riccati = (&p_raw + p_raw.transpose()) * 0.5;
    let y = -&riccati * eta;
    let z11 = z.view((0, 0), (d, d));
    let z12 = z.view((0, d), (d, d));
    let closed_loop = z11 + z12 * &y;
    // Invariance: Z [I; Y] = [I; Y] K.
    let mut v = DMatrix::zeros(n, d);
    v.view_mut((0, 0), (d, d)).fill_with_identity();
    v.view_mut((d, 0), (d, d)).copy_from(&y);
    let residual = (z * &v - &v * &closed_loop).norm() / z.norm().max(f64::MIN_POSITIVE);
    // The QR test above can pass where the SVD's would refuse (|R_dd| only bounds the
    // smallest singular value from above); an ill-determined subspace then shows as a
    // residual far above rounding (healthy problems: 1e-15 to 1e-13).
    if n >= BLOCKED_MIN_ORDER && (residual.is_nan() || residual > 1e-8) {
        return Err(SolverError::NotHyperbolic(format!(
            "the stable subspace is ill-determined (invariance residual {residual:.1e}): some \
             parameter directions are nearly neither controllable nor stable"
        )));
    }
    Ok(StableSubspace {
        riccati,
        closed_loop,
        residual,
        asymmetry,
    })
}

/// `sign(a)` by the scaled Newton iteration `X ← (cX + (cX)⁻¹)/2`, `c = |det X|^{-1/n}`.
pub fn matrix_sign(a: &DMatrix<f64>) -> Result<DMatrix<f64>, SolverError> {
    let n = a.nrows();
    if n >= BLOCKED_MIN_ORDER {
        return matrix_sign_blocked(a);
    }
    let mut x = a.clone();
    for iter in 0..100 {
        let lu = x.clone().lu();
        let inv = lu.try_inverse().ok_or_else(marginal)?;
        let det = x.clone().lu().determinant().abs();
        let c = if iter < 20 && det.is_finite() && det > 0.0 {
            det.powf(-1.0 / n as f64)
        } else {
            1.0
        };
        let next = (&x * c + inv / c) * 0.5;
        let change = (&next - &x).norm() / next.norm();
        x = next;
        if !change.is_finite() {
            break;
        }
        if change < 1e-14 {
            return Ok(x);
        }
    }
    Err(not_converged())
}

fn marginal() -> SolverError {
    SolverError::NotHyperbolic(
        "an eigenvalue of the linearisation has real part γ/2 (a marginal direction)".into(),
    )
}

fn non_finite() -> SolverError {
    SolverError::NotHyperbolic(
        "the linearisation at the equilibrium produced non-finite values in the Riccati solve"
            .into(),
    )
}

fn not_converged() -> SolverError {
    SolverError::NotHyperbolic(
        "the sign iteration did not converge: an eigenvalue of the linearisation has real part \
         (nearly) γ/2"
            .into(),
    )
}

/// [`matrix_sign`] with faer's blocked LU: one factorisation per iteration gives both the
/// inverse and the scaling, `|det X|^{-1/n}` from the mean logarithm of the pivots (the
/// determinant itself over- or underflows at these orders).
fn matrix_sign_blocked(a: &DMatrix<f64>) -> Result<DMatrix<f64>, SolverError> {
    use faer::linalg::solvers::DenseSolveCore;
    let n = a.nrows();
    let mut x = to_faer(a);
    for iter in 0..100 {
        let lu = x.partial_piv_lu();
        let u = lu.U();
        let mut log_det = 0.0;
        for i in 0..n {
            let pivot = u[(i, i)].abs();
            if !pivot.is_finite() {
                return Err(non_finite());
            }
            if pivot == 0.0 {
                return Err(marginal());
            }
            log_det += pivot.ln();
        }
        let inv = lu.inverse();
        let c = if iter < 20 && log_det.is_finite() {
            (-log_det / n as f64).exp()
        } else {
            1.0
        };
        let (mut change, mut size) = (0.0, 0.0);
        let next = faer::Mat::<f64>::from_fn(n, n, |i, j| {
            let v = 0.5 * (c * x[(i, j)] + inv[(i, j)] / c);
            change += (v - x[(i, j)]).powi(2);
            size += v * v;
            v
        });
        let change = (change / size).sqrt();
        x = next;
        if !change.is_finite() {
            break;
        }
        if change < 1e-14 {
            return Ok(DMatrix::from_fn(n, n, |i, j| x[(i, j)]));
        }
    }
    Err(not_converged())
}

fn to_faer(m: &DMatrix<f64>) -> faer::Mat<f64> {
    faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Diagonal quadratic, G = I, f = 0: P = diag(r_i)/η with r = sqrt(γ²/4 + ηkh) - γ/2.
    #[test]
    fn diagonal_quadratic_matches_closed_form() {
        let (eta, k, gamma) = (0.7, 1.3, 2.0);
        let h = [1.0, 4.0, 0.25];
        let d = h.len();
        let mut z = DMatrix::zeros(2 * d, 2 * d);
        for i in 0..d {
            z[(i, d + i)] = 1.0;
            z[(d + i, i)] = eta * k * h[i];
            z[(d + i, d + i)] = gamma;
        }
        let s = stable_subspace(&z, gamma, eta).unwrap();
        for (i, hi) in h.iter().enumerate() {
            let r = (gamma * gamma / 4.0 + eta * k * hi).sqrt() - gamma / 2.0;
            // Closed form vs Newton iteration converged to 1e-14: agreement to 1e-12.
            assert!((s.riccati[(i, i)] - r / eta).abs() < 1e-12);
            assert!((s.closed_loop[(i, i)] + r).abs() < 1e-12);
        }
        assert!(s.residual < 1e-13);
    }

    /// The blocked path (order ≥ 128) against the same closed form, on a dense symmetric
    /// problem: `H = Q diag(h) Qᵀ` gives `P = Q diag(r_i/η) Qᵀ`.
    #[test]
    fn blocked_path_matches_closed_form() {
        let (eta, k, gamma, d) = (0.7, 1.3, 0.5, 80);
        let mut rnd = {
            let mut s = 7u64;
            move || {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            }
        };
        let q = DMatrix::from_fn(d, d, |_, _| rnd()).qr().q();
        let h: Vec<f64> = (0..d).map(|i| 0.2 + 0.1 * i as f64).collect();
        let hess =
            &q * DMatrix::from_fn(d, d, |i, j| if i == j { h[i] } else { 0.0 }) * q.transpose();
        let mut z = DMatrix::zeros(2 * d, 2 * d);
        for i in 0..d {
            z[(i, d + i)] = 1.0;
            z[(d + i, d + i)] = gamma;
            for j in 0..d {
                z[(d + i, j)] = eta * k * hess[(i, j)];
            }
        }
        let s = stable_subspace(&z, gamma, eta).unwrap();
        let r: Vec<f64> = h
            .iter()
            .map(|hi| ((gamma * gamma / 4.0 + eta * k * hi).sqrt() - gamma / 2.0) / eta)
            .collect();
        let exact =
            &q * DMatrix::from_fn(d, d, |i, j| if i == j { r[i] } else { 0.0 }) * q.transpose();
        // Sign iteration converged to 1e-14 relative; ‖P‖ ≈ 3 and the condition of the
        // subspace problem is modest (eigenvalues 0.2 … 8.1): 1e-11 entrywise.
        let err = (&s.riccati - &exact).abs().max();
        assert!(err < 1e-11, "{err:e}");
        assert!(s.residual < 1e-12, "{:e}", s.residual);
    }

    #[test]
    fn marginal_direction_is_an_error() {
        // γ = 0 and a flat direction: eigenvalues 0, 0.
        let mut z = DMatrix::zeros(2, 2);
        z[(0, 1)] = 1.0;
        assert!(matches!(
            stable_subspace(&z, 0.0, 1.0),
            Err(SolverError::NotHyperbolic(_))
        ));
    }
}
