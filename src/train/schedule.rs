//! Gradient descent that follows a learning-rate schedule, such as the one
//! [`crate::rules::schedule::schedule`] reads off a finite-horizon optimal path.
//!
//! ```
//! use lossnav::candle_core::{Device, Var};
//! use lossnav::candle_nn::Optimizer;
//! use lossnav::rules::schedule::schedule;
//! use lossnav::train::schedule::{ScheduleConfig, ScheduledSgd};
//!
//! // The optimal path of L = ½θ² over T = 10 with γ = 0.5 and a free end, cut into 20 steps:
//! // the rates a discrete optimiser needs to retrace it.
//! let spec = r#"{"loss": {"quadratic": {"curvatures": [1.0], "minimum": [0.0]}},
//!               "eta": 1, "k": 1, "gamma": 0.5, "theta0": [1.0],
//!               "horizon": 10, "end": "free"}"#;
//! let problem = lossnav::problems::Spec::from_json(spec)?.to_problem()?;
//! let found = lossnav::solve_certified(&problem)?;
//! let plan = schedule(&problem, found.solution(), 20)?;
//!
//! // A candle training loop (here on the same loss, as a model would compute it).
//! let theta = Var::new(&[1.0f64], &Device::Cpu)?;
//! let mut opt = ScheduledSgd::new(vec![theta.clone()], ScheduleConfig::new(plan.rates()))?;
//! for _ in 0..20 {
//!     let loss = (theta.as_tensor().sqr()?.sum_all()? * 0.5)?;
//!     opt.backward_step(&loss)?;
//! }
//! // Gradient descent with the schedule lands where the optimal path ends.
//! let end = theta.as_tensor().to_vec1::<f64>()?[0];
//! let optimal = found.solution().eval(10.0).0[0];
//! assert!((end - optimal).abs() < 1e-6, "{end} vs {optimal}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::backprop::GradStore;
use candle_core::{Result, Var};

use super::optimizer::clip_scale;

/// The schedule and how to apply it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// The rate of each step; past the last step the last rate is kept.
    pub rates: Vec<f64>,
    /// A factor on every rate (`set_learning_rate` changes it).
    pub scale: f64,
    /// Clip the global gradient norm to this.
    pub clip: Option<f64>,
}

impl ScheduleConfig {
    /// The schedule as given: scale 1, no clipping.
    pub fn new(rates: Vec<f64>) -> Self {
        Self {
            rates,
            scale: 1.0,
            clip: None,
        }
    }

    /// Every rate multiplied by `scale` (for tuning the schedule's size, not its shape).
    pub fn with_scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }

    /// Clip the global gradient norm to `clip`.
    pub fn with_clip(mut self, clip: f64) -> Self {
        self.clip = Some(clip);
        self
    }
}

/// `θ ← θ − scale · rates[n] · ∇L(θ)` at step `n`.
#[derive(Debug)]
pub struct ScheduledSgd {
    vars: Vec<Var>,
    config: ScheduleConfig,
    step: usize,
}

impl ScheduledSgd {
    /// The number of steps taken.
    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// The rate the next step uses.
    fn current(&self) -> f64 {
        let r = &self.config.rates;
        self.config.scale * r.get(self.step).or(r.last()).copied().unwrap_or(0.0)
    }
}

impl candle_nn::Optimizer for ScheduledSgd {
    type Config = ScheduleConfig;

    fn new(vars: Vec<Var>, config: ScheduleConfig) -> Result<Self> {
        if config.rates.is_empty() {
            candle_core::bail!("a schedule needs at least one rate");
        }
        if let Some(bad) = config
            .rates
            .iter()
            .chain([&config.scale])
            .find(|r| !(r.is_finite() && **r >= 0.0))
        {
            candle_core::bail!("schedule rates and scale must be finite and ≥ 0, not {bad}");
        }
        let vars = vars.into_iter().filter(|v| v.dtype().is_float()).collect();
        Ok(Self {
            vars,
            config,
            step: 0,
        })
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let lr = self.current() * clip_scale(grads, self.vars.iter(), self.config.clip)?;
        for var in &self.vars {
            if let Some(g) = grads.get(var) {
                var.set(&var.sub(&(g * lr)?)?)?;
            }
        }
        self.step += 1;
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.current()
    }

    /// Rescales the whole schedule so that the next step's rate is `lr` (its shape is kept).
    fn set_learning_rate(&mut self, lr: f64) {
        let base = self.current() / self.config.scale;
        if base > 0.0 && lr.is_finite() && lr >= 0.0 {
            self.config.scale = lr / base;
        }
    }
}
