//! Task uncertainty (docs/theory.md §6): the loss minimum switches at Poisson rate `λ` to fresh
//! draws from `N(μ0, S0)`, and the learner knows the current task's minimum `m` now.
//!
//! Without new evidence the belief over the minimum at time `t` has the exact moments
//!
//! ```text
//! c(t)   = E[μ_t]   = μ0 + e^{-λt}(m − μ0)
//! Var(t) = (1 − e^{-λt}) S0 + e^{-λt}(1 − e^{-λt}) (m − μ0)(m − μ0)ᵀ
//! ```
//!
//! (a switch has happened by `t` with probability `1 − e^{-λt}`; the mixture of "no switch",
//! a point mass at `m`, and "switched", `N(μ0, S0)`, has that mean and covariance). For a
//! quadratic loss `E[L(θ, μ_t)] = ½(θ − c(t))ᵀH(θ − c(t)) + ½ tr(H Var(t))`, so the expected
//! objective is a deterministic problem with a moving target plus a constant:
//! [`ExpectedTaskLoss`].

use nalgebra::{DMatrix, DVector};

use crate::error::{check_finite, ProblemError, Result};
use crate::landscape::Landscape;

/// The task-switching process: hazard `λ` and the prior `N(μ0, S0)` of fresh minima.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSwitching {
    hazard: f64,
    prior_mean: DVector<f64>,
    prior_cov: DMatrix<f64>,
}

impl TaskSwitching {
    /// Checks `λ > 0` (finite), the sizes, and that `S0` is symmetric positive semi-definite.
    pub fn new(hazard: f64, prior_mean: DVector<f64>, prior_cov: DMatrix<f64>) -> Result<Self> {
        if !(hazard.is_finite() && hazard > 0.0) {
            return Err(ProblemError::Parameter {
                name: "task_switching.hazard".into(),
                value: hazard,
                requirement: "finite and > 0 (a rate of switches per unit time)".into(),
            });
        }
        let d = prior_mean.len();
        check_finite("task_switching.prior_mean", prior_mean.as_slice())?;
        if prior_cov.nrows() != d || prior_cov.ncols() != d {
            return Err(ProblemError::dimension(
                "task_switching.prior_cov",
                format!("{d}x{d} (the length of prior_mean)"),
                format!("{}x{}", prior_cov.nrows(), prior_cov.ncols()),
            ));
        }
        check_finite("task_switching.prior_cov", prior_cov.as_slice())?;
        crate::linalg::check_symmetric("task_switching.prior_cov", &prior_cov)?;
        crate::linalg::check_psd("task_switching.prior_cov", &prior_cov)?;
        Ok(Self {
            hazard,
            prior_mean,
            prior_cov,
        })
    }

    /// `λ`.
    pub fn hazard(&self) -> f64 {
        self.hazard
    }
    /// `μ0`.
    pub fn prior_mean(&self) -> &DVector<f64> {
        &self.prior_mean
    }
    /// `S0`.
    pub fn prior_cov(&self) -> &DMatrix<f64> {
        &self.prior_cov
    }

    /// `(c(t), Var(t))` for a current minimum `m`.
    pub fn moments(&self, m: &DVector<f64>, t: f64) -> (DVector<f64>, DMatrix<f64>) {
        let s = (-self.hazard * t).exp();
        let delta = m - &self.prior_mean;
        let c = &self.prior_mean + &delta * s;
        let var = &self.prior_cov * (1.0 - s) + &delta * delta.transpose() * (s * (1.0 - s));
        (c, var)
    }
}

/// The expected loss under task switching, `½(θ − c(t))ᵀH(θ − c(t)) + ½ tr(H Var(t))`, for a
/// quadratic loss with Hessian `H` whose current minimum is `m`.
///
/// ```
/// use lossnav_problems::{Landscape, task::{ExpectedTaskLoss, TaskSwitching}};
/// use nalgebra::{dmatrix, dvector};
/// let task = TaskSwitching::new(0.5, dvector![0.0], dmatrix![0.8]).unwrap();
/// let loss = ExpectedTaskLoss::new(dmatrix![2.0], dvector![1.0], task).unwrap();
/// // At t = 0 the task is known: ½·2·(θ − 1)².
/// assert_eq!(loss.value(&[2.0], 0.0), 1.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedTaskLoss {
    hessian: DMatrix<f64>,
    minimum: DVector<f64>,
    task: TaskSwitching,
    /// `tr(H S0)` and `δᵀHδ` with `δ = m − μ0`: the variance term is
    /// `½[(1 − s) tr(HS0) + s(1 − s) δᵀHδ]`, `s = e^{-λt}`.
    trace_hs0: f64,
    delta_h_delta: f64,
}

impl ExpectedTaskLoss {
    /// From the loss's Hessian `H` (symmetric), the current minimum `m` and the process.
    pub fn new(hessian: DMatrix<f64>, minimum: DVector<f64>, task: TaskSwitching) -> Result<Self> {
        let d = minimum.len();
        if task.prior_mean.len() != d {
            return Err(ProblemError::dimension(
                "task_switching.prior_mean",
                format!("{d} entries (the dimension of the loss)"),
                format!("{} entries", task.prior_mean.len()),
            ));
        }
        if hessian.nrows() != d || hessian.ncols() != d {
            return Err(ProblemError::dimension(
                "hessian",
                format!("{d}x{d}"),
                format!("{}x{}", hessian.nrows(), hessian.ncols()),
            ));
        }
        let delta = &minimum - &task.prior_mean;
        let trace_hs0 = (&hessian * &task.prior_cov).trace();
        let delta_h_delta = delta.dot(&(&hessian * &delta));
        Ok(Self {
            hessian,
            minimum,
            task,
            trace_hs0,
            delta_h_delta,
        })
    }

    /// The process.
    pub fn task(&self) -> &TaskSwitching {
        &self.task
    }
    /// `H`.
    pub fn hessian_matrix(&self) -> &DMatrix<f64> {
        &self.hessian
    }
    /// The current task's minimum `m`.
    pub fn minimum(&self) -> &DVector<f64> {
        &self.minimum
    }

    /// `c(t)` written into `out`.
    fn target(&self, t: f64, out: &mut [f64]) {
        let s = (-self.task.hazard * t).exp();
        for ((o, m), mu) in out.iter_mut().zip(&self.minimum).zip(&self.task.prior_mean) {
            *o = mu + s * (m - mu);
        }
    }

    /// `½ tr(H Var(t))`.
    pub fn variance_term(&self, t: f64) -> f64 {
        let s = (-self.task.hazard * t).exp();
        0.5 * ((1.0 - s) * self.trace_hs0 + s * (1.0 - s) * self.delta_h_delta)
    }
}

impl Landscape for ExpectedTaskLoss {
    fn dim(&self) -> usize {
        self.minimum.len()
    }

    fn value(&self, theta: &[f64], t: f64) -> f64 {
        let d = self.dim();
        let mut r = vec![0.0; d];
        self.target(t, &mut r);
        for (ri, th) in r.iter_mut().zip(theta) {
            *ri = th - *ri;
        }
        let mut q = 0.0;
        for i in 0..d {
            for j in 0..d {
                q += r[i] * self.hessian[(i, j)] * r[j];
            }
        }
        0.5 * q + self.variance_term(t)
    }

    fn gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) {
        let d = self.dim();
        let mut r = vec![0.0; d];
        self.target(t, &mut r);
        for (ri, th) in r.iter_mut().zip(theta) {
            *ri = th - *ri;
        }
        for (i, g) in grad.iter_mut().enumerate() {
            *g = (0..d).map(|j| self.hessian[(i, j)] * r[j]).sum();
        }
    }

    fn value_and_gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) -> f64 {
        self.gradient(theta, t, grad);
        let mut r = vec![0.0; self.dim()];
        self.target(t, &mut r);
        let q: f64 = r
            .iter()
            .zip(theta)
            .zip(grad.iter())
            .map(|((ri, th), g)| (th - ri) * g)
            .sum();
        0.5 * q + self.variance_term(t)
    }

    fn hessian(&self, _theta: &[f64], _t: f64, hess: &mut DMatrix<f64>) {
        hess.copy_from(&self.hessian);
    }

    fn is_time_dependent(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!(
            "expected quadratic loss under task switching (λ = {}, D = {})",
            self.task.hazard,
            self.dim()
        )
    }
}
