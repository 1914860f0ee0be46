//! Task uncertainty in closed form (docs/theory.md §6): constant metric, no drift, infinite
//! horizon, γ > 0.
//!
//! With `R = ηG⁻¹P` the stable rate matrix (`R² + γR = ηkG⁻¹H`, P from the Riccati equation of
//! §4) and `δ = m − μ0`:
//!
//! ```text
//! θ̇ = −R[(θ − μ0) − ρ(m_t − μ0)],    ρ = (R + (λ+γ)I)⁻¹(R + γI),   m_t − μ0 = e^{-λt}δ
//! θ(t) = μ0 + e^{-λt}a + e^{-Rt}(θ0 − μ0 − a),   a = (R(R+γ) − λ(λ+γ)I)⁻¹ R(R+γ) δ
//! ```
//!
//! (substitute θ(t) into the Euler–Lagrange equation `θ̈ = γθ̇ + ηkG⁻¹H(θ − c(t))` with
//! `ηkG⁻¹H = R² + γR`: the `e^{-λt}` part needs `(λ² + γλ)a = (R² + γR)(a − δ)`, which is the
//! formula for `a`, and the `e^{-Rt}` part solves the homogeneous equation with the stable
//! rates). The expected cost
//! `E[J]` is the integral of the running cost along θ(t), in closed form through the
//! eigen-decomposition of `R` (similar to the symmetric `ηM^{1/2}PM^{1/2}`), plus the variance
//! of the future minima, `½k[tr(HS0)(1/γ − 1/(γ+λ)) + δᵀHδ(1/(γ+λ) − 1/(γ+2λ))]`.
//!
//! Limits: `λ → 0` gives `ρ → I` (track the current task); `λ → ∞` gives `ρ → 0` and `a → 0`:
//! the weights are pulled to the prior mean μ0, the initialisation (weight resetting).

use nalgebra::{DMatrix, DVector};

use std::sync::Arc;

use lossnav_problems::task::{ExpectedTaskLoss, TaskSwitching};
use lossnav_problems::{Constant, End, Horizon, Lagrangian, Problem, Quadratic, Spec};

use super::lq::{LqData, LqRule, RuleError};

/// The closed-form task-switching rule of a spec.
#[derive(Debug, Clone)]
pub struct TaskRule {
    /// `R = ηG⁻¹P`.
    pub rate_matrix: DMatrix<f64>,
    /// `ρ = (R + (λ+γ)I)⁻¹(R + γI)`.
    pub rho: DMatrix<f64>,
    /// `a`: the coefficient of `e^{-λt}` in θ(t) − μ0.
    pub a: DVector<f64>,
    /// The Riccati matrix `P`.
    pub riccati: DMatrix<f64>,
    /// `μ0`.
    pub prior_mean: DVector<f64>,
    /// `m − μ0`.
    pub delta: DVector<f64>,
    /// `λ`.
    pub hazard: f64,
    /// `E[J]`.
    pub expected_cost: f64,
    theta0: DVector<f64>,
    /// Eigenvectors of `R` (columns) and the inverse, and its eigenvalues.
    v: DMatrix<f64>,
    v_inv: DMatrix<f64>,
    rates: DVector<f64>,
    /// The pieces of the expected problem, for [`TaskRule::truncated_problem`].
    problem: ExpectedProblem,
}

/// What the expected problem is built from.
#[derive(Debug, Clone)]
struct ExpectedProblem {
    hessian: DMatrix<f64>,
    minimum: DVector<f64>,
    task: TaskSwitching,
    mobility: DMatrix<f64>,
    eta: f64,
    k: f64,
    gamma: f64,
    name: String,
}

impl TaskRule {
    /// From a spec with `task_switching` (validated as for `solve`).
    pub fn from_spec(spec: &Spec) -> Result<Self, RuleError> {
        let not = |s: &str| RuleError::NotLinearQuadratic(s.to_string());
        let spec_err = |e: lossnav_problems::ProblemError| not(&e.to_string());
        let ts = spec
            .task_switching
            .as_ref()
            .ok_or_else(|| not("the spec has no task_switching"))?;
        // Validates everything the expected problem needs.
        let problem = spec.to_problem().map_err(spec_err)?;
        if problem.horizon() != Horizon::Infinite {
            return Err(not(
                "the task-switching closed form is for an infinite horizon; `lossnav solve` \
                 solves the finite-horizon expected problem",
            ));
        }
        // The loss as written: its Hessian and the current task's minimum.
        let plain = Spec {
            task_switching: None,
            ..spec.clone()
        }
        .to_problem()
        .map_err(spec_err)?;
        let q = plain
            .lagrangian()
            .loss()
            .as_quadratic()
            .ok_or_else(|| not("the loss is not quadratic"))?;
        let lag = problem.lagrangian();
        let m = lag
            .metric()
            .constant_mobility()
            .ok_or_else(|| not("the metric is not constant"))?;
        if !lag.metric().is_invertible() {
            return Err(not("the closed form needs an invertible metric"));
        }
        let (eta, k, gamma) = (lag.eta(), lag.k(), lag.gamma());
        let d = problem.dim();
        let task = TaskSwitching::new(
            ts.hazard,
            DVector::from_vec(ts.prior_mean.clone()),
            DMatrix::from_fn(d, d, |i, j| ts.prior_cov[i][j]),
        )
        .map_err(spec_err)?;
        let h = q.hessian.clone();
        let minimum = q.minimum.clone();
        let data = LqData {
            a: DMatrix::zeros(d, d),
            b: DVector::zeros(d),
            m: m.clone(),
            h: h.clone(),
            mu: task.prior_mean().clone(),
            eta,
            k,
            gamma,
        };
        let lq = LqRule::new(&data, problem.theta0())?;
        let p = lq.riccati.clone();
        // R = ηMP is similar to the symmetric ηW P W with W = M^{1/2}.
        let eig_m = m.clone().symmetric_eigen();
        let w = &eig_m.eigenvectors
            * DMatrix::from_diagonal(&eig_m.eigenvalues.map(f64::sqrt))
            * eig_m.eigenvectors.transpose();
        let w_inv = &eig_m.eigenvectors
            * DMatrix::from_diagonal(&eig_m.eigenvalues.map(|v| 1.0 / v.sqrt()))
            * eig_m.eigenvectors.transpose();
        let s = (&w * &p * &w) * eta;
        let eig = (0.5 * (&s + s.transpose())).symmetric_eigen();
        let rates = eig.eigenvalues.clone();
        let v = &w * &eig.eigenvectors;
        let v_inv = eig.eigenvectors.transpose() * &w_inv;
        let rate_matrix = &m * &p * eta;
        let lambda = task.hazard();
        let fun = |f: &dyn Fn(f64) -> f64| -> DMatrix<f64> {
            &v * DMatrix::from_diagonal(&rates.map(f)) * &v_inv
        };
        let rho = fun(&|r| (r + gamma) / (r + lambda + gamma));
        for &r in rates.iter() {
            let denom = r * (r + gamma) - lambda * (lambda + gamma);
            if denom.abs() <= 1e-9 * (r * (r + gamma)).max(lambda * (lambda + gamma)) {
                return Err(not(
                    "a rate of the rule equals the hazard (r = λ): the trajectory has a t·e^{−λt} \
                     term this closed form does not cover; `lossnav solve` on a long horizon \
                     solves it",
                ));
            }
        }
        let delta = &minimum - task.prior_mean();
        let a = fun(&|r| r * (r + gamma) / (r * (r + gamma) - lambda * (lambda + gamma))) * &delta;
        let theta0 = problem.theta0().clone();
        let mut rule = Self {
            rate_matrix,
            rho,
            a,
            riccati: p,
            prior_mean: task.prior_mean().clone(),
            delta,
            hazard: lambda,
            expected_cost: f64::NAN,
            theta0,
            v,
            v_inv,
            rates,
            problem: ExpectedProblem {
                hessian: h.clone(),
                minimum: minimum.clone(),
                task: task.clone(),
                mobility: m.clone(),
                eta,
                k,
                gamma,
                name: spec.name.clone().unwrap_or_default(),
            },
        };
        let g = m
            .clone()
            .try_inverse()
            .ok_or_else(|| not("the metric is singular"))?;
        rule.expected_cost = rule.cost(&h, task.prior_cov(), &g, eta, k, gamma);
        Ok(rule)
    }

    /// The infinite-horizon expected problem of a task-switching spec as a finite one that a
    /// boundary-value solver can solve: horizon `T = 30/min(λ, slowest rate)`, where `c(t)` is
    /// within `e^{-30}` of `μ0` and every transient has decayed as far, and as terminal cost the
    /// value of the limit problem, `½(θ − μ0)ᵀP(θ − μ0)`. Returns the problem, `T`, and the
    /// variance cost still to come after `T`, `∫_T^∞ e^{-γ(t−T)} ½k tr(H Var(t)) dt` (add
    /// `e^{-γT}` times it to the solution's cost to get `E[J]`). Neglected: terms of order
    /// `e^{-30}` relative.
    pub fn truncated_problem(&self) -> Result<(Problem, f64, f64), RuleError> {
        let not = |e: lossnav_problems::ProblemError| RuleError::NotLinearQuadratic(e.to_string());
        let e = &self.problem;
        let slowest = self
            .rates
            .iter()
            .copied()
            .fold(self.hazard, f64::min)
            .max(f64::MIN_POSITIVE);
        let t_end = 30.0 / slowest;
        let loss = ExpectedTaskLoss::new(e.hessian.clone(), e.minimum.clone(), e.task.clone())
            .map_err(not)?;
        let lag = Lagrangian::new(loss)
            .with_metric(Constant::from_mobility("metric", e.mobility.clone()).map_err(not)?)
            .with_eta(e.eta)
            .with_k(e.k)
            .with_gamma(e.gamma);
        let tail = Quadratic::new(self.riccati.clone(), self.prior_mean.clone()).map_err(not)?;
        let problem = Problem::new(
            lag,
            self.theta0.clone(),
            Horizon::Finite(t_end),
            End::Free {
                terminal_cost: Some(Arc::new(tail)),
            },
        )
        .map_err(not)?
        .with_name(e.name.clone());
        let (lambda, gamma, k) = (self.hazard, e.gamma, e.k);
        let tr = (&e.hessian * e.task.prior_cov()).trace();
        let dhd = self.delta.dot(&(&e.hessian * &self.delta));
        let s = (-lambda * t_end).exp();
        let rest = 0.5
            * k
            * (tr * (1.0 / gamma - s / (gamma + lambda))
                + dhd * (s / (gamma + lambda) - s * s / (gamma + 2.0 * lambda)));
        Ok((problem, t_end, rest))
    }

    /// θ(t).
    pub fn theta(&self, t: f64) -> DVector<f64> {
        let b = &self.theta0 - &self.prior_mean - &self.a;
        let decay =
            &self.v * DMatrix::from_diagonal(&self.rates.map(|r| (-r * t).exp())) * &self.v_inv * b;
        &self.prior_mean + &self.a * (-self.hazard * t).exp() + decay
    }

    /// θ̇(t) along the trajectory.
    pub fn theta_dot(&self, t: f64) -> DVector<f64> {
        let b = &self.theta0 - &self.prior_mean - &self.a;
        let decay = &self.v
            * DMatrix::from_diagonal(&self.rates.map(|r| -r * (-r * t).exp()))
            * &self.v_inv
            * b;
        &self.a * (-self.hazard * (-self.hazard * t).exp()) + decay
    }

    /// The rule as feedback: `θ̇ = −R[(θ − μ0) − ρ(m_t − μ0)]` with the belief mean `m_t`.
    pub fn velocity(&self, theta: &DVector<f64>, belief_mean: &DVector<f64>) -> DVector<f64> {
        -(&self.rate_matrix
            * ((theta - &self.prior_mean) - &self.rho * (belief_mean - &self.prior_mean)))
    }

    /// `E[J]` from the closed-form trajectory.
    fn cost(
        &self,
        h: &DMatrix<f64>,
        prior_cov: &DMatrix<f64>,
        g: &DMatrix<f64>,
        eta: f64,
        k: f64,
        gamma: f64,
    ) -> f64 {
        let lambda = self.hazard;
        let beta = &self.v_inv * (&self.theta0 - &self.prior_mean - &self.a);
        // ∫ e^{-γt} uᵀQu for u = e^{-λt}α + V e^{-Λt}β.
        let integral = |alpha: &DVector<f64>, beta: &DVector<f64>, q: &DMatrix<f64>| -> f64 {
            let qv = q * &self.v;
            let vqv = self.v.transpose() * &qv;
            let aqv = alpha.transpose() * &qv;
            let mut total = alpha.dot(&(q * alpha)) / (gamma + 2.0 * lambda);
            for i in 0..beta.len() {
                total += 2.0 * aqv[i] * beta[i] / (gamma + lambda + self.rates[i]);
                for j in 0..beta.len() {
                    total +=
                        beta[i] * vqv[(i, j)] * beta[j] / (gamma + self.rates[i] + self.rates[j]);
                }
            }
            total
        };
        // θ̇ = −λe^{-λt}a − VΛe^{-Λt}β;  θ − c = e^{-λt}(a − δ) + Ve^{-Λt}β.
        let kinetic = integral(
            &(&self.a * -lambda),
            &beta.component_mul(&self.rates.map(|r| -r)),
            g,
        ) / (2.0 * eta);
        let potential = 0.5 * k * integral(&(&self.a - &self.delta), &beta, h);
        let trace = (h * prior_cov).trace();
        let dhd = self.delta.dot(&(h * &self.delta));
        let variance = 0.5
            * k
            * (trace * (1.0 / gamma - 1.0 / (gamma + lambda))
                + dhd * (1.0 / (gamma + lambda) - 1.0 / (gamma + 2.0 * lambda)));
        kinetic + potential + variance
    }
}
