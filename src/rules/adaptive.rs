//! Adam-like rules from beliefs about the landscape (docs/theory.md §5.2–5.3), as closed forms and as
//! optimisers anyone's training loop can call.
//!
//! - [`steady_state_gain`]: the discrete-time Kalman filter of a gradient with an AR(1) prior,
//!   `g_{n+1} = φg_n + w`, observed with noise `r`: its steady state is the first-moment
//!   update `m_n = β1 m_{n−1} + K ĝ_n` with `β1 = φ(1 − K)` (Adam's `1 − β1` on the new gradient
//!   only for a random walk, φ = 1).
//! - [`normalised_rate`]: the optimal rate of the linear–quadratic rule per unit curvature,
//!   `r(h)/h = √(ηk)/(√(h + ε²) + ε)` with `ε = γ/(2√(ηk))`: RMSprop/Adam's square-root
//!   normalisation as γ → 0, SGD with rate ηk/γ for large γ (the discount plays Adam's ε).
//! - [`window_step`]: holding a local quadratic model for a time Δt, the optimal displacement
//!   `Δθ = −(1 − e^{−r(h)Δt}) m/h`: Newton's step as Δt → ∞, `−Δt·r(h)/h·m` as Δt → 0.
//! - [`DerivedOptimizer`]: the curvature-normalised rule with a running second moment as the
//!   curvature estimate (the paper's "Ballistic" rule at γ = 0) and an optional filtered first
//!   moment, stepping parameters in place with no allocation per step.

/// The steady state of the gradient filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SteadyGain {
    /// The predicted variance `P⁻`, fixed point of `P⁻ = φ²P⁻r/(P⁻ + r) + q`.
    pub predicted_variance: f64,
    /// The gain `K = P⁻/(P⁻ + r)` on a new gradient.
    pub gain: f64,
    /// The decay `β1 = φ(1 − K)` of the first moment.
    pub beta1: f64,
}

/// The steady-state Kalman gain of a gradient with prior `g_{n+1} = φg_n + w`, `w ~ N(0, q)`,
/// observed as `ĝ_n = g_n + ε`, `ε ~ N(0, r)` (`q, r > 0`, `|φ| ≤ 1`): the positive root of
/// `P² + P(r(1 − φ²) − q) − qr = 0`.
///
/// ```
/// use lossnav::rules::adaptive::steady_state_gain;
/// // A random walk: P⁻ = (q + √(q² + 4qr))/2 and β1 = 1 − K.
/// let s = steady_state_gain(1.0, 0.01, 1.0);
/// assert!((s.predicted_variance - (0.01 + (0.0001f64 + 0.04).sqrt()) / 2.0).abs() < 1e-15);
/// assert!((s.beta1 - (1.0 - s.gain)).abs() < 1e-15);
/// ```
pub fn steady_state_gain(phi: f64, q: f64, r: f64) -> SteadyGain {
    let b = r * (1.0 - phi * phi) - q;
    // Written to avoid cancellation when b > 0: P = 2qr/(b + √(b² + 4qr)).
    let disc = (b * b + 4.0 * q * r).sqrt();
    let p = if b > 0.0 {
        2.0 * q * r / (b + disc)
    } else {
        (disc - b) / 2.0
    };
    let gain = p / (p + r);
    SteadyGain {
        predicted_variance: p,
        gain,
        beta1: phi * (1.0 - gain),
    }
}

/// `ε = γ/(2√(ηk))`: the discount in the units of a curvature's square root.
pub fn epsilon(eta: f64, k: f64, gamma: f64) -> f64 {
    gamma / (2.0 * (eta * k).sqrt())
}

/// The optimal rate per unit curvature, `r(h)/h = √(ηk)/(√(h + ε²) + ε)`, for `h > 0`: the
/// factor of the gradient in `θ̇ = −(r/h)·∇L` (the §4 rate `r = √(γ²/4 + ηkh) − γ/2`, written
/// without cancellation).
pub fn normalised_rate(eta: f64, k: f64, gamma: f64, h: f64) -> f64 {
    let eps = epsilon(eta, k, gamma);
    (eta * k).sqrt() / ((h + eps * eps).sqrt() + eps)
}

/// The optimal displacement over a window `Δt` for a local model with curvature `h > 0` and
/// gradient `m`: `−(1 − e^{−r(h)Δt}) m/h`.
pub fn window_step(eta: f64, k: f64, gamma: f64, h: f64, m: f64, dt: f64) -> f64 {
    let r = normalised_rate(eta, k, gamma, h) * h;
    -(-(-r * dt).exp_m1()) * m / h
}

/// The derived optimiser: `s ← β2 s + (1 − β2) g²` (a running estimate of the curvature from
/// squared gradients, the empirical Fisher), optionally `m ← β1 m + (1 − β1) g`, and
///
/// ```text
/// θ ← θ − lr · √(ηk) · m / (√(s + ε²) + ε),   ε = γ/(2√(ηk))
/// ```
///
/// which is the curvature-normalised rule of [`normalised_rate`] with the curvature estimate
/// `ĥ = s`: the mean squared gradient, the empirical Fisher, which estimates the curvature of a
/// likelihood loss (docs/theory.md §5.3). With γ = 0, no first moment and `ηk = 1` it is the
/// paper's "Ballistic" step `θ ← θ − lr·g/√s`; with large γ it tends to SGD with rate
/// `lr·ηk/γ`.
///
/// ```
/// use lossnav::rules::adaptive::DerivedOptimizer;
/// // Fit y = 2x + 1 by least squares on five points.
/// let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
/// let mut params = [0.0f64, 0.0];
/// let mut opt = DerivedOptimizer::new(2, 0.05).with_beta1(0.9);
/// for _ in 0..3000 {
///     let mut grads = [0.0, 0.0];
///     for &x in &xs {
///         let e = params[0] * x + params[1] - (2.0 * x + 1.0);
///         grads[0] += e * x / 5.0;
///         grads[1] += e / 5.0;
///     }
///     opt.step(&mut params, &grads);
/// }
/// assert!((params[0] - 2.0).abs() < 1e-2 && (params[1] - 1.0).abs() < 1e-2);
/// ```
#[derive(Debug, Clone)]
pub struct DerivedOptimizer {
    /// Step size (the time step of the discretised rule).
    pub lr: f64,
    /// `ηk` of the objective.
    pub eta_k: f64,
    /// `γ`, the discount.
    pub gamma: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Decay of the first moment (`None`: the raw gradient, as in the paper's Ballistic rule).
    pub beta1: Option<f64>,
    /// Added under the square root (default 0).
    pub floor: f64,
    s: Vec<f64>,
    m: Vec<f64>,
}

impl DerivedOptimizer {
    /// For `n` parameters: `ηk = 1`, `γ = 0`, `β2 = 0.999`, no first moment.
    pub fn new(n: usize, lr: f64) -> Self {
        Self {
            lr,
            eta_k: 1.0,
            gamma: 0.0,
            beta2: 0.999,
            beta1: None,
            floor: 0.0,
            s: vec![0.0; n],
            m: vec![0.0; n],
        }
    }

    /// Sets `ηk` and `γ` (so `ε = γ/(2√(ηk))`).
    pub fn with_objective(mut self, eta_k: f64, gamma: f64) -> Self {
        self.eta_k = eta_k;
        self.gamma = gamma;
        self
    }

    /// Filters the gradient with decay `β1` (for instance from [`steady_state_gain`]).
    pub fn with_beta1(mut self, beta1: f64) -> Self {
        self.beta1 = Some(beta1);
        self
    }

    /// Sets `β2`.
    pub fn with_beta2(mut self, beta2: f64) -> Self {
        self.beta2 = beta2;
        self
    }

    /// Adds `δ` under the square root, `√(s + ε² + δ)`: the numerical floor of RMSprop and of
    /// the paper's Ballistic step (`1e-8` there), which only matters where `s` is tiny.
    pub fn with_floor(mut self, floor: f64) -> Self {
        self.floor = floor;
        self
    }

    /// The number of parameters the optimiser holds state for.
    pub fn len(&self) -> usize {
        self.s.len()
    }

    /// Whether it holds state for no parameter.
    pub fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    /// One step: `params` and `grads` have the optimiser's length. Works on `f32` and `f64`
    /// parameters alike; the moments are kept in `f64`.
    ///
    /// # Panics
    /// If the lengths differ from the optimiser's.
    pub fn step<T: Scalar>(&mut self, params: &mut [T], grads: &[T]) {
        self.step_scaled(params, grads, 1.0);
    }

    /// [`DerivedOptimizer::step`] on the gradient `scale·grads` (gradient clipping without a
    /// copy of the gradient).
    ///
    /// # Panics
    /// If the lengths differ from the optimiser's.
    pub fn step_scaled<T: Scalar>(&mut self, params: &mut [T], grads: &[T], scale: f64) {
        assert!(
            params.len() == self.s.len() && grads.len() == self.s.len(),
            "the optimiser holds state for {} parameters",
            self.s.len()
        );
        let root = self.eta_k.sqrt();
        let eps = self.gamma / (2.0 * root);
        let eps2 = eps * eps + self.floor;
        let (b2, c2) = (self.beta2, 1.0 - self.beta2);
        let rate = self.lr * root;
        match self.beta1 {
            None => {
                for ((p, &g), s) in params.iter_mut().zip(grads).zip(self.s.iter_mut()) {
                    let g = scale * g.to_f64();
                    *s = b2 * *s + c2 * g * g;
                    let step = rate * g / ((*s + eps2).sqrt() + eps + f64::MIN_POSITIVE);
                    *p = T::from_f64(p.to_f64() - step);
                }
            }
            Some(b1) => {
                let c1 = 1.0 - b1;
                for (((p, &g), s), m) in params
                    .iter_mut()
                    .zip(grads)
                    .zip(self.s.iter_mut())
                    .zip(self.m.iter_mut())
                {
                    let g = scale * g.to_f64();
                    *s = b2 * *s + c2 * g * g;
                    *m = b1 * *m + c1 * g;
                    let step = rate * *m / ((*s + eps2).sqrt() + eps + f64::MIN_POSITIVE);
                    *p = T::from_f64(p.to_f64() - step);
                }
            }
        }
    }
}

/// A floating-point parameter type an optimiser can step: `f32` (deep-learning models) or
/// `f64`.
pub trait Scalar: Copy + sealed::Sealed {
    /// Widens to `f64`.
    fn to_f64(self) -> f64;
    /// Rounds from `f64`.
    fn from_f64(x: f64) -> Self;
}

impl Scalar for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x
    }
}

impl Scalar for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}
