//! The derived rules as candle optimisers ([`candle_nn::Optimizer`]), so they drop into any
//! candle training loop.
//!
//! The update itself is written once, on slices, in [`crate::rules::adaptive`]; here it runs
//! in place on each parameter's storage through a candle in-place operation (no copy of the
//! parameter or its gradient; the update itself allocates nothing). Global-norm gradient
//! clipping is folded into the step as a scale factor; computing the norm takes two small
//! reductions per parameter.
//!
//! ```
//! use candle_core::{DType, Device, Tensor, Var};
//! use candle_nn::Optimizer;
//! use lossnav::train::optimizer::{RuleConfig, RuleOptimizer};
//! use lossnav::rules::adaptive::DerivedOptimizer;
//!
//! // Least squares for w in y = 3x, with the derived rule (γ = 0.01, filtered gradient).
//! let x = Tensor::new(&[[1.0f32], [2.0], [3.0]], &Device::Cpu)?;
//! let y = Tensor::new(&[[3.0f32], [6.0], [9.0]], &Device::Cpu)?;
//! let w = Var::zeros((1, 1), DType::F32, &Device::Cpu)?;
//! let config = RuleConfig::derived(0.05, 1.0, 0.01).with_beta1(0.9);
//! let mut opt = RuleOptimizer::<DerivedOptimizer>::new(vec![w.clone()], config)?;
//! for _ in 0..500 {
//!     let loss = x.matmul(&w)?.sub(&y)?.sqr()?.mean_all()?;
//!     opt.backward_step(&loss)?;
//! }
//! let w = w.to_vec2::<f32>()?[0][0];
//! assert!((w - 3.0).abs() < 1e-2, "{w}");
//! # Ok::<(), candle_core::Error>(())
//! ```

use std::sync::Mutex;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor, Var};

use crate::rules::adaptive::{DerivedOptimizer, Scalar};

/// An update rule on flat slices of parameters and gradients.
pub trait SliceRule: Send {
    /// Its options.
    type Config: Clone;
    /// State for `n` parameters.
    fn for_len(n: usize, config: &Self::Config) -> Self;
    /// One step on the gradient `scale·grads`.
    fn step_scaled<T: Scalar>(&mut self, params: &mut [T], grads: &[T], scale: f64);
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f64);
}

/// Options of the curvature-normalised rules ([`DerivedOptimizer`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleConfig {
    /// Step size.
    pub lr: f64,
    /// `ηk`.
    pub eta_k: f64,
    /// `γ`.
    pub gamma: f64,
    /// First-moment decay (`None`: the raw gradient).
    pub beta1: Option<f64>,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added under the square root.
    pub floor: f64,
    /// Clip the global gradient norm to this.
    pub clip: Option<f64>,
}

impl RuleConfig {
    /// The paper's Ballistic rule (γ = 0): `s ← β2 s + (1−β2) g²`, `θ ← θ − lr·g/√(s + 1e-8)`.
    pub fn ballistic(lr: f64, beta2: f64) -> Self {
        Self {
            lr,
            eta_k: 1.0,
            gamma: 0.0,
            beta1: None,
            beta2,
            floor: 1e-8,
            clip: None,
        }
    }

    /// The derived rule of docs/theory.md §5.3 for an objective with `ηk` and `γ`:
    /// `θ ← θ − lr·√(ηk)·g/(√(s + ε²) + ε)`, `ε = γ/(2√(ηk))`, `β2 = 0.999`.
    pub fn derived(lr: f64, eta_k: f64, gamma: f64) -> Self {
        Self {
            lr,
            eta_k,
            gamma,
            beta1: None,
            beta2: 0.999,
            floor: 0.0,
            clip: None,
        }
    }

    /// Filters the gradient with decay `β1`.
    pub fn with_beta1(mut self, beta1: f64) -> Self {
        self.beta1 = Some(beta1);
        self
    }

    /// Clips the global gradient norm.
    pub fn with_clip(mut self, clip: f64) -> Self {
        self.clip = Some(clip);
        self
    }
}

impl SliceRule for DerivedOptimizer {
    type Config = RuleConfig;
    fn for_len(n: usize, c: &RuleConfig) -> Self {
        let mut o = DerivedOptimizer::new(n, c.lr)
            .with_objective(c.eta_k, c.gamma)
            .with_beta2(c.beta2)
            .with_floor(c.floor);
        o.beta1 = c.beta1;
        o
    }
    fn step_scaled<T: Scalar>(&mut self, params: &mut [T], grads: &[T], scale: f64) {
        DerivedOptimizer::step_scaled(self, params, grads, scale);
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// Options of [`Momentum`].
#[derive(Debug, Clone, PartialEq)]
pub struct MomentumConfig {
    /// Step size.
    pub lr: f64,
    /// Momentum coefficient μ.
    pub momentum: f64,
    /// Clip the global gradient norm to this.
    pub clip: Option<f64>,
}

/// SGD with heavy-ball momentum as PyTorch writes it: `b ← μb + g`, `θ ← θ − lr·b` (the
/// discretised long-horizon rule of the framework, docs/theory.md §4).
#[derive(Debug, Clone)]
pub struct Momentum {
    lr: f64,
    momentum: f64,
    buffer: Vec<f64>,
}

impl SliceRule for Momentum {
    type Config = MomentumConfig;
    fn for_len(n: usize, c: &MomentumConfig) -> Self {
        Self {
            lr: c.lr,
            momentum: c.momentum,
            buffer: vec![0.0; n],
        }
    }
    fn step_scaled<T: Scalar>(&mut self, params: &mut [T], grads: &[T], scale: f64) {
        assert!(params.len() == self.buffer.len() && grads.len() == self.buffer.len());
        for ((p, &g), b) in params.iter_mut().zip(grads).zip(self.buffer.iter_mut()) {
            *b = self.momentum * *b + scale * g.to_f64();
            *p = T::from_f64(p.to_f64() - self.lr * *b);
        }
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// What a [`RuleOptimizer`] reads from its options.
pub trait RuleOptions: Clone {
    /// The bound on the global gradient norm.
    fn clip(&self) -> Option<f64>;
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate.
    fn set_lr(&mut self, lr: f64);
}

impl RuleOptions for RuleConfig {
    fn clip(&self) -> Option<f64> {
        self.clip
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

impl RuleOptions for MomentumConfig {
    fn clip(&self) -> Option<f64> {
        self.clip
    }
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}

/// A [`SliceRule`] over candle variables: one state per variable, stepped in place.
pub struct RuleOptimizer<R: SliceRule> {
    vars: Vec<(Var, Mutex<R>)>,
    config: R::Config,
}

impl<R: SliceRule> std::fmt::Debug for RuleOptimizer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleOptimizer")
            .field("vars", &self.vars.len())
            .finish()
    }
}

/// The in-place step of one variable.
struct Step<'a, R: SliceRule> {
    rule: &'a Mutex<R>,
    scale: f64,
}

impl<R: SliceRule> InplaceOp2 for Step<'_, R> {
    fn name(&self) -> &'static str {
        "lossnav-rule-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("the rule steps contiguous parameters and gradients only");
        };
        // A poisoned lock means an earlier step panicked mid-update: the state is unusable.
        let mut rule = self
            .rule
            .lock()
            .map_err(|_| candle_core::Error::Msg("optimiser state poisoned".into()))?;
        match (s1, s2) {
            (CpuStorage::F32(p), CpuStorage::F32(g)) => {
                rule.step_scaled(&mut p[a0..a1], &g[b0..b1], self.scale)
            }
            (CpuStorage::F64(p), CpuStorage::F64(g)) => {
                rule.step_scaled(&mut p[a0..a1], &g[b0..b1], self.scale)
            }
            _ => candle_core::bail!(
                "the rule steps f32 or f64 parameters with gradients of the same type"
            ),
        }
        Ok(())
    }
}

/// The factor `min(1, c/‖g‖)` that clips the global gradient norm to `c`.
///
/// # Errors
/// If candle fails to reduce a gradient.
pub fn clip_scale<'a>(
    grads: &GradStore,
    vars: impl Iterator<Item = &'a Var>,
    clip: Option<f64>,
) -> Result<f64> {
    let Some(c) = clip else { return Ok(1.0) };
    let mut sq = 0.0f64;
    for var in vars {
        if let Some(g) = grads.get(var) {
            sq += g
                .sqr()?
                .sum_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    let norm = sq.sqrt();
    Ok(if norm > c { c / norm } else { 1.0 })
}

impl<R: SliceRule> candle_nn::Optimizer for RuleOptimizer<R>
where
    R::Config: RuleOptions,
{
    type Config = R::Config;

    fn new(vars: Vec<Var>, config: R::Config) -> Result<Self> {
        let vars = vars
            .into_iter()
            // The update runs on f32 and f64 storage (half precision is refused at its step).
            .filter(|v| matches!(v.dtype(), candle_core::DType::F32 | candle_core::DType::F64))
            .map(|v| {
                let rule = R::for_len(v.elem_count(), &config);
                (v, Mutex::new(rule))
            })
            .collect();
        Ok(Self { vars, config })
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let scale = clip_scale(grads, self.vars.iter().map(|(v, _)| v), self.config.clip())?;
        for (var, rule) in &self.vars {
            if let Some(g) = grads.get(var) {
                let g: Tensor = g.contiguous()?;
                var.as_tensor().inplace_op2(&g, &Step { rule, scale })?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.lr()
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.set_lr(lr);
        for (_, rule) in &self.vars {
            if let Ok(mut r) = rule.lock() {
                r.set_lr(lr);
            }
        }
    }
}
