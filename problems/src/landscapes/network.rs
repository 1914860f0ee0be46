//! The mean-squared loss of a two-layer tanh network on a data set: a nonlinear landscape with
//! many parameters and hand-derived exact derivatives.

use num_dual::Dual64;

use crate::error::{check_finite, ProblemError, Result};
use crate::landscape::Landscape;
use crate::landscapes::autodiff::Scalar;

/// `L(W, b, v) = (1/2m) Σᵢ (Σⱼ vⱼ tanh(wⱼ·xᵢ + bⱼ) − yᵢ)²` with `h` hidden units and inputs of
/// dimension `n`: `D = h(n + 2)` parameters, ordered `W` (row-major, `h×n`), `b`, `v`.
///
/// The gradient is back-propagation written once generically over the scalar type, so the
/// Hessian–vector product is its exact directional derivative (one dual-number pass): both cost
/// `O(m·h·n)`, and no `D×D` matrix is formed.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLayerTanh {
    inputs: Vec<Vec<f64>>,
    targets: Vec<f64>,
    hidden: usize,
}

impl TwoLayerTanh {
    /// A network with `hidden` units for the data `(inputs, targets)`.
    pub fn new(inputs: Vec<Vec<f64>>, targets: Vec<f64>, hidden: usize) -> Result<Self> {
        let n = inputs.first().map_or(0, Vec::len);
        if inputs.is_empty() || n == 0 || hidden == 0 {
            return Err(ProblemError::invalid(
                "network",
                "needs data, inputs of positive dimension and hidden units",
            ));
        }
        if targets.len() != inputs.len() || inputs.iter().any(|x| x.len() != n) {
            return Err(ProblemError::dimension(
                "network data",
                format!("{} targets and inputs of dimension {n}", inputs.len()),
                format!("{} targets or ragged inputs", targets.len()),
            ));
        }
        for x in &inputs {
            check_finite("network inputs", x)?;
        }
        check_finite("network targets", &targets)?;
        Ok(Self {
            inputs,
            targets,
            hidden,
        })
    }

    fn n(&self) -> usize {
        self.inputs[0].len()
    }

    /// Loss and gradient for any scalar type.
    fn loss_and_gradient<S: Scalar + Copy>(&self, theta: &[S], grad: &mut [S]) -> S {
        let (h, n) = (self.hidden, self.n());
        let (w, rest) = theta.split_at(h * n);
        let (b, v) = rest.split_at(h);
        let m = self.inputs.len() as f64;
        let zero = S::from(0.0);
        grad.iter_mut().for_each(|g| *g = zero);
        let mut loss = zero;
        let mut act = vec![zero; h];
        for (x, &y) in self.inputs.iter().zip(&self.targets) {
            let mut out = zero;
            for j in 0..h {
                let mut z = b[j];
                for k in 0..n {
                    z += w[j * n + k] * x[k];
                }
                act[j] = z.tanh();
                out += v[j] * act[j];
            }
            let r = out - y;
            loss += r * r * (0.5 / m);
            let r = r * (1.0 / m);
            for j in 0..h {
                grad[h * n + h + j] += r * act[j];
                let back = r * v[j] * (-(act[j] * act[j]) + 1.0);
                grad[h * n + j] += back;
                for k in 0..n {
                    grad[j * n + k] += back * x[k];
                }
            }
        }
        loss
    }
}

impl Landscape for TwoLayerTanh {
    fn dim(&self) -> usize {
        self.hidden * (self.n() + 2)
    }
    fn value(&self, theta: &[f64], _t: f64) -> f64 {
        let mut g = vec![0.0; theta.len()];
        self.loss_and_gradient(theta, &mut g)
    }
    fn gradient(&self, theta: &[f64], _t: f64, grad: &mut [f64]) {
        self.loss_and_gradient(theta, grad);
    }
    fn value_and_gradient(&self, theta: &[f64], _t: f64, grad: &mut [f64]) -> f64 {
        self.loss_and_gradient(theta, grad)
    }
    fn hessian_vector(&self, theta: &[f64], _t: f64, v: &[f64], out: &mut [f64]) {
        let x: Vec<Dual64> = theta
            .iter()
            .zip(v)
            .map(|(&a, &b)| Dual64::new(a, b))
            .collect();
        let mut g = vec![Dual64::from(0.0); x.len()];
        self.loss_and_gradient(&x, &mut g);
        for (o, gi) in out.iter_mut().zip(&g) {
            *o = gi.eps;
        }
    }
    fn describe(&self) -> String {
        format!(
            "two-layer tanh network, {} hidden units, {} samples (D = {})",
            self.hidden,
            self.inputs.len(),
            self.dim()
        )
    }
}
