//! Diagonal quadratics: `L = ½ Σ hᵢ(θᵢ-μᵢ)²`, `G = diag(g)`, no drift (docs/theory.md §4).
//!
//! Each direction decouples. The Riccati equation for direction `i` is the scalar quadratic
//! `-γ Pᵢ - η Pᵢ²/gᵢ + k hᵢ = 0`, whose stabilising root gives the rate
//!
//! ```text
//! rᵢ = sqrt(γ²/4 + ηk hᵢ/gᵢ) - γ/2,     θᵢ(t) = μᵢ + (θ0ᵢ - μᵢ) e^{-rᵢ t},
//! pᵢ(t) = -gᵢ rᵢ (θᵢ(t) - μᵢ),          J* = Σ gᵢ rᵢ (θ0ᵢ - μᵢ)² / (2η).
//! ```

/// The optimal rate `r = sqrt(γ²/4 + ηkh/g) - γ/2` of one direction, computed in a form that
/// stays accurate when `γ² ≫ ηkh/g` (where the difference would cancel).
pub fn rate(h: f64, g: f64, eta: f64, k: f64, gamma: f64) -> f64 {
    let c = eta * k * h / g;
    let s = (gamma * gamma / 4.0 + c).sqrt();
    if gamma > 0.0 && c > 0.0 {
        c / (s + gamma / 2.0)
    } else {
        s - gamma / 2.0
    }
}

/// The gradient-flow (γ → ∞) limit of the rate: `ηkh/(gγ)`.
pub fn gradient_flow_rate(h: f64, g: f64, eta: f64, k: f64, gamma: f64) -> f64 {
    eta * k * h / (g * gamma)
}

/// The ballistic (γ = 0) rate `sqrt(ηkh/g)`.
pub fn ballistic_rate(h: f64, g: f64, eta: f64, k: f64) -> f64 {
    (eta * k * h / g).sqrt()
}

/// Ratio of the rates of two directions with curvatures `h·ratio` and `h` (Figure 2d): 4 for
/// `γ → ∞` at ratio 4, 2 for `γ = 0`.
pub fn rate_ratio(ratio: f64, h: f64, g: f64, eta: f64, k: f64, gamma: f64) -> f64 {
    rate(h * ratio, g, eta, k, gamma) / rate(h, g, eta, k, gamma)
}

/// The optimal trajectory of a diagonal quadratic problem.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagonalRule {
    /// Per-direction rates `rᵢ`.
    pub rates: Vec<f64>,
    /// Metric diagonal `gᵢ`.
    pub g: Vec<f64>,
    /// Curvatures `hᵢ`.
    pub h: Vec<f64>,
    /// The minimum `μ`.
    pub mu: Vec<f64>,
    /// The start `θ0`.
    pub theta0: Vec<f64>,
    /// η.
    pub eta: f64,
}

impl DiagonalRule {
    /// The rule for curvatures `h`, metric diagonal `g`, minimum `mu`, start `theta0`.
    pub fn new(
        h: &[f64],
        g: &[f64],
        mu: &[f64],
        theta0: &[f64],
        eta: f64,
        k: f64,
        gamma: f64,
    ) -> Self {
        Self {
            rates: h
                .iter()
                .zip(g)
                .map(|(&h, &g)| rate(h, g, eta, k, gamma))
                .collect(),
            g: g.to_vec(),
            h: h.to_vec(),
            mu: mu.to_vec(),
            theta0: theta0.to_vec(),
            eta,
        }
    }

    /// `θ(t)`.
    pub fn theta(&self, t: f64) -> Vec<f64> {
        (0..self.rates.len())
            .map(|i| self.mu[i] + (self.theta0[i] - self.mu[i]) * (-self.rates[i] * t).exp())
            .collect()
    }

    /// `p(t) = G θ̇(t)`.
    pub fn p(&self, t: f64) -> Vec<f64> {
        let th = self.theta(t);
        (0..self.rates.len())
            .map(|i| -self.g[i] * self.rates[i] * (th[i] - self.mu[i]))
            .collect()
    }

    /// `J*` from `θ0`.
    pub fn cost(&self) -> f64 {
        (0..self.rates.len())
            .map(|i| {
                self.g[i] * self.rates[i] * (self.theta0[i] - self.mu[i]).powi(2) / (2.0 * self.eta)
            })
            .sum()
    }

    /// The rule as a policy on the gradient: `θ̇ᵢ = -(rᵢ/hᵢ) ∂ᵢL` (a Newton step taken at the
    /// optimal rate); returns the coefficients `rᵢ/hᵢ`.
    pub fn gradient_gains(&self) -> Vec<f64> {
        self.rates.iter().zip(&self.h).map(|(r, h)| r / h).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_rate_formula_matches_naive_where_both_are_accurate() {
        for (h, g, eta, k, gamma) in [
            (1.0f64, 1.0f64, 1.0f64, 1.0f64, 0.5f64),
            (4.0, 2.0, 0.3, 2.0, 3.0),
        ] {
            let naive = (gamma * gamma / 4.0 + eta * k * h / g).sqrt() - gamma / 2.0;
            assert!((rate(h, g, eta, k, gamma) - naive).abs() < 1e-15);
        }
        // Large γ: the stable form keeps full relative accuracy.
        let r = rate(1.0, 1.0, 1.0, 1.0, 1e8);
        assert!((r / 1e-8 - 1.0).abs() < 1e-15);
    }
}
