//! Partial observability, the linear–quadratic–Gaussian case (docs/theory.md §5.1): the learner does
//! not know the minimum `μ ~ N(m0, S0)` of `L = ½(θ−μ)ᵀH(θ−μ)` and sees gradients through
//! noise, `dy = H(θ − μ)dt + R^{1/2}dW`.
//!
//! The Kalman–Bucy filter has covariance `Σ_t = S0(I + HR⁻¹H S0 t)⁻¹` (`(S0⁻¹ + HR⁻¹Ht)⁻¹` when
//! `S0` is invertible) and mean `dμ̂ = −Σ_t HR⁻¹(dy − H(θ − μ̂)dt)`. What is learned about μ does
//! not depend on the path, so certainty equivalence holds: the optimal rule is
//! `θ̇ = −K(θ − μ̂)`, `K = ηG⁻¹P` with P from §4. With `e = θ − μ̂`,
//! `C_t = E[eeᵀ]` solves `dC/dt = −KC − CKᵀ + Σ_t HR⁻¹H Σ_t`, `C_0 = (θ0−m0)(θ0−m0)ᵀ`, and
//!
//! ```text
//! E[J*] = ∫_0^∞ e^{-γt} [ ½ tr((ηPG⁻¹P + kH) C_t) + (k/2) tr(H Σ_t) ] dt
//! ```
//!
//! (finite for γ > 0; with γ = 0 the last term grows like log t). This module computes it by
//! classical Runge–Kutta with step halving for an error estimate, for the optimal gain and for a
//! scaled one (`θ̇ = −sK(θ − μ̂)`, whose `C` solves the same equation with `sK`), and checks it by
//! a Monte Carlo of the observed system itself.

use nalgebra::{Cholesky, DMatrix, DVector};
use rayon::prelude::*;

use lossnav_problems::{Horizon, Spec};

use super::lq::{LqData, LqRule, RuleError, MAX_GAIN_TABLE_BYTES};
use super::random::PathStream;

/// The most RK4 steps one refinement of the expected cost may take (about 10 s at D = 2).
pub const MAX_EXPECTED_COST_STEPS: f64 = 2e6;

/// A linear–quadratic–Gaussian learning problem with its optimal (certainty-equivalent) rule.
#[derive(Debug, Clone)]
pub struct ObservedLq {
    h: DMatrix<f64>,
    g: DMatrix<f64>,
    eta: f64,
    k: f64,
    gamma: f64,
    /// Prior mean `m0` of the minimum (the spec's `minimum`).
    pub prior_mean: DVector<f64>,
    /// Prior covariance `S0`.
    pub prior_cov: DMatrix<f64>,
    /// Gradient-noise covariance rate `R`.
    pub noise: DMatrix<f64>,
    theta0: DVector<f64>,
    /// `P`.
    pub riccati: DMatrix<f64>,
    /// `K = ηG⁻¹P`.
    pub gain: DMatrix<f64>,
    /// `HR⁻¹H`.
    information: DMatrix<f64>,
    /// `HR⁻¹`.
    h_rinv: DMatrix<f64>,
}

/// A Monte Carlo estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The sample mean.
    pub mean: f64,
    /// Its standard error.
    pub stderr: f64,
    /// Paths.
    pub paths: usize,
}

impl ObservedLq {
    /// From a spec with an `observation` block (quadratic loss, constant metric, no drift,
    /// infinite horizon, γ > 0).
    pub fn from_spec(spec: &Spec) -> Result<Self, RuleError> {
        let not = |s: &str| RuleError::NotLinearQuadratic(s.to_string());
        let obs = spec
            .observation
            .as_ref()
            .ok_or_else(|| not("the spec has no observation block"))?;
        let problem = spec.to_problem().map_err(|e| not(&e.to_string()))?;
        if problem.horizon() != Horizon::Infinite {
            return Err(not(
                "the partially observed closed form is for an infinite horizon",
            ));
        }
        let lag = problem.lagrangian();
        let q = lag
            .loss()
            .as_quadratic()
            .ok_or_else(|| not("an observation block needs a quadratic loss"))?;
        let m = lag
            .metric()
            .constant_mobility()
            .ok_or_else(|| not("an observation block needs a constant metric"))?;
        let g = m
            .clone()
            .try_inverse()
            .ok_or_else(|| not("an observation block needs an invertible metric"))?;
        let d = problem.dim();
        let square = |rows: &[Vec<f64>]| DMatrix::from_fn(d, d, |i, j| rows[i][j]);
        let noise = square(&obs.gradient_noise);
        let prior_cov = square(&obs.minimum_cov);
        let data = LqData {
            a: DMatrix::zeros(d, d),
            b: DVector::zeros(d),
            m: m.clone(),
            h: q.hessian.clone(),
            mu: q.minimum.clone(),
            eta: lag.eta(),
            k: lag.k(),
            gamma: lag.gamma(),
        };
        let lq = LqRule::new(&data, problem.theta0())?;
        let r_inv = noise
            .clone()
            .try_inverse()
            .ok_or_else(|| not("gradient_noise is singular"))?;
        let h_rinv = &q.hessian * &r_inv;
        let information = &h_rinv * &q.hessian;
        let observed = Self {
            gain: &m * &lq.riccati * lag.eta(),
            riccati: lq.riccati,
            h: q.hessian,
            g,
            eta: lag.eta(),
            k: lag.k(),
            gamma: lag.gamma(),
            prior_mean: q.minimum,
            prior_cov,
            noise,
            theta0: problem.theta0().clone(),
            information,
            h_rinv,
        };
        // The exact expected cost integrates 40/γ with steps of 0.02/(rates): bounded here,
        // before anything runs, rather than by the patience of whoever waits (γ = 1e-3 took
        // over a minute).
        observed.check_expected_cost(1.0)?;
        Ok(observed)
    }

    /// Steps of the expected cost's RK4 integration over `40/γ` for gain scale `gain_scale`
    /// at refinement `refine` ([`ObservedLq::expected_cost`] runs refinements 1 and 2).
    fn expected_cost_steps(&self, gain_scale: f64, refine: usize) -> f64 {
        let kg = &self.gain * gain_scale;
        let speed = kg.norm() + (&self.information * &self.prior_cov).norm() + self.gamma;
        let h = (0.02 / speed).min(0.01) / refine as f64;
        (40.0 / self.gamma / h).ceil()
    }

    /// Refuses an [`ObservedLq::expected_cost`] at gain scale `gain_scale` whose finer
    /// integration would take more than [`MAX_EXPECTED_COST_STEPS`] steps
    /// ([`RuleError::TooLong`]; NaN counts too): checked when the problem is read (`s = 1`),
    /// and by callers that ask for another gain scale, before anything runs.
    pub fn check_expected_cost(&self, gain_scale: f64) -> Result<(), RuleError> {
        let steps = self.expected_cost_steps(gain_scale, 2);
        if steps.is_finite() && steps <= MAX_EXPECTED_COST_STEPS {
            Ok(())
        } else {
            Err(RuleError::TooLong {
                what: "the exact expected cost's integration over 40/γ",
                steps,
                limit: MAX_EXPECTED_COST_STEPS,
            })
        }
    }

    /// The filter covariance `Σ_t = S0(I + HR⁻¹H S0 t)⁻¹`, symmetrised.
    pub fn filter_cov(&self, t: f64) -> DMatrix<f64> {
        let d = self.h.nrows();
        let a = DMatrix::identity(d, d) + &self.information * &self.prior_cov * t;
        let s = &self.prior_cov * a.try_inverse().unwrap_or_else(|| DMatrix::zeros(d, d));
        0.5 * (&s + s.transpose())
    }

    /// `E[J]` of the rule `θ̇ = −sK(θ − μ̂)` with the optimal filter (`s = 1`: the optimum
    /// `E[J*]`), and an estimate of its quadrature error (the change under step halving).
    pub fn expected_cost(&self, gain_scale: f64) -> (f64, f64) {
        let coarse = self.expected_cost_rk4(gain_scale, 1);
        let fine = self.expected_cost_rk4(gain_scale, 2);
        // RK4: the error of the fine value is about (fine − coarse)/15.
        (fine, (fine - coarse).abs() / 15.0)
    }

    fn expected_cost_rk4(&self, gain_scale: f64, refine: usize) -> f64 {
        let kg = &self.gain * gain_scale;
        // Running cost weight of C: (sK)ᵀG(sK)/η + kH; of Σ: k H.
        let w = kg.transpose() * &self.g * &kg / self.eta + &self.h * self.k;
        let t_end = 40.0 / self.gamma;
        let steps = self.expected_cost_steps(gain_scale, refine) as usize;
        let h = t_end / steps as f64;
        let e0 = &self.theta0 - &self.prior_mean;
        let mut c = &e0 * e0.transpose();
        let forcing = |t: f64| {
            let s = self.filter_cov(t);
            &s * &self.information * &s
        };
        let rhs = |t: f64, c: &DMatrix<f64>| -> DMatrix<f64> {
            -(&kg * c) - c * kg.transpose() + forcing(t)
        };
        let integrand = |t: f64, c: &DMatrix<f64>| -> f64 {
            (-self.gamma * t).exp()
                * 0.5
                * ((&w * c).trace() + self.k * (&self.h * self.filter_cov(t)).trace())
        };
        // The cost integral by Simpson's rule on each step, with C at the midpoint from the cubic
        // Hermite interpolant of the step (fourth order, as the RK4 values themselves).
        let mut total = 0.0;
        let mut t = 0.0;
        for _ in 0..steps {
            let k1 = rhs(t, &c);
            let k2 = rhs(t + 0.5 * h, &(&c + &k1 * (0.5 * h)));
            let k3 = rhs(t + 0.5 * h, &(&c + &k2 * (0.5 * h)));
            let k4 = rhs(t + h, &(&c + &k3 * h));
            let next = &c + (&k1 + &k2 * 2.0 + &k3 * 2.0 + &k4) * (h / 6.0);
            // C at the midpoint, fourth-order: the cubic through (C, C') at both ends.
            let (d0, d1) = (&k1, rhs(t + h, &next));
            let mid = (&c + &next) * 0.5 + (d0 - &d1) * (h / 8.0);
            total += h / 6.0
                * (integrand(t, &c) + 4.0 * integrand(t + 0.5 * h, &mid) + integrand(t + h, &next));
            c = next;
            t += h;
        }
        total
    }

    /// The full-information cost `E_μ[J*(μ)] = ½[(θ0−m0)ᵀP(θ0−m0) + tr(P S0)]`: what a learner
    /// that knows μ pays on average.
    pub fn full_information_cost(&self) -> f64 {
        let e0 = &self.theta0 - &self.prior_mean;
        0.5 * (e0.dot(&(&self.riccati * &e0)) + (&self.riccati * &self.prior_cov).trace())
    }

    /// Whether the Monte Carlo's explicit step `dt` (as asked; the run rounds it down to
    /// divide `40/γ`) is stable for the rule with gain scale `gain_scale` and for the filter
    /// with gain scale `filter_scale`: `dt·ρ < 2` for the spectral radius `ρ` of `sK` and of
    /// `Σ₀HR⁻¹H` (the filter's fastest rate is at `t = 0`). Cheap: two `D×D` eigenproblems.
    pub fn check_step(&self, dt: f64, gain_scale: f64, filter_scale: f64) -> Result<(), RuleError> {
        let radius = |m: &DMatrix<f64>| {
            m.complex_eigenvalues()
                .iter()
                .fold(0.0_f64, |r, z| r.max(z.norm()))
        };
        for (what, rate) in [
            (
                "the rule θ̇ = −sK(θ − μ̂)",
                radius(&(&self.gain * gain_scale)),
            ),
            (
                "the filter",
                radius(&(&self.prior_cov * &self.information * filter_scale)),
            ),
        ] {
            if !(rate.is_finite() && dt * rate < 2.0) {
                return Err(RuleError::UnstableStep { what, dt, rate });
            }
        }
        Ok(())
    }

    /// Monte Carlo of the observed system: `paths` draws of μ from the prior, noisy gradient
    /// observations, the filter (its gain scaled by `filter_scale`; 1 is the Kalman–Bucy filter)
    /// and the rule `θ̇ = −sK(θ − μ̂)`, Euler–Maruyama with step `dt` up to `40/γ`, discounted
    /// cost accumulated. Path `i` uses its own generator seeded from `(seed, i)`, and paths are
    /// summed in order, so the result does not depend on the number of threads.
    ///
    /// Refused before anything runs: a horizon that needs more steps than the per-step gain
    /// table may hold ([`RuleError::TooManySteps`]), and a step at which the explicit scheme is
    /// unstable for the rule or the filter ([`RuleError::UnstableStep`]: `dt·ρ ≥ 2` for the
    /// spectral radius `ρ` of `sK` or of `Σ₀HR⁻¹H`). A path whose cost is still not finite
    /// makes the whole estimate an error ([`RuleError::Diverged`]), never a NaN mean.
    pub fn monte_carlo(
        &self,
        paths: usize,
        seed: u64,
        dt: f64,
        gain_scale: f64,
        filter_scale: f64,
    ) -> Result<Estimate, RuleError> {
        self.check_step(dt, gain_scale, filter_scale)?;
        let d = self.h.nrows();
        let kg = &self.gain * gain_scale;
        let t_end = 40.0 / self.gamma;
        let steps_f = (t_end / dt).ceil();
        let table = (d * d * 8) as f64;
        if !(steps_f.is_finite()
            && steps_f >= 1.0
            && steps_f * table <= MAX_GAIN_TABLE_BYTES as f64)
        {
            return Err(RuleError::TooManySteps {
                steps: steps_f,
                dim: d,
                limit: MAX_GAIN_TABLE_BYTES,
            });
        }
        let steps = steps_f as usize;
        let dt = t_end / steps as f64;
        let chol_s0 = Cholesky::new(&self.prior_cov + DMatrix::identity(d, d) * 1e-300)
            .map(|c| c.l())
            .unwrap_or_else(|| DMatrix::zeros(d, d));
        let chol_r = Cholesky::new(self.noise.clone())
            .map(|c| c.l())
            .unwrap_or_else(|| DMatrix::zeros(d, d));
        // Σ_t H R⁻¹ at every step, shared by all paths.
        let gains: Vec<DMatrix<f64>> = (0..steps)
            .map(|n| self.filter_cov(n as f64 * dt) * &self.h_rinv * filter_scale)
            .collect();
        let costs: Vec<f64> = (0..paths)
            .into_par_iter()
            .map(|i| {
                let mut rng = PathStream::new(seed, i as u64);
                let z = DVector::from_fn(d, |_, _| rng.normal());
                let mu = &self.prior_mean + &chol_s0 * z;
                let mut theta = self.theta0.clone();
                let mut mu_hat = self.prior_mean.clone();
                let mut cost = 0.0;
                let sqrt_dt = dt.sqrt();
                for (n, gain) in gains.iter().enumerate() {
                    let t = n as f64 * dt;
                    let velocity = -(&kg * (&theta - &mu_hat));
                    let dev = &theta - &mu;
                    let running = velocity.dot(&(&self.g * &velocity)) / (2.0 * self.eta)
                        + 0.5 * self.k * dev.dot(&(&self.h * &dev));
                    cost += (-self.gamma * t).exp() * running * dt;
                    let dw = DVector::from_fn(d, |_, _| rng.normal() * sqrt_dt);
                    let dy = &self.h * &dev * dt + &chol_r * dw;
                    let innovation = dy - &self.h * (&theta - &mu_hat) * dt;
                    mu_hat -= gain * innovation;
                    theta += velocity * dt;
                }
                cost
            })
            .collect();
        if let Some(first) = costs.iter().position(|c| !c.is_finite()) {
            return Err(RuleError::Diverged {
                diverged: costs.iter().filter(|c| !c.is_finite()).count(),
                paths,
                first,
            });
        }
        let n = paths as f64;
        let mean = costs.iter().sum::<f64>() / n;
        let var = costs.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        Ok(Estimate {
            mean,
            stderr: (var / n).sqrt(),
            paths,
        })
    }
}
