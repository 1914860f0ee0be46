//! The Lagrangian: kinetic term (cost of change) plus potential term (the loss).
//!
//! `ℓ(θ, θ̇, t) = (1/2η)(θ̇ - f)ᵀ G (θ̇ - f) + k L(θ, t)`, discounted by `e^{-γt}` in the
//! objective `J = ∫ e^{-γt} ℓ dt` (docs/theory.md §1).

use std::sync::Arc;

use crate::drift::{Drift, NoDrift};
use crate::error::{ProblemError, Result};
use crate::landscape::Landscape;
use crate::linalg::with_scratch;
use crate::metric::{Identity, Metric};

/// The integrand of the learning objective: loss, metric, drift and the constants η, k, γ.
///
/// ```
/// use lossnav_problems::{Lagrangian, Quadratic};
/// let loss = Quadratic::diagonal(vec![1.0], vec![0.0]).unwrap();
/// let lag = Lagrangian::new(loss).with_eta(2.0).with_gamma(0.5);
/// // (1/2η)·θ̇² + k·L = 0.25·1 + 0.5·4
/// assert_eq!(lag.running_cost(&[2.0], &[1.0], 0.0), 2.25);
/// ```
#[derive(Clone)]
pub struct Lagrangian {
    loss: Arc<dyn Landscape>,
    metric: Arc<dyn Metric>,
    drift: Arc<dyn Drift>,
    eta: f64,
    k: f64,
    gamma: f64,
}

impl std::fmt::Debug for Lagrangian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lagrangian")
            .field("loss", &self.loss.describe())
            .field("metric", &self.metric.describe())
            .field("drift", &self.drift.describe())
            .field("eta", &self.eta)
            .field("k", &self.k)
            .field("gamma", &self.gamma)
            .finish()
    }
}

impl Lagrangian {
    /// Euclidean metric, no drift, `η = k = 1`, `γ = 0`.
    pub fn new(loss: impl Landscape + 'static) -> Self {
        Self::from_arc(Arc::new(loss))
    }

    /// As [`Lagrangian::new`], from a shared loss.
    pub fn from_arc(loss: Arc<dyn Landscape>) -> Self {
        let dim = loss.dim();
        Self {
            loss,
            metric: Arc::new(Identity::new(dim)),
            drift: Arc::new(NoDrift::new(dim)),
            eta: 1.0,
            k: 1.0,
            gamma: 0.0,
        }
    }

    /// Sets the metric.
    pub fn with_metric(mut self, metric: impl Metric + 'static) -> Self {
        self.metric = Arc::new(metric);
        self
    }

    /// Sets the metric from a shared one.
    pub fn with_metric_arc(mut self, metric: Arc<dyn Metric>) -> Self {
        self.metric = metric;
        self
    }

    /// Sets the drift.
    pub fn with_drift(mut self, drift: impl Drift + 'static) -> Self {
        self.drift = Arc::new(drift);
        self
    }

    /// Sets the drift from a shared one.
    pub fn with_drift_arc(mut self, drift: Arc<dyn Drift>) -> Self {
        self.drift = drift;
        self
    }

    /// Sets η, the cheapness of change (a learning rate).
    pub fn with_eta(mut self, eta: f64) -> Self {
        self.eta = eta;
        self
    }

    /// Sets k, the weight of the loss.
    pub fn with_k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// Sets γ, the discount rate (inverse planning horizon).
    pub fn with_gamma(mut self, gamma: f64) -> Self {
        self.gamma = gamma;
        self
    }

    /// Checks `η > 0`, `k ≥ 0`, `γ ≥ 0` (all finite) and that the dimensions agree.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &str, value: f64, ok: bool, requirement: &str| {
            if value.is_finite() && ok {
                Ok(())
            } else {
                Err(ProblemError::Parameter {
                    name: name.to_string(),
                    value,
                    requirement: format!("finite and {requirement}"),
                })
            }
        };
        check("eta", self.eta, self.eta > 0.0, "> 0")?;
        check("k", self.k, self.k >= 0.0, ">= 0")?;
        check("gamma", self.gamma, self.gamma >= 0.0, ">= 0")?;
        let d = self.loss.dim();
        if d == 0 {
            return Err(ProblemError::invalid("loss", "the loss has no parameters"));
        }
        for (field, got) in [("metric", self.metric.dim()), ("drift", self.drift.dim())] {
            if got != d {
                return Err(ProblemError::dimension(
                    field,
                    format!("dimension {d} (that of the loss)"),
                    format!("dimension {got}"),
                ));
            }
        }
        Ok(())
    }

    /// The loss `L`.
    pub fn loss(&self) -> &dyn Landscape {
        self.loss.as_ref()
    }
    /// The loss, shared.
    pub fn loss_arc(&self) -> &Arc<dyn Landscape> {
        &self.loss
    }
    /// The same Lagrangian with another loss (of the same dimension: checked by
    /// [`Problem::with_lagrangian`](crate::Problem::with_lagrangian)).
    pub fn with_loss_arc(mut self, loss: Arc<dyn Landscape>) -> Self {
        self.loss = loss;
        self
    }
    /// The metric `G` (or mobility `M`).
    pub fn metric(&self) -> &dyn Metric {
        self.metric.as_ref()
    }
    /// The drift `f`.
    pub fn drift(&self) -> &dyn Drift {
        self.drift.as_ref()
    }
    /// η.
    pub fn eta(&self) -> f64 {
        self.eta
    }
    /// k.
    pub fn k(&self) -> f64 {
        self.k
    }
    /// γ.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }
    /// Number of parameters `D`.
    pub fn dim(&self) -> usize {
        self.loss.dim()
    }

    /// Discount factor `e^{-γt}`.
    pub fn discount(&self, t: f64) -> f64 {
        (-self.gamma * t).exp()
    }

    /// Whether the Hamiltonian field is affine in `(θ, p)` and autonomous: a loss with constant
    /// Hessian, a constant metric and an affine drift, none depending on time. Its Jacobian is
    /// then one matrix, which solvers evaluate once.
    pub fn has_affine_field(&self) -> bool {
        self.loss.has_constant_hessian()
            && !self.loss.is_time_dependent()
            && self.metric().is_constant()
            && self.drift().is_affine()
    }

    /// Potential term `k L(θ, t)`.
    pub fn potential(&self, theta: &[f64], t: f64) -> f64 {
        self.k * self.loss.value(theta, t)
    }

    /// Kinetic term `(1/2η)(θ̇ - f)ᵀ G (θ̇ - f)`; NaN when `G` does not exist.
    pub fn kinetic(&self, theta: &[f64], theta_dot: &[f64], t: f64) -> f64 {
        let u = self.control(theta, theta_dot, t);
        let mut gu = vec![0.0; u.len()];
        self.metric.metric_mul(theta, &u, &mut gu);
        dot(&u, &gu) / (2.0 * self.eta)
    }

    /// Kinetic term from the momentum: `(1/2η) pᵀ M p` (defined for singular mobilities too).
    pub fn kinetic_from_momentum(&self, theta: &[f64], p: &[f64]) -> f64 {
        with_scratch(p.len(), |mp| {
            self.metric.mobility_mul(theta, p, mp);
            dot(p, mp) / (2.0 * self.eta)
        })
    }

    /// Undiscounted integrand `ℓ = kinetic + potential`.
    pub fn running_cost(&self, theta: &[f64], theta_dot: &[f64], t: f64) -> f64 {
        self.kinetic(theta, theta_dot, t) + self.potential(theta, t)
    }

    /// Exact gradients of the undiscounted integrand with respect to `θ` and `θ̇`:
    /// `∂ℓ/∂θ̇ = G u / η` and `∂ℓ/∂θ = ∇_θ(uᵀGu)/(2η) - Dfᵀ G u / η + k ∇L`, `u = θ̇ - f`.
    pub fn running_cost_gradients(
        &self,
        theta: &[f64],
        theta_dot: &[f64],
        t: f64,
        d_theta: &mut [f64],
        d_theta_dot: &mut [f64],
    ) {
        let mut scratch = CostScratch::new(theta.len());
        self.running_cost_with_gradients(theta, theta_dot, t, d_theta, d_theta_dot, &mut scratch);
    }

    /// The running cost `ℓ` and its gradients at once, in caller-owned scratch: what
    /// [`Lagrangian::running_cost`] and [`Lagrangian::running_cost_gradients`] compute, with
    /// the control and `G u` shared and no allocation (the direct method calls this at every
    /// quadrature point of every evaluation).
    ///
    /// ```
    /// use lossnav_problems::{lagrangian::CostScratch, Lagrangian, Quadratic};
    /// let lag = Lagrangian::new(Quadratic::diagonal(vec![1.0], vec![0.0]).unwrap()).with_eta(2.0);
    /// let (mut g_th, mut g_thd, mut scratch) = ([0.0], [0.0], CostScratch::new(1));
    /// let l = lag.running_cost_with_gradients(&[2.0], &[1.0], 0.0, &mut g_th, &mut g_thd, &mut scratch);
    /// assert_eq!((l, g_th[0], g_thd[0]), (2.25, 2.0, 0.5));
    /// ```
    pub fn running_cost_with_gradients(
        &self,
        theta: &[f64],
        theta_dot: &[f64],
        t: f64,
        d_theta: &mut [f64],
        d_theta_dot: &mut [f64],
        scratch: &mut CostScratch,
    ) -> f64 {
        let loss = self.loss.value_and_gradient(theta, t, d_theta);
        self.running_cost_with_loss(theta, theta_dot, t, loss, d_theta, d_theta_dot, scratch)
    }

    /// [`Lagrangian::running_cost_with_gradients`] given the loss `L(θ, t)` and its gradient
    /// (in `d_theta`, overwritten with `∂ℓ/∂θ`), evaluated by the caller, for instance for many
    /// points in one batch.
    #[allow(clippy::too_many_arguments)]
    pub fn running_cost_with_loss(
        &self,
        theta: &[f64],
        theta_dot: &[f64],
        t: f64,
        loss: f64,
        d_theta: &mut [f64],
        d_theta_dot: &mut [f64],
        scratch: &mut CostScratch,
    ) -> f64 {
        let d = theta.len();
        scratch.resize(d);
        let CostScratch {
            u,
            gu,
            metric_term,
            drift_term,
        } = scratch;
        self.drift.value(theta, t, u);
        for (ui, v) in u.iter_mut().zip(theta_dot) {
            *ui = v - *ui;
        }
        self.metric.metric_mul(theta, u, gu);
        let kinetic = dot(u, gu) / (2.0 * self.eta);
        for (o, v) in d_theta_dot.iter_mut().zip(gu.iter()) {
            *o = v / self.eta;
        }
        self.metric.metric_quadratic_gradient(theta, u, metric_term);
        self.drift.jacobian_transpose_mul(theta, t, gu, drift_term);
        for i in 0..d {
            d_theta[i] = self.k * d_theta[i] + (0.5 * metric_term[i] - drift_term[i]) / self.eta;
        }
        kinetic + self.k * loss
    }

    /// The control `u = θ̇ - f(θ, t)`.
    pub fn control(&self, theta: &[f64], theta_dot: &[f64], t: f64) -> Vec<f64> {
        let mut f = vec![0.0; theta.len()];
        self.drift.value(theta, t, &mut f);
        theta_dot.iter().zip(&f).map(|(a, b)| a - b).collect()
    }

    /// The momentum `p = G(θ)(θ̇ - f)` of docs/theory.md §2.
    pub fn momentum(&self, theta: &[f64], theta_dot: &[f64], t: f64, p: &mut [f64]) {
        with_scratch(theta.len(), |u| {
            self.drift.value(theta, t, u);
            for (ui, v) in u.iter_mut().zip(theta_dot) {
                *ui = v - *ui;
            }
            self.metric.metric_mul(theta, u, p);
        })
    }

    /// The velocity `θ̇ = f(θ, t) + M(θ) p`.
    pub fn velocity(&self, theta: &[f64], p: &[f64], t: f64, theta_dot: &mut [f64]) {
        with_scratch(p.len(), |mp| {
            self.metric.mobility_mul(theta, p, mp);
            self.drift.value(theta, t, theta_dot);
            for (v, m) in theta_dot.iter_mut().zip(&*mp) {
                *v += m;
            }
        })
    }
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Work vectors of [`Lagrangian::running_cost_with_gradients`]: four of length `D`, allocated
/// once and reused.
#[derive(Debug, Clone, Default)]
pub struct CostScratch {
    u: Vec<f64>,
    gu: Vec<f64>,
    metric_term: Vec<f64>,
    drift_term: Vec<f64>,
}

impl CostScratch {
    /// Scratch for `D = dim`.
    pub fn new(dim: usize) -> Self {
        let mut s = Self::default();
        s.resize(dim);
        s
    }

    fn resize(&mut self, dim: usize) {
        for v in [
            &mut self.u,
            &mut self.gu,
            &mut self.metric_term,
            &mut self.drift_term,
        ] {
            v.resize(dim, 0.0);
        }
    }
}
