//! Closed forms for large quadratics through matrix functions: `δᵀ F(H) δ` by Lanczos
//! quadrature, with `H` available only through Hessian–vector products.
//!
//! For `L = ½(θ-μ)ᵀH(θ-μ)`, `G = I`, no drift, every eigen-direction of `H` is an independent
//! scalar problem, so costs are `δᵀF(H)δ` for a scalar function `F` of the curvature. Lanczos
//! with full reorthogonalisation builds the tridiagonal `T_m` of the Krylov space of `δ`; then
//! `δᵀF(H)δ ≈ |δ|² e₁ᵀF(T_m)e₁`, exact for polynomials of degree `2m-1` and converging
//! geometrically for the smooth `F` used here. Memory `O(m·D)`.

use nalgebra::{DMatrix, DVector};

/// `δᵀ F(H) δ` with `m` Lanczos steps; `apply` computes `H v`.
pub fn quadratic_form(
    apply: &dyn Fn(&[f64], &mut [f64]),
    delta: &[f64],
    m: usize,
    f: &dyn Fn(f64) -> f64,
) -> f64 {
    let d = delta.len();
    let norm = delta.iter().map(|v| v * v).sum::<f64>().sqrt();
    if norm == 0.0 {
        return 0.0;
    }
    let mut basis: Vec<Vec<f64>> = vec![delta.iter().map(|v| v / norm).collect()];
    let (mut alpha, mut beta) = (Vec::new(), Vec::new());
    let mut w = vec![0.0; d];
    for j in 0..m.min(d) {
        apply(&basis[j], &mut w);
        let a: f64 = w.iter().zip(&basis[j]).map(|(x, y)| x * y).sum();
        alpha.push(a);
        // Full reorthogonalisation (twice is enough) keeps T_m exact in floating point.
        for _ in 0..2 {
            for q in &basis {
                let c: f64 = w.iter().zip(q).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(q).for_each(|(x, y)| *x -= c * y);
            }
        }
        let b = w.iter().map(|v| v * v).sum::<f64>().sqrt();
        if b < 1e-13 * a.abs().max(1.0) || j + 1 == m.min(d) {
            break;
        }
        beta.push(b);
        basis.push(w.iter().map(|v| v / b).collect());
    }
    let k = alpha.len();
    let t = DMatrix::from_fn(k, k, |i, j| {
        if i == j {
            alpha[i]
        } else if i == j + 1 {
            beta[j]
        } else if j == i + 1 {
            beta[i]
        } else {
            0.0
        }
    });
    let eig = t.symmetric_eigen();
    let e1: DVector<f64> = eig.eigenvectors.row(0).transpose();
    norm * norm
        * (0..k)
            .map(|i| e1[i] * e1[i] * f(eig.eigenvalues[i]))
            .sum::<f64>()
}

/// Per unit `δ²`, the optimal cost of the scalar problem `min ∫₀ᵀ e^{-γt}(½ẋ²/η + ½k h x²)dt`
/// with `x(0) = δ`, `x(T) = 0`: `F(h) = -(λ₂ - λ₁e^{-2sT}) / (2η(1 - e^{-2sT}))`,
/// `λ₁,₂ = γ/2 ± s`, `s = sqrt(γ²/4 + ηkh)`. Tends to `r/(2η)` as `T → ∞`.
pub fn fixed_end_cost(h: f64, eta: f64, k: f64, gamma: f64, t_end: f64) -> f64 {
    let s = (gamma * gamma / 4.0 + eta * k * h).sqrt();
    let (l1, l2) = (gamma / 2.0 + s, gamma / 2.0 - s);
    let e = (-2.0 * s * t_end).exp();
    -(l2 - l1 * e) / (2.0 * eta * (1.0 - e))
}
