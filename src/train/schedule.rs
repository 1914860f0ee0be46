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
    /// Where the next rate is 0 (the end of a decayed schedule) there is nothing to scale and
    /// the schedule is left as it is.
    fn set_learning_rate(&mut self, lr: f64) {
        let base = self.current() / self.config.scale;
        if base > 0.0 && lr.is_finite() && lr >= 0.0 {
            self.config.scale = lr / base;
        }
    }
}

/// One schedule of [`compare_schedules_on_digits`]: its tuned peak rate and the outcome over
/// seeds.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DigitsSchedule {
    /// The schedule's shape.
    pub name: &'static str,
    /// The peak learning rate chosen on the validation split.
    pub peak: f64,
    /// Every peak tried: final validation accuracy and training loss (`None`: diverged).
    pub tried: Vec<(f64, Option<(f64, f64)>)>,
    /// Final training loss over the seeds: mean and standard deviation.
    pub train_loss: (f64, f64),
    /// Final test accuracy over the seeds: mean and standard deviation.
    pub test_accuracy: (f64, f64),
}

/// A schedule's shape: the multiplier of the peak rate at a fraction of the run.
pub type Shape = Box<dyn Fn(f64) -> f64 + Send + Sync>;

/// The shapes compared, as multipliers of the peak rate at the fraction `f ∈ [0, 1)` of the
/// run: constant, cosine, warmup–stable–decay (5 % warmup, the last 20 % to zero), and the
/// shape of the noiseless optimal path's schedule on the noisy quadratic model
/// ([`crate::rules::schedule::compare_on_noisy_quadratic`], 20 curvatures over three decades),
/// scaled to peak 1 and stretched over the run.
pub fn schedule_shapes() -> Vec<(&'static str, Shape)> {
    let optimal = crate::rules::schedule::compare_on_noisy_quadratic()
        .into_iter()
        .find(|s| s.name == "optimal path")
        .map(|s| s.rates)
        .unwrap_or_default();
    let peak = optimal.iter().copied().fold(0.0_f64, f64::max);
    let optimal: Vec<f64> = optimal.iter().map(|r| r / peak).collect();
    vec![
        ("constant", Box::new(|_| 1.0)),
        (
            "cosine",
            Box::new(|f: f64| 0.5 * (1.0 + (std::f64::consts::PI * f).cos())),
        ),
        (
            "warmup–stable–decay",
            Box::new(|f: f64| {
                if f < 0.05 {
                    f / 0.05
                } else if f < 0.8 {
                    1.0
                } else {
                    (1.0 - f) / 0.2
                }
            }),
        ),
        (
            "optimal path (noisy-quadratic shape)",
            Box::new(move |f: f64| {
                // Linear interpolation in the stored steps.
                let x = f * (optimal.len() - 1) as f64;
                let i = (x.floor() as usize).min(optimal.len() - 2);
                let w = x - i as f64;
                (1.0 - w) * optimal[i] + w * optimal[i + 1]
            }),
        ),
    ]
}

/// SGD on the UCI digits MLP with each of [`schedule_shapes`], with equal tuning effort: the
/// peak rate of every shape is chosen from `grid` by the final validation accuracy (the
/// training set's last 10 %, seed 0; ties to the lower training loss, as `lossnav train
/// --lr-grid` does), then `seeds` seeds run on the full training set and report the test set.
/// `epochs` defaults to the digits' 30.
///
/// # Errors
/// If candle fails, or every peak of a shape diverges.
pub fn compare_schedules_on_digits(
    grid: &[f64],
    seeds: u64,
    epochs: Option<usize>,
) -> std::result::Result<Vec<DigitsSchedule>, super::run::TrainError> {
    use super::run::{train_run, OptimizerKind, TrainConfig, TrainError};
    let data = super::data::digits();
    let mut cfg = TrainConfig::paper(data.name, super::model::Architecture::digits_mlp());
    cfg.epochs = epochs.unwrap_or(30);
    let (train, validation) = data.train.split_tail(0.1);
    let steps = |n: usize| cfg.epochs * n.div_ceil(cfg.batch);
    let mut out = Vec::new();
    for (name, shape) in schedule_shapes() {
        let rates = |n: usize| -> Vec<f64> {
            let total = steps(n);
            (0..total).map(|k| shape(k as f64 / total as f64)).collect()
        };
        let mut tuning = cfg.clone();
        tuning.sgd_shape = Some(rates(train.len()));
        let mut tried = Vec::new();
        let mut best: Option<(f64, f64, f64)> = None;
        for &peak in grid {
            match train_run(
                &data,
                &train,
                &validation,
                &tuning,
                OptimizerKind::Sgd,
                peak,
                0,
                &(),
            ) {
                Ok(r) => {
                    let last = r
                        .last()
                        .map_or((0.0, f64::INFINITY), |e| (e.test_accuracy, e.train_loss));
                    tried.push((peak, Some(last)));
                    if best.is_none_or(|(_, a, l)| last.0 > a || (last.0 == a && last.1 < l)) {
                        best = Some((peak, last.0, last.1));
                    }
                }
                Err(TrainError::Diverged { .. }) => tried.push((peak, None)),
                Err(e) => return Err(e),
            }
        }
        let peak = best
            .ok_or_else(|| TrainError::Invalid(format!("{name}: every peak in {grid:?} diverged")))?
            .0;
        let mut full = cfg.clone();
        full.sgd_shape = Some(rates(data.train.len()));
        let (mut losses, mut accs) = (Vec::new(), Vec::new());
        for seed in 0..seeds {
            let r = train_run(
                &data,
                &data.train,
                &data.test,
                &full,
                OptimizerKind::Sgd,
                peak,
                seed,
                &(),
            )?;
            let last = r
                .last()
                .ok_or_else(|| TrainError::Invalid("no epochs".into()))?;
            losses.push(last.train_loss);
            accs.push(last.test_accuracy);
        }
        let stats = |v: &[f64]| {
            let n = v.len() as f64;
            let m = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (m, var.sqrt())
        };
        out.push(DigitsSchedule {
            name,
            peak,
            tried,
            train_loss: stats(&losses),
            test_accuracy: stats(&accs),
        });
    }
    Ok(out)
}
