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
    let svd = lhs.svd(true, true);
    let sv = &svd.singular_values;
    if sv.min() <= 1e-12 * sv.max().max(1.0) {
        return Err(SolverError::NotHyperbolic(
            "the stable subspace cannot be written as p = p* - ηP(θ - θ*) \
             (some parameter directions are neither controllable nor stable)"
                .into(),
        ));
    }
    let y = svd
        .solve(&rhs, 0.0)
        .map_err(|e| SolverError::NotHyperbolic(e.to_string()))?;
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
    let mut x = a.clone();
    for iter in 0..100 {
        let lu = x.clone().lu();
        let inv = lu.try_inverse().ok_or_else(|| {
            SolverError::NotHyperbolic(
                "an eigenvalue of the linearisation has real part γ/2 (a marginal direction)"
                    .into(),
            )
        })?;
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
    Err(SolverError::NotHyperbolic(
        "the sign iteration did not converge: an eigenvalue of the linearisation has real part \
         (nearly) γ/2"
            .into(),
    ))
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
