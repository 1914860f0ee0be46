//! The training loop: minibatches, cross-entropy, global-norm clipping, per-epoch training
//! loss and test accuracy, for candle's own optimisers and the framework's rules side by side.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::Optimizer;
use lossnav_solvers::observe::{Observer, Progress};
use serde::Serialize;

use super::data::{augment, shuffle, DataSet, Images};
use super::model::{accuracy, Architecture, Network};
use super::optimizer::{clip_scale, Momentum, MomentumConfig, RuleConfig, RuleOptimizer};
use crate::rules::adaptive::DerivedOptimizer;
use crate::rules::random::PathStream;

/// Streams `(seed, SHUFFLE_STREAMS | epoch)` order the minibatches, `(seed, AUGMENT_STREAM)`
/// draws the augmentation: ranges apart from the initialisation's and the data split's.
const SHUFFLE_STREAMS: u64 = 2 << 40;
const AUGMENT_STREAM: u64 = 3 << 40;

/// The optimisers `lossnav train` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptimizerKind {
    /// candle's SGD (no momentum).
    Sgd,
    /// SGD with heavy-ball momentum 0.9 ([`Momentum`]).
    Momentum,
    /// candle's AdamW (default betas, ε = 1e-8, weight decay 0): the reference.
    Adam,
    /// The paper's Ballistic rule (RMSprop without momentum, the γ → 0 derived rule).
    Ballistic,
    /// The derived rule with a discount and a filtered gradient ([`RuleConfig::derived`]).
    Derived,
}

impl OptimizerKind {
    /// Every kind, in the order figures list them.
    pub const ALL: [OptimizerKind; 5] = [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Adam,
        OptimizerKind::Ballistic,
        OptimizerKind::Derived,
    ];

    /// The name used on the command line and in output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sgd => "sgd",
            Self::Momentum => "momentum",
            Self::Adam => "adam",
            Self::Ballistic => "ballistic",
            Self::Derived => "derived",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The paper's learning rate for this optimiser and data set (Figure 2e,f); the derived
    /// rule uses the Ballistic rate.
    pub fn default_lr(self, data: &str) -> f64 {
        match (self, data) {
            (Self::Sgd | Self::Momentum, _) => 0.1,
            (Self::Adam, "cifar10") => 5e-4,
            (Self::Adam, _) => 1e-3,
            (Self::Ballistic | Self::Derived, _) => 5e-4,
        }
    }
}

/// Hyperparameters of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// The network.
    pub architecture: Architecture,
    /// Epochs.
    pub epochs: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Clip the global gradient norm to this (the paper: 5 for every optimiser).
    pub clip: Option<f64>,
    /// `β2` of the Ballistic rule (the paper: 0.999 on MNIST, 0.9 on CIFAR-10).
    pub ballistic_beta2: f64,
    /// `γ` of the derived rule, in units where `ηk = 1`.
    pub derived_gamma: f64,
    /// `β1` of the derived rule's gradient filter.
    pub derived_beta1: f64,
    /// A learning-rate schedule for SGD: per-step multipliers of its rate (the last is kept
    /// past the end). `None`: a constant rate.
    pub sgd_shape: Option<Vec<f64>>,
}

impl TrainConfig {
    /// The paper's settings for a data set with the given network.
    pub fn paper(data: &str, architecture: Architecture) -> Self {
        let cifar = data == "cifar10";
        Self {
            architecture,
            epochs: if cifar { 25 } else { 10 },
            batch: 128,
            clip: Some(5.0),
            ballistic_beta2: if cifar { 0.9 } else { 0.999 },
            // ε = γ/2 = 1e-3: far below a typical √s early in training, so the rule is
            // RMSprop-like there and turns SGD-like as gradients shrink below ε.
            derived_gamma: 2e-3,
            derived_beta1: 0.9,
            sgd_shape: None,
        }
    }
}

/// One epoch of one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EpochRecord {
    /// Optimiser name.
    pub optimizer: &'static str,
    /// Learning rate.
    pub lr: f64,
    /// Seed of the initialisation and the minibatch order.
    pub seed: u64,
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean of the minibatch losses over the epoch (before each step).
    pub train_loss: f64,
    /// Accuracy on the evaluation images after the epoch.
    pub test_accuracy: f64,
    /// Wall time of the epoch's training steps, seconds.
    pub seconds: f64,
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// candle reported an error.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// The loss became NaN or infinite.
    #[error("{optimizer} (lr {lr}) diverged: the training loss is {loss} in epoch {epoch}")]
    Diverged {
        /// Optimiser.
        optimizer: &'static str,
        /// Learning rate.
        lr: f64,
        /// Epoch.
        epoch: usize,
        /// The loss.
        loss: f64,
    },
    /// A setting is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The optimisers behind one interface.
enum AnyOptimizer {
    Sgd(candle_nn::SGD),
    Scheduled(super::schedule::ScheduledSgd),
    Adam(candle_nn::AdamW),
    Momentum(RuleOptimizer<Momentum>),
    Rule(RuleOptimizer<DerivedOptimizer>),
}

impl AnyOptimizer {
    fn new(
        kind: OptimizerKind,
        lr: f64,
        net: &Network,
        cfg: &TrainConfig,
    ) -> candle_core::Result<Self> {
        let vars = net.vars().to_vec();
        Ok(match kind {
            OptimizerKind::Sgd => match &cfg.sgd_shape {
                None => Self::Sgd(candle_nn::SGD::new(vars, lr)?),
                Some(shape) => {
                    let mut c = super::schedule::ScheduleConfig::new(shape.clone()).with_scale(lr);
                    c.clip = cfg.clip;
                    Self::Scheduled(super::schedule::ScheduledSgd::new(vars, c)?)
                }
            },
            OptimizerKind::Adam => Self::Adam(candle_nn::AdamW::new(
                vars,
                candle_nn::ParamsAdamW {
                    lr,
                    beta1: 0.9,
                    beta2: 0.999,
                    eps: 1e-8,
                    weight_decay: 0.0,
                },
            )?),
            OptimizerKind::Momentum => Self::Momentum(RuleOptimizer::new(
                vars,
                MomentumConfig {
                    lr,
                    momentum: 0.9,
                    clip: cfg.clip,
                },
            )?),
            OptimizerKind::Ballistic => {
                let mut c = RuleConfig::ballistic(lr, cfg.ballistic_beta2);
                c.clip = cfg.clip;
                Self::Rule(RuleOptimizer::new(vars, c)?)
            }
            OptimizerKind::Derived => {
                let mut c =
                    RuleConfig::derived(lr, 1.0, cfg.derived_gamma).with_beta1(cfg.derived_beta1);
                c.clip = cfg.clip;
                Self::Rule(RuleOptimizer::new(vars, c)?)
            }
        })
    }

    /// One step; candle's own optimisers get the clipped gradient in a rewritten store, the
    /// framework's rules fold the clip factor into their update.
    fn step(&mut self, loss: &Tensor, net: &Network, clip: Option<f64>) -> candle_core::Result<()> {
        let mut grads = loss.backward()?;
        match self {
            Self::Momentum(o) => o.step(&grads),
            Self::Rule(o) => o.step(&grads),
            // The scheduled step clips by itself.
            Self::Scheduled(o) => o.step(&grads),
            Self::Sgd(_) | Self::Adam(_) => {
                let scale = clip_scale(&grads, net.vars().iter(), clip)?;
                if scale < 1.0 {
                    for v in net.vars() {
                        if let Some(g) = grads.remove(v) {
                            grads.insert(v, (g * scale)?);
                        }
                    }
                }
                match self {
                    Self::Sgd(o) => o.step(&grads),
                    Self::Adam(o) => o.step(&grads),
                    _ => unreachable!(),
                }
            }
        }
    }
}

/// The batch of `images` at `indices` as tensors (images, `u32` labels).
pub(crate) fn batch(
    images: &Images,
    indices: &[usize],
    augment_with: Option<&mut PathStream>,
) -> candle_core::Result<(Tensor, Tensor)> {
    let sub = images.select(indices);
    let mut pixels = sub.pixels;
    if let Some(rng) = augment_with {
        augment(
            &mut pixels,
            images.channels,
            images.height,
            images.width,
            rng,
        );
    }
    let x = Tensor::from_vec(
        pixels,
        (indices.len(), images.channels, images.height, images.width),
        &Device::Cpu,
    )?;
    let y = Tensor::from_vec(
        sub.labels.iter().map(|&l| l as u32).collect::<Vec<u32>>(),
        indices.len(),
        &Device::Cpu,
    )?;
    Ok((x, y))
}

/// Accuracy of `net` on `images`, in chunks of 512.
///
/// # Errors
/// If candle fails.
pub fn evaluate(net: &Network, images: &Images) -> candle_core::Result<f64> {
    let mut correct = 0.0;
    let all: Vec<usize> = (0..images.len()).collect();
    for chunk in all.chunks(512) {
        let (x, _) = batch(images, chunk, None)?;
        let labels: Vec<u8> = chunk.iter().map(|&i| images.labels[i]).collect();
        correct += accuracy(&net.forward(&x)?, &labels)? * chunk.len() as f64;
    }
    Ok(correct / images.len().max(1) as f64)
}

/// Trains a fresh network (initialised from `seed`) on `train` with one optimiser and
/// evaluates it on `eval` after every epoch. `observer` hears of every step: the step count
/// out of the run's total, and the minibatch loss.
///
/// # Errors
/// [`TrainError::Diverged`] when the loss stops being finite; candle's errors otherwise.
#[allow(clippy::too_many_arguments)]
pub fn train_run(
    data: &DataSet,
    train: &Images,
    eval: &Images,
    cfg: &TrainConfig,
    kind: OptimizerKind,
    lr: f64,
    seed: u64,
    observer: &dyn Observer,
) -> Result<Vec<EpochRecord>, TrainError> {
    if cfg.batch == 0 || train.is_empty() {
        return Err(TrainError::Invalid(
            "a batch needs at least one image".into(),
        ));
    }
    let net = Network::new(
        cfg.architecture.clone(),
        (train.channels, train.height, train.width),
        data.classes,
        DType::F32,
        seed,
    )?;
    let mut opt = AnyOptimizer::new(kind, lr, &net, cfg)?;
    let mut records = Vec::with_capacity(cfg.epochs);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut aug = PathStream::new(seed, AUGMENT_STREAM);
    let started = Instant::now();
    let total = cfg.epochs * train.len().div_ceil(cfg.batch);
    let mut step = 0;
    for epoch in 1..=cfg.epochs {
        // The minibatch order depends on the seed and epoch only, so every optimiser sees the
        // same batches (common random numbers).
        shuffle(&mut order, seed, SHUFFLE_STREAMS | epoch as u64);
        let start = Instant::now();
        let (mut sum, mut count) = (0.0f64, 0usize);
        for idx in order.chunks(cfg.batch) {
            let (x, y) = batch(train, idx, data.augment.then_some(&mut aug))?;
            let loss = net.loss(&x, &y)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(TrainError::Diverged {
                    optimizer: kind.name(),
                    lr,
                    epoch,
                    loss: value,
                });
            }
            sum += value * idx.len() as f64;
            count += idx.len();
            opt.step(&loss, &net, cfg.clip)?;
            step += 1;
            observer.progress(&Progress {
                solver: "train",
                stage: format!("{} seed {seed}, epoch {epoch}", kind.name()),
                iteration: step,
                measure: "minibatch loss",
                value,
                elapsed: started.elapsed().as_secs_f64(),
                total: Some(total),
            });
        }
        let seconds = start.elapsed().as_secs_f64();
        // The last step may have left non-finite weights that no loss of this epoch saw.
        for v in net.vars() {
            let s = v.sum_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !s.is_finite() {
                return Err(TrainError::Diverged {
                    optimizer: kind.name(),
                    lr,
                    epoch,
                    loss: s,
                });
            }
        }
        records.push(EpochRecord {
            optimizer: kind.name(),
            lr,
            seed,
            epoch,
            train_loss: sum / count as f64,
            test_accuracy: evaluate(&net, eval)?,
            seconds,
        });
    }
    Ok(records)
}

/// Passes reports on with the iteration shifted by `offset` and the total replaced.
struct Offset<'a> {
    inner: &'a dyn Observer,
    offset: usize,
    total: usize,
}

impl Observer for Offset<'_> {
    fn progress(&self, p: &Progress) {
        self.inner.progress(&Progress {
            iteration: self.offset + p.iteration,
            total: Some(self.total),
            ..p.clone()
        });
    }
}

/// The outcome of tuning one optimiser's learning rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Tuning {
    /// Optimiser.
    pub optimizer: &'static str,
    /// Every learning rate tried, with its final validation accuracy and training loss
    /// (`None`: diverged).
    pub tried: Vec<(f64, Option<(f64, f64)>)>,
    /// The chosen rate: best validation accuracy, ties to the lower training loss.
    pub chosen: f64,
}

/// Picks the learning rate among `lrs` with the best validation accuracy after a full run
/// (seed 0) on the training set minus its last 10 %, which is the validation set. `observer`
/// hears of every step, counted over all the runs.
///
/// # Errors
/// If every rate diverges, or candle fails.
pub fn tune(
    data: &DataSet,
    cfg: &TrainConfig,
    kind: OptimizerKind,
    lrs: &[f64],
    observer: &dyn Observer,
) -> Result<Tuning, TrainError> {
    let (train, validation) = data.train.split_tail(0.1);
    let mut tried = Vec::new();
    let mut best: Option<(f64, f64, f64)> = None;
    let per_run = cfg.epochs * train.len().div_ceil(cfg.batch.max(1));
    for (k, &lr) in lrs.iter().enumerate() {
        // One count over all the rates tried.
        let counted = Offset {
            inner: observer,
            offset: k * per_run,
            total: lrs.len() * per_run,
        };
        match train_run(data, &train, &validation, cfg, kind, lr, 0, &counted) {
            Ok(r) => {
                let last = r
                    .last()
                    .map_or((0.0, f64::INFINITY), |e| (e.test_accuracy, e.train_loss));
                tried.push((lr, Some(last)));
                let better = best
                    .is_none_or(|(_, acc, loss)| last.0 > acc || (last.0 == acc && last.1 < loss));
                if better {
                    best = Some((lr, last.0, last.1));
                }
            }
            Err(TrainError::Diverged { .. }) => tried.push((lr, None)),
            Err(e) => return Err(e),
        }
    }
    let chosen = best
        .ok_or_else(|| {
            TrainError::Invalid(format!(
                "{}: every learning rate in {lrs:?} diverged",
                kind.name()
            ))
        })?
        .0;
    Ok(Tuning {
        optimizer: kind.name(),
        tried,
        chosen,
    })
}
