//! Limits and special forms of the optimal rule (docs/theory.md §1, §4).

use nalgebra::{DMatrix, DVector};

/// The single-step rule: the minimiser of `(1/2η)‖Δθ‖²_G + k L_quad(θ+Δθ)` for the quadratic
/// model `L_quad` with gradient `g` and Hessian `H`: `Δθ = -(G/(ηk) + H)⁻¹ g`.
/// `None` when `G/(ηk) + H` is singular.
pub fn single_step(
    g_metric: &DMatrix<f64>,
    hessian: &DMatrix<f64>,
    grad: &DVector<f64>,
    eta: f64,
    k: f64,
) -> Option<DVector<f64>> {
    let a = g_metric / (eta * k) + hessian;
    a.lu().solve(&(-grad))
}

/// The gradient-descent limit (`ηk → 0` of the single step, or linearised loss):
/// `Δθ = -ηk G⁻¹ g`.
pub fn gradient_step(
    g_metric: &DMatrix<f64>,
    grad: &DVector<f64>,
    eta: f64,
    k: f64,
) -> Option<DVector<f64>> {
    g_metric.clone().lu().solve(&(-grad * (eta * k)))
}

/// The Newton limit (`ηk → ∞`): `Δθ = -H⁻¹ g`.
pub fn newton_step(hessian: &DMatrix<f64>, grad: &DVector<f64>) -> Option<DVector<f64>> {
    hessian.clone().lu().solve(&(-grad))
}

/// The curvature-normalised form of the ballistic rule (`γ = 0`, `G = I`):
/// `θ̇ = -sqrt(ηk) H^{-1/2} g` for symmetric positive definite `H`.
pub fn ballistic_velocity(
    hessian: &DMatrix<f64>,
    grad: &DVector<f64>,
    eta: f64,
    k: f64,
) -> DVector<f64> {
    let eig = hessian.clone().symmetric_eigen();
    let inv_sqrt = DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / l.sqrt()));
    let h_inv_sqrt = &eig.eigenvectors * inv_sqrt * eig.eigenvectors.transpose();
    -(h_inv_sqrt * grad) * (eta * k).sqrt()
}

/// The ballistic speed law (`γ = 0`, `f = 0`, infinite horizon): the kinetic term equals the
/// loss above the target, `(1/2η) pᵀMp = k (L(θ) - L(θ*))`. Returns the right-hand side.
pub fn ballistic_kinetic(loss: f64, loss_at_target: f64, k: f64) -> f64 {
    k * (loss - loss_at_target)
}
