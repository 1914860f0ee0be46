//! The networks of the paper's Figure 2e,f and their scaled-down versions for the 8×8 digits,
//! written directly on candle tensors: the parameters are plain [`Var`]s in a fixed order, so
//! an optimiser, a flat parameter vector (for the optimal-trajectory solver) and a seeded
//! initialisation all see the same list.

use candle_core::{DType, Device, Module, Result, Tensor, Var, D};

use crate::rules::random::PathStream;

/// The nonlinearity of an MLP's hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(0, z)` (the paper's networks).
    #[default]
    Relu,
    /// `tanh z`: a smooth (C^∞) loss, which the optimal-trajectory solver needs — with ReLU the
    /// discretised objective has kinks wherever a quadrature point crosses an activation
    /// boundary, and L-BFGS stalls there.
    Tanh,
}

/// Streams `(seed, INIT_STREAMS | layer)` initialise the weights: a range of its own, apart
/// from the minibatch shuffles ([`crate::train::run`]) and the data split.
pub(crate) const INIT_STREAMS: u64 = 1 << 40;

/// Which network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Architecture {
    /// Fully connected: input → `hidden[0]` → … → classes, `activation` between layers.
    Mlp {
        /// Hidden widths.
        hidden: Vec<usize>,
        /// Hidden nonlinearity.
        activation: Activation,
    },
    /// `conv(c0)–conv(c1)–maxpool–conv(c2)–conv(c3)–maxpool` (3×3, padding 1, ReLU), then
    /// fully connected `→ hidden → classes`.
    Cnn {
        /// The four convolution widths.
        channels: [usize; 4],
        /// Width of the fully connected hidden layer.
        hidden: usize,
    },
}

impl Architecture {
    /// The paper's MNIST MLP, 784 → 512 → 256 → 10.
    pub fn paper_mlp() -> Self {
        Self::Mlp {
            hidden: vec![512, 256],
            activation: Activation::Relu,
        }
    }

    /// The paper's CIFAR-10 CNN, conv64–conv64–pool–conv128–conv128–pool, FC 8192 → 256 → 10.
    pub fn paper_cnn() -> Self {
        Self::Cnn {
            channels: [64, 64, 128, 128],
            hidden: 256,
        }
    }

    /// The MLP scaled to the 8×8 digits: 64 → 96 → 48 → 10 (11 386 parameters).
    pub fn digits_mlp() -> Self {
        Self::Mlp {
            hidden: vec![96, 48],
            activation: Activation::Relu,
        }
    }

    /// The CNN scaled to the 8×8 digits: conv16–conv16–pool–conv32–conv32–pool, FC 128 → 64 →
    /// 10.
    pub fn digits_cnn() -> Self {
        Self::Cnn {
            channels: [16, 16, 32, 32],
            hidden: 64,
        }
    }
}

/// A network: its architecture, input shape and parameters.
#[derive(Debug, Clone)]
pub struct Network {
    arch: Architecture,
    input: (usize, usize, usize),
    classes: usize,
    vars: Vec<Var>,
}

impl Network {
    /// A network for `C×H×W` inputs and `classes` outputs, initialised as PyTorch does
    /// (weights and biases uniform in `±1/√fan_in`) from a reproducible stream of `seed`.
    ///
    /// # Errors
    /// If a size is zero, a CNN input is not divisible by 4 in height and width, or candle
    /// fails to allocate.
    pub fn new(
        arch: Architecture,
        input: (usize, usize, usize),
        classes: usize,
        dtype: DType,
        seed: u64,
    ) -> Result<Self> {
        let (c, h, w) = input;
        if c * h * w == 0 || classes == 0 {
            candle_core::bail!("a network needs a non-empty input and at least one class");
        }
        let mut shapes: Vec<(Vec<usize>, usize)> = Vec::new(); // (weight shape, fan_in)
        match &arch {
            Architecture::Mlp { hidden, .. } => {
                let mut width = c * h * w;
                for &next in hidden.iter().chain(std::iter::once(&classes)) {
                    if next == 0 {
                        candle_core::bail!("a layer of width 0");
                    }
                    shapes.push((vec![width, next], width));
                    width = next;
                }
            }
            Architecture::Cnn { channels, hidden } => {
                if h % 4 != 0 || w % 4 != 0 {
                    candle_core::bail!(
                        "the CNN pools twice: height and width must be multiples of 4"
                    );
                }
                if channels.contains(&0) || *hidden == 0 {
                    candle_core::bail!("a layer of width 0");
                }
                let mut prev = c;
                for &ch in channels {
                    shapes.push((vec![ch, prev, 3, 3], prev * 9));
                    prev = ch;
                }
                let flat = channels[3] * (h / 4) * (w / 4);
                shapes.push((vec![flat, *hidden], flat));
                shapes.push((vec![*hidden, classes], *hidden));
            }
        }
        let mut vars = Vec::with_capacity(2 * shapes.len());
        for (layer, (shape, fan_in)) in shapes.iter().enumerate() {
            let bound = 1.0 / (*fan_in as f64).sqrt();
            let mut rng = PathStream::new(seed, INIT_STREAMS | layer as u64);
            let mut draw = |n: usize| -> Vec<f64> {
                (0..n)
                    .map(|_| bound * (2.0 * rng.uniform() - 1.0))
                    .collect()
            };
            let n: usize = shape.iter().product();
            let out = if shape.len() == 2 { shape[1] } else { shape[0] };
            let weight =
                Tensor::from_vec(draw(n), shape.as_slice(), &Device::Cpu)?.to_dtype(dtype)?;
            let bias = Tensor::from_vec(draw(out), out, &Device::Cpu)?.to_dtype(dtype)?;
            vars.push(Var::from_tensor(&weight)?);
            vars.push(Var::from_tensor(&bias)?);
        }
        Ok(Self {
            arch,
            input,
            classes,
            vars,
        })
    }

    /// The parameters, weight then bias of each layer in order.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.arch
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    /// Logits for a batch `B×C×H×W` (or `B×(C·H·W)` for an MLP).
    ///
    /// # Errors
    /// If the batch does not have the network's input shape.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let params: Vec<&Tensor> = self.vars.iter().map(|v| v.as_tensor()).collect();
        self.forward_with(&params, x)
    }

    /// Logits with other parameter values in the layout of [`Network::vars`] (the network's
    /// own are not touched, so several threads may evaluate different parameters at once).
    ///
    /// # Errors
    /// If the batch or a parameter does not have the network's shapes.
    pub fn forward_with(&self, params: &[&Tensor], x: &Tensor) -> Result<Tensor> {
        if params.len() != self.vars.len() {
            candle_core::bail!(
                "{} parameter tensors for {} parameters",
                params.len(),
                self.vars.len()
            );
        }
        let b = x.dim(0)?;
        match &self.arch {
            Architecture::Mlp { activation, .. } => {
                let (c, h, w) = self.input;
                let mut a = x.reshape((b, c * h * w))?;
                let layers = params.len() / 2;
                for l in 0..layers {
                    a = a.matmul(params[2 * l])?.broadcast_add(params[2 * l + 1])?;
                    if l + 1 < layers {
                        a = match activation {
                            Activation::Relu => a.relu()?,
                            Activation::Tanh => a.tanh()?,
                        };
                    }
                }
                Ok(a)
            }
            Architecture::Cnn { .. } => {
                let (c, h, w) = self.input;
                let mut a = x.reshape((b, c, h, w))?;
                for l in 0..4 {
                    let bias = params[2 * l + 1].reshape((1, (), 1, 1))?;
                    a = a
                        .conv2d(params[2 * l], 1, 1, 1, 1)?
                        .broadcast_add(&bias)?
                        .relu()?;
                    if l % 2 == 1 {
                        a = a.max_pool2d(2)?;
                    }
                }
                let a = a.flatten_from(1)?;
                let a = a.matmul(params[8])?.broadcast_add(params[9])?.relu()?;
                a.matmul(params[10])?.broadcast_add(params[11])
            }
        }
    }

    /// Mean cross-entropy of the batch's logits against `labels` (`u32`, one per row).
    ///
    /// # Errors
    /// On a shape mismatch.
    pub fn loss(&self, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
        candle_nn::loss::cross_entropy(&self.forward(x)?, labels)
    }

    /// The parameters as one `f64` vector (the order of [`Network::vars`], row-major).
    ///
    /// # Errors
    /// If candle cannot read a parameter.
    pub fn flat(&self) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.parameter_count());
        for v in &self.vars {
            out.extend(v.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        Ok(out)
    }

    /// Sets the parameters from one flat vector (the layout of [`Network::flat`]).
    ///
    /// # Errors
    /// If the length differs from [`Network::parameter_count`].
    pub fn set_flat(&self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.parameter_count() {
            candle_core::bail!(
                "{} values for {} parameters",
                theta.len(),
                self.parameter_count()
            );
        }
        let mut at = 0;
        for v in &self.vars {
            let n = v.elem_count();
            let t = Tensor::from_slice(&theta[at..at + n], v.shape(), &Device::Cpu)?
                .to_dtype(v.dtype())?;
            v.set(&t)?;
            at += n;
        }
        Ok(())
    }
}

impl Module for Network {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        Network::forward(self, xs)
    }
}

/// Fraction of rows whose largest logit is at the label.
///
/// # Errors
/// On a shape mismatch.
pub fn accuracy(logits: &Tensor, labels: &[u8]) -> Result<f64> {
    let predicted = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    let correct = predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as u32)
        .count();
    Ok(correct as f64 / labels.len().max(1) as f64)
}
