//! The optimal learning trajectory of a real network: its full-batch training loss as a
//! [`Landscape`], so the direct solver can minimise the paper's objective over the whole path
//! of ~10⁴ weights, and the continuous-time rules (gradient flow, the Adam-like and derived
//! normalised flows) integrated on the same loss for comparison.
//!
//! Gradients are candle's back-propagation in `f64`; Hessian–vector products are exact too,
//! by Pearlmutter's R-operator (forward-mode differentiation of the back-propagation pass),
//! written out for the MLP with ReLU or tanh and softmax cross-entropy.

use candle_core::{DType, Device, Tensor, Var, D};

use lossnav_problems::Landscape;

use super::data::Images;
use super::model::{Activation, Architecture, Network};

/// The mean cross-entropy of an MLP over a fixed set of images, as a function of its flat
/// parameter vector (the layout of [`Network::flat`]).
#[derive(Debug, Clone)]
pub struct NetworkLoss {
    net: Network,
    activation: Activation,
    x: Tensor,
    labels: Tensor,
    onehot: Tensor,
    shapes: Vec<Vec<usize>>,
    dim: usize,
}

impl NetworkLoss {
    /// The full-batch loss of `net`'s architecture on `images` (computed in `f64`).
    ///
    /// # Errors
    /// If the network is not an MLP (the Hessian–vector product is written for MLPs), or
    /// candle fails.
    pub fn new(net: &Network, images: &Images) -> candle_core::Result<Self> {
        let Architecture::Mlp { activation, .. } = net.architecture() else {
            candle_core::bail!("the network's loss landscape is implemented for MLPs");
        };
        let activation = *activation;
        let net64 = Network::new(
            net.architecture().clone(),
            (images.channels, images.height, images.width),
            net.classes(),
            DType::F64,
            0,
        )?;
        net64.set_flat(&net.flat()?)?;
        let n = images.len();
        if let Some(bad) = images.labels.iter().find(|&&l| l as usize >= net.classes()) {
            candle_core::bail!("label {bad} for a network with {} classes", net.classes());
        }
        let x = Tensor::from_slice(&images.pixels, (n, images.image_len()), &Device::Cpu)?
            .to_dtype(DType::F64)?;
        let labels_u32: Vec<u32> = images.labels.iter().map(|&l| l as u32).collect();
        let labels = Tensor::from_vec(labels_u32.clone(), n, &Device::Cpu)?;
        let mut onehot = vec![0.0f64; n * net.classes()];
        for (i, &l) in labels_u32.iter().enumerate() {
            onehot[i * net.classes() + l as usize] = 1.0;
        }
        let onehot = Tensor::from_vec(onehot, (n, net.classes()), &Device::Cpu)?;
        let shapes = net64.vars().iter().map(|v| v.dims().to_vec()).collect();
        let dim = net64.parameter_count();
        Ok(Self {
            net: net64,
            activation,
            x,
            labels,
            onehot,
            shapes,
            dim,
        })
    }

    /// The parameter tensors of a flat vector.
    fn tensors(&self, theta: &[f64]) -> candle_core::Result<Vec<Tensor>> {
        let mut at = 0;
        self.shapes
            .iter()
            .map(|s| {
                let n: usize = s.iter().product();
                let t = Tensor::from_slice(&theta[at..at + n], s.as_slice(), &Device::Cpu);
                at += n;
                t
            })
            .collect()
    }

    fn try_value(&self, theta: &[f64]) -> candle_core::Result<f64> {
        let params = self.tensors(theta)?;
        let refs: Vec<&Tensor> = params.iter().collect();
        let logits = self.net.forward_with(&refs, &self.x)?;
        candle_nn::loss::cross_entropy(&logits, &self.labels)?.to_scalar::<f64>()
    }

    /// The loss, with its gradient written to `out` (one forward and one backward pass).
    fn try_gradient(&self, theta: &[f64], out: &mut [f64]) -> candle_core::Result<f64> {
        let vars: Vec<Var> = self
            .tensors(theta)?
            .iter()
            .map(Var::from_tensor)
            .collect::<candle_core::Result<_>>()?;
        let refs: Vec<&Tensor> = vars.iter().map(|v| v.as_tensor()).collect();
        let logits = self.net.forward_with(&refs, &self.x)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &self.labels)?;
        let grads = loss.backward()?;
        let mut at = 0;
        for v in &vars {
            let n = v.elem_count();
            match grads.get(v) {
                Some(g) => out[at..at + n].copy_from_slice(&g.flatten_all()?.to_vec1::<f64>()?),
                None => out[at..at + n].fill(0.0),
            }
            at += n;
        }
        loss.to_scalar::<f64>()
    }

    /// `∇²L·v` by the R-operator: the forward pass and its directional derivative, then the
    /// back-propagation pass and its directional derivative. With `a = σ(z)`:
    /// `R{a} = σ'(z)⊙R{z}`, and `δ_{l−1} = (δ_l Wᵀ)⊙σ'(z)` gives
    /// `R{δ_{l−1}} = (R{δ_l}Wᵀ + δ_l Vᵀ)⊙σ'(z) + (δ_l Wᵀ)⊙σ''(z)⊙R{z}` (σ'' = 0 for ReLU
    /// almost everywhere; `σ' = 1 − a²`, `σ'' = −2a(1 − a²)` for tanh).
    fn try_hvp(&self, theta: &[f64], v: &[f64], out: &mut [f64]) -> candle_core::Result<()> {
        let w = self.tensors(theta)?;
        let dw = self.tensors(v)?;
        let layers = w.len() / 2;
        let n = self.x.dim(0)? as f64;
        // Forward: activations a_l, pre-activations z_l and their directional derivatives.
        let mut a = vec![self.x.clone()];
        let mut ra = vec![self.x.zeros_like()?];
        // σ'(z), σ''(z)⊙R{z} per hidden layer.
        let mut slopes = Vec::new();
        let mut curvatures = Vec::new();
        let mut z_last = None;
        let mut rz_last = None;
        for l in 0..layers {
            let z = a[l].matmul(&w[2 * l])?.broadcast_add(&w[2 * l + 1])?;
            let rz = (ra[l].matmul(&w[2 * l])? + a[l].matmul(&dw[2 * l])?)?
                .broadcast_add(&dw[2 * l + 1])?;
            if l + 1 < layers {
                let (act, slope, curvature) = match self.activation {
                    Activation::Relu => {
                        // `ge`, as candle's ReLU backward: the slope at z = 0 is 1 there.
                        let mask = z.ge(0.0)?.to_dtype(DType::F64)?;
                        (z.relu()?, mask, None)
                    }
                    Activation::Tanh => {
                        let t = z.tanh()?;
                        let slope = (1.0 - t.sqr()?)?;
                        let second = ((&t * &slope)? * -2.0)?;
                        (t, slope, Some((second * &rz)?))
                    }
                };
                a.push(act);
                ra.push((&rz * &slope)?);
                slopes.push(slope);
                curvatures.push(curvature);
            } else {
                z_last = Some(z);
                rz_last = Some(rz);
            }
        }
        let (z, rz) = (z_last.expect("one layer"), rz_last.expect("one layer"));
        // Output layer of the mean cross-entropy: δ = (p − y)/n, Rδ = (p⊙Rz − p(p·Rz))/n.
        let p = candle_nn::ops::softmax(&z, D::Minus1)?;
        let mut delta = ((&p - &self.onehot)? / n)?;
        let prz = (&p * &rz)?;
        let mut rdelta = ((&prz - p.broadcast_mul(&prz.sum_keepdim(D::Minus1)?)?)? / n)?;
        let mut blocks = vec![Tensor::zeros(1, DType::F64, &Device::Cpu)?; w.len()];
        for l in (0..layers).rev() {
            // ∂L/∂W = aᵀδ, so R{∂L/∂W} = R{a}ᵀδ + aᵀR{δ}; the bias gradient is Σ δ.
            blocks[2 * l] = (ra[l].t()?.matmul(&delta)? + a[l].t()?.matmul(&rdelta)?)?;
            blocks[2 * l + 1] = rdelta.sum(0)?;
            if l > 0 {
                let back = delta.matmul(&w[2 * l].t()?)?;
                let rback = (rdelta.matmul(&w[2 * l].t()?)? + delta.matmul(&dw[2 * l].t()?)?)?;
                rdelta = (rback * &slopes[l - 1])?;
                if let Some(c) = &curvatures[l - 1] {
                    rdelta = (rdelta + (&back * c)?)?;
                }
                delta = (back * &slopes[l - 1])?;
            }
        }
        let mut at = 0;
        for b in &blocks {
            let vals = b.flatten_all()?.to_vec1::<f64>()?;
            out[at..at + vals.len()].copy_from_slice(&vals);
            at += vals.len();
        }
        Ok(())
    }
}

impl Landscape for NetworkLoss {
    fn dim(&self) -> usize {
        self.dim
    }

    fn value(&self, theta: &[f64], _t: f64) -> f64 {
        // A failure inside candle (an allocation) is reported as a non-finite value, which
        // every solver refuses with a typed error.
        self.try_value(theta).unwrap_or(f64::NAN)
    }

    fn gradient(&self, theta: &[f64], _t: f64, grad: &mut [f64]) {
        if self.try_gradient(theta, grad).is_err() {
            grad.fill(f64::NAN);
        }
    }

    fn value_and_gradient(&self, theta: &[f64], _t: f64, grad: &mut [f64]) -> f64 {
        self.try_gradient(theta, grad).unwrap_or_else(|_| {
            grad.fill(f64::NAN);
            f64::NAN
        })
    }

    fn hessian_vector(&self, theta: &[f64], _t: f64, v: &[f64], out: &mut [f64]) {
        if self.try_hvp(theta, v, out).is_err() {
            out.fill(f64::NAN);
        }
    }

    fn describe(&self) -> String {
        format!(
            "full-batch cross-entropy of an MLP ({} parameters, {} images)",
            self.dim,
            self.x.dims()[0]
        )
    }
}

/// A continuous-time learning rule on a loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Flow {
    /// `θ̇ = −c∇L` (SGD's continuous-time version; `c = ηk/γ` is the optimal rule's
    /// large-γ limit).
    Gradient {
        /// The rate `c`.
        rate: f64,
    },
    /// `θ̇ = −√(ηk)·g/(√(s + ε² + δ) + ε)`, `ṡ = (g² − s)/τ`, `s(0) = g(0)²`, elementwise,
    /// with `ε = γ/(2√(ηk))`: the derived rule (docs/theory.md §5.3) with the running squared
    /// gradient as curvature estimate; `γ = 0` is the Adam-like (RMSprop) flow. The floor `δ`
    /// (1e-8 in the Ballistic rule) bounds `g/√s` where a gradient is tiny but not zero. The
    /// second moment starts at `g(0)²`, as a bias-corrected average does; the discrete
    /// Ballistic rule starts it at 0 without correction, so its first steps are larger (by up
    /// to `1/√(1 − β2)`).
    Normalised {
        /// `ηk`.
        eta_k: f64,
        /// `γ` of the rule (0: the Adam-like limit).
        gamma: f64,
        /// Averaging time of the second moment.
        tau: f64,
        /// `δ`, added under the square root.
        floor: f64,
    },
}

/// A rule's path and the objective it achieves.
#[derive(Debug, Clone)]
pub struct FlowPath {
    /// Times.
    pub t: Vec<f64>,
    /// `L(θ(t))`.
    pub loss: Vec<f64>,
    /// `J = ∫₀ᵀ e^{−γt}(|θ̇|²/(2η) + kL) dt` under the objective's η, k, γ.
    pub cost: f64,
    /// The final parameters.
    pub theta_end: Vec<f64>,
}

/// The most RK4 steps [`integrate_flow`] takes.
pub const MAX_FLOW_STEPS: usize = 10_000_000;

/// Integrates `flow` from `theta0` on `loss` up to `t_end` with classical RK4 (step `dt`),
/// accumulating the objective with weights `(eta, k, gamma)` alongside.
///
/// # Errors
/// If `t_end` or `dt` is not a positive finite number, the step count exceeds
/// [`MAX_FLOW_STEPS`], or the path or its cost stops being finite (a diverging rule, or a
/// loss that failed to evaluate).
pub fn integrate_flow(
    loss: &dyn Landscape,
    flow: Flow,
    theta0: &[f64],
    (eta, k, gamma): (f64, f64, f64),
    t_end: f64,
    dt: f64,
) -> Result<FlowPath, String> {
    if !(t_end.is_finite() && t_end > 0.0 && dt.is_finite() && dt > 0.0) {
        return Err(format!(
            "t_end = {t_end} and dt = {dt}: both must be finite and > 0"
        ));
    }
    if t_end / dt > MAX_FLOW_STEPS as f64 {
        return Err(format!(
            "t_end/dt = {:.3e} steps, above the limit {MAX_FLOW_STEPS}",
            t_end / dt
        ));
    }
    let d = theta0.len();
    let steps = (t_end / dt).ceil().max(1.0) as usize;
    let h = t_end / steps as f64;
    // State: θ (d), s (d, normalised flows), J (1).
    let mut y = theta0.to_vec();
    let mut g = vec![0.0; d];
    loss.gradient(theta0, 0.0, &mut g);
    y.extend(g.iter().map(|v| v * v));
    y.push(0.0);
    let rhs = |t: f64, y: &[f64], out: &mut [f64], g: &mut [f64]| {
        let (theta, s) = (&y[..d], &y[d..2 * d]);
        loss.gradient(theta, t, g);
        let mut speed2 = 0.0;
        match flow {
            Flow::Gradient { rate } => {
                for i in 0..d {
                    out[i] = -rate * g[i];
                    out[d + i] = 0.0;
                    speed2 += out[i] * out[i];
                }
            }
            Flow::Normalised {
                eta_k,
                gamma,
                tau,
                floor,
            } => {
                let root = eta_k.sqrt();
                let eps = gamma / (2.0 * root);
                for i in 0..d {
                    let si = s[i].max(0.0);
                    out[i] =
                        -root * g[i] / ((si + eps * eps + floor).sqrt() + eps + f64::MIN_POSITIVE);
                    out[d + i] = (g[i] * g[i] - s[i]) / tau;
                    speed2 += out[i] * out[i];
                }
            }
        }
        out[2 * d] = (-gamma * t).exp() * (speed2 / (2.0 * eta) + k * loss.value(theta, t));
    };
    let n = y.len();
    let (mut k1, mut k2, mut k3, mut k4, mut tmp) = (
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
        vec![0.0; n],
    );
    let mut t = 0.0;
    let mut ts = vec![0.0];
    let mut losses = vec![loss.value(theta0, 0.0)];
    for _ in 0..steps {
        rhs(t, &y, &mut k1, &mut g);
        for i in 0..n {
            tmp[i] = y[i] + 0.5 * h * k1[i];
        }
        rhs(t + 0.5 * h, &tmp, &mut k2, &mut g);
        for i in 0..n {
            tmp[i] = y[i] + 0.5 * h * k2[i];
        }
        rhs(t + 0.5 * h, &tmp, &mut k3, &mut g);
        for i in 0..n {
            tmp[i] = y[i] + h * k3[i];
        }
        rhs(t + h, &tmp, &mut k4, &mut g);
        for i in 0..n {
            y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
        }
        t += h;
        ts.push(t);
        let l = loss.value(&y[..d], t);
        if !(l.is_finite() && y[2 * d].is_finite()) {
            return Err(format!("the path stopped being finite at t = {t:.4}"));
        }
        losses.push(l);
    }
    Ok(FlowPath {
        t: ts,
        loss: losses,
        cost: y[2 * d],
        theta_end: y[..d].to_vec(),
    })
}
