//! Closed forms for the drift cases of Figure 3, isotropic loss `L = (h/2)|θ-μ|²`, `G = I`,
//! any `γ ≥ 0` (derivations in `docs/claims.md`).

use nalgebra::{Matrix2, Vector2};

/// Rotation drift `f = qJθ`, `J = [[0, -1], [1, 0]]`.
///
/// The Riccati solution stays isotropic, `P = (r/η) I` with the undriven rate
/// `r = sqrt(γ²/4 + ηkh) - γ/2`; the policy is `θ̇ = (qJ - rI)(θ - θ*)`: a spiral with decay
/// rate `r` and angular frequency `q`. The end point is shrunk and, for `γ > 0`, rotated:
/// `θ* = ηkh (cI + γqJ) μ / (c² + γ²q²)`, `c = ηkh + q²`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation {
    /// Decay rate `r`.
    pub rate: f64,
    /// Angular frequency `q`.
    pub frequency: f64,
    /// `θ*`.
    pub equilibrium: Vector2<f64>,
    /// `p* = -qJθ*`.
    pub p_equilibrium: Vector2<f64>,
}

/// `J`, the rotation generator.
pub fn rotation_generator() -> Matrix2<f64> {
    Matrix2::new(0.0, -1.0, 1.0, 0.0)
}

impl Rotation {
    /// The closed form for rotation rate `q`, curvature `h`, minimum `mu`.
    pub fn new(q: f64, h: f64, mu: Vector2<f64>, eta: f64, k: f64, gamma: f64) -> Self {
        let j = rotation_generator();
        let ekh = eta * k * h;
        let c = ekh + q * q;
        let theta = (Matrix2::identity() * c + j * (gamma * q))
            * mu
            * (ekh / (c * c + gamma * gamma * q * q));
        Self {
            rate: super::diagonal::rate(h, 1.0, eta, k, gamma),
            frequency: q,
            equilibrium: theta,
            p_equilibrium: -(j * theta) * q,
        }
    }
}

/// Weight-decay drift `f = -jθ`.
///
/// `P = p I` with `ηp² + (2j + γ)p - kh = 0`; the policy `θ̇ = -ρ(θ - θ*)` has rate
/// `ρ = sqrt((j + γ/2)² + ηkh) - γ/2` (faster than without decay), and the end point is
/// shrunk toward the origin: `θ* = ηkh μ / (ηkh + j(j + γ))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightDecay {
    /// Decay rate `ρ` of the closed loop.
    pub rate: f64,
    /// Riccati scalar `p`.
    pub riccati: f64,
    /// `θ*`.
    pub equilibrium: Vector2<f64>,
    /// `p* = jθ*`.
    pub p_equilibrium: Vector2<f64>,
}

impl WeightDecay {
    /// The closed form for decay rate `j`, curvature `h`, minimum `mu`.
    pub fn new(j: f64, h: f64, mu: Vector2<f64>, eta: f64, k: f64, gamma: f64) -> Self {
        let ekh = eta * k * h;
        let s = j + gamma / 2.0;
        let riccati = ((s * s + ekh).sqrt() - s) / eta;
        let theta = mu * (ekh / (ekh + j * (j + gamma)));
        Self {
            rate: (s * s + ekh).sqrt() - gamma / 2.0,
            riccati,
            equilibrium: theta,
            p_equilibrium: theta * j,
        }
    }
}
