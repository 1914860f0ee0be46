//! The noisy quadratic model: a testbed for the Adam-like rules of docs/theory.md §5.3.
//!
//! `L(θ) = ½ Σᵢ hᵢ θᵢ²` with curvatures spread over decades, observed through minibatch-like
//! gradients `gᵢ = hᵢθᵢ + σ√hᵢ ξᵢ` (noise variance proportional to curvature, as for a
//! likelihood loss whose gradient covariance is the Fisher information). A learner steps
//! `θ ← θ + Δθ` once per time step `Δt` and pays the discretised objective
//! `J = Σₙ Δt e^{−γnΔt} (|Δθₙ/Δt|²/(2η) + kL(θₙ))`.
//!
//! Learners: SGD, SGD with momentum, RMSprop and Adam with their own learning rates; the
//! *oracle* rule `Δθ = −Δt·(r(h)/h)·g` that knows the curvatures (the optimal rule of the
//! noiseless problem, [`normalised_rate`]); and the *derived* rule with the curvature
//! estimated from the gradients themselves. Each step sees a minibatch of `M` gradient samples
//! and every learner steps on their mean; with noise proportional to curvature, their sample
//! variance divided by σ² estimates `hᵢ` (the argument that makes Adam's denominator a
//! curvature estimate), averaged over steps with decay β and bias correction. The estimate's
//! relative error falls like `√(2/(M − 1))` per step, so `M` is the axis along which the
//! curvature estimate improves.
//!
//! Every path draws its noise from its own reproducible stream (common random numbers: every
//! learner sees the same ξ), so results are identical for any number of threads.

use rayon::prelude::*;

use super::adaptive::normalised_rate;
use super::random::PathStream;

/// The model and the objective.
#[derive(Debug, Clone, PartialEq)]
pub struct NoisyQuadratic {
    /// Curvatures `hᵢ > 0`.
    pub curvatures: Vec<f64>,
    /// `σ`: gradient noise scale (noise variance `σ²hᵢ` per step).
    pub noise: f64,
    /// Start, the same for every path.
    pub theta0: Vec<f64>,
    /// `η`.
    pub eta: f64,
    /// `k`.
    pub k: f64,
    /// `γ`.
    pub gamma: f64,
    /// The time step `Δt`.
    pub dt: f64,
    /// Steps per path.
    pub steps: usize,
    /// Gradient samples per step `M` (the noise of their mean is `σ√(h/M)`).
    pub batch: usize,
}

impl NoisyQuadratic {
    /// `d` curvatures log-spaced from `h_min` to `h_max`, θ0 = 1 in every coordinate.
    pub fn log_spaced(d: usize, h_min: f64, h_max: f64, noise: f64) -> Self {
        let curvatures = (0..d)
            .map(|i| {
                let s = if d > 1 {
                    i as f64 / (d - 1) as f64
                } else {
                    0.0
                };
                h_min * (h_max / h_min).powf(s)
            })
            .collect();
        Self {
            curvatures,
            noise,
            theta0: vec![1.0; d],
            eta: 1.0,
            k: 1.0,
            gamma: 1.0,
            dt: 0.01,
            steps: 1500,
            batch: 4,
        }
    }
}

/// A learner on the noisy quadratic model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Learner {
    /// `Δθ = −lr·g`.
    Sgd {
        /// Learning rate.
        lr: f64,
    },
    /// `b ← μb + g`, `Δθ = −lr·b`.
    Momentum {
        /// Learning rate.
        lr: f64,
        /// μ.
        momentum: f64,
    },
    /// `s ← β2 s + (1−β2)g²`, `Δθ = −lr·g/(√s + 1e-8)`.
    RmsProp {
        /// Learning rate.
        lr: f64,
        /// β2.
        beta2: f64,
    },
    /// Adam with bias correction, β1 = 0.9, β2 = 0.999, ε = 1e-8.
    Adam {
        /// Learning rate.
        lr: f64,
    },
    /// `Δθ = −Δt·(r(h)/h)·g` with the true curvatures.
    Oracle,
    /// `Δθ = −Δt·(r(ĥ)/ĥ)·ḡ` with `ĥ` the bias-corrected exponential average (decay β) of the
    /// minibatch's sample variance over σ² (needs `M ≥ 2`).
    Derived {
        /// β of the curvature estimate.
        beta: f64,
        /// The noise scale the learner assumes, as a factor of the true σ (1: correct; 2
        /// makes every curvature estimate a quarter of the truth).
        noise_belief: f64,
    },
}

impl Learner {
    /// A short name for tables and legends.
    pub fn name(&self) -> String {
        match self {
            Learner::Sgd { lr } => format!("SGD (lr {lr:.1e})"),
            Learner::Momentum { lr, momentum } => format!("momentum {momentum} (lr {lr:.1e})"),
            Learner::RmsProp { lr, .. } => format!("RMSprop (lr {lr:.1e})"),
            Learner::Adam { lr } => format!("Adam (lr {lr:.1e})"),
            Learner::Oracle => "oracle rule (true curvatures)".into(),
            Learner::Derived { beta, .. } => {
                format!("derived rule, estimated curvature (β = {beta})")
            }
        }
    }
}

/// Monte Carlo results of one learner.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Mean of J over paths.
    pub cost: f64,
    /// Its standard error.
    pub stderr: f64,
    /// Per path J (for paired comparisons under common random numbers).
    pub costs: Vec<f64>,
    /// Mean loss at every `record`-th step (from step 0).
    pub loss_curve: Vec<f64>,
    /// Mean relative error `|ĥ − h|/h` of the curvature estimate over the second half of the
    /// path (derived rule only; 0 otherwise).
    pub estimate_error: f64,
}

/// Runs `paths` paths of `learner` (path `j` uses stream `(seed, j)`), recording the mean
/// loss every `record` steps.
pub fn simulate(
    model: &NoisyQuadratic,
    learner: Learner,
    paths: usize,
    seed: u64,
    record: usize,
) -> Outcome {
    let record = record.max(1);
    let points = model.steps / record + 1;
    let per_path: Vec<(f64, Vec<f64>, f64)> = (0..paths as u64)
        .into_par_iter()
        .map(|j| path(model, learner, seed, j, record, points))
        .collect();
    let n = paths.max(1) as f64;
    let costs: Vec<f64> = per_path.iter().map(|p| p.0).collect();
    let cost = costs.iter().sum::<f64>() / n;
    let var = costs.iter().map(|c| (c - cost).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let mut loss_curve = vec![0.0; points];
    for p in &per_path {
        for (a, b) in loss_curve.iter_mut().zip(&p.1) {
            *a += b / n;
        }
    }
    Outcome {
        cost,
        stderr: (var / n).sqrt(),
        costs,
        loss_curve,
        estimate_error: per_path.iter().map(|p| p.2).sum::<f64>() / n,
    }
}

fn path(
    model: &NoisyQuadratic,
    learner: Learner,
    seed: u64,
    j: u64,
    record: usize,
    points: usize,
) -> (f64, Vec<f64>, f64) {
    let d = model.curvatures.len();
    let h = &model.curvatures;
    let mut rng = PathStream::new(seed, j);
    let mut theta = model.theta0.clone();
    let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
    let loss = |th: &[f64]| 0.5 * th.iter().zip(h).map(|(x, h)| h * x * x).sum::<f64>();
    let oracle: Vec<f64> = h
        .iter()
        .map(|&h| normalised_rate(model.eta, model.k, model.gamma, h))
        .collect();
    let mut curve = Vec::with_capacity(points);
    let (mut cost, mut est_err, mut est_n) = (0.0, 0.0, 0usize);
    let sigma2 = model.noise * model.noise;
    let batch = model.batch.max(1);
    for n in 0..model.steps {
        let l = loss(&theta);
        if n % record == 0 {
            curve.push(l);
        }
        let mut speed2 = 0.0;
        let step = (n + 1) as i32;
        for i in 0..d {
            // The minibatch: M samples; every learner steps on their mean, the derived rule
            // also reads their sample variance. With M = 1 a single draw (no variance).
            let (g, sample_var) = if batch == 1 {
                (
                    h[i] * theta[i] + model.noise * h[i].sqrt() * rng.normal(),
                    f64::NAN,
                )
            } else {
                let (mut sum, mut sum2) = (0.0, 0.0);
                for _ in 0..batch {
                    let xi = rng.normal();
                    sum += xi;
                    sum2 += xi * xi;
                }
                let mean = sum / batch as f64;
                let var = (sum2 - batch as f64 * mean * mean) / (batch as f64 - 1.0);
                (
                    h[i] * theta[i] + model.noise * h[i].sqrt() * mean,
                    var * sigma2 * h[i],
                )
            };
            let delta = match learner {
                Learner::Sgd { lr } => -lr * g,
                Learner::Momentum { lr, momentum } => {
                    a[i] = momentum * a[i] + g;
                    -lr * a[i]
                }
                Learner::RmsProp { lr, beta2 } => {
                    a[i] = beta2 * a[i] + (1.0 - beta2) * g * g;
                    -lr * g / (a[i].sqrt() + 1e-8)
                }
                Learner::Adam { lr } => {
                    a[i] = 0.9 * a[i] + 0.1 * g;
                    b[i] = 0.999 * b[i] + 0.001 * g * g;
                    let mh = a[i] / (1.0 - 0.9f64.powi(step));
                    let vh = b[i] / (1.0 - 0.999f64.powi(step));
                    -lr * mh / (vh.sqrt() + 1e-8)
                }
                Learner::Oracle => -model.dt * oracle[i] * g,
                Learner::Derived { beta, noise_belief } => {
                    // Without a sample variance (M = 1) the estimate is a unit curvature.
                    let assumed = sigma2 * noise_belief * noise_belief;
                    let v = if sample_var.is_nan() {
                        assumed
                    } else {
                        sample_var
                    };
                    a[i] = beta * a[i] + (1.0 - beta) * v / assumed;
                    let est = (a[i] / (1.0 - beta.powi(step))).max(1e-12);
                    if 2 * n >= model.steps {
                        est_err += (est - h[i]).abs() / h[i];
                        est_n += 1;
                    }
                    -model.dt * normalised_rate(model.eta, model.k, model.gamma, est) * g
                }
            };
            theta[i] += delta;
            speed2 += delta * delta;
        }
        let w = model.dt * (-model.gamma * n as f64 * model.dt).exp();
        cost += w * (speed2 / (2.0 * model.eta * model.dt * model.dt) + model.k * l);
    }
    if model.steps % record == 0 {
        curve.push(loss(&theta));
    }
    curve.resize(points, loss(&theta));
    (cost, curve, est_err / est_n.max(1) as f64)
}

/// Exact expectations of SGD with a per-step learning-rate schedule on the model (no Monte
/// Carlo: the model is linear–Gaussian, so each coordinate's mean `m` and second moment `q`
/// follow `m ← (1 − lr·h)m`, `q ← (1 − lr·h)²q + lr²σ²h/M`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledExpectation {
    /// `E[L(θ_n)]` for `n = 0..=steps`.
    pub losses: Vec<f64>,
    /// `E[J]`, the discretised objective of the model (kinetic and loss terms, discounted).
    pub cost: f64,
}

/// [`ScheduledExpectation`] of SGD stepping `θ ← θ − rates[n]·g` for `model.steps` steps
/// (the last rate is kept past the end of `rates`; an empty schedule is a zero rate).
pub fn scheduled_sgd_expectation(model: &NoisyQuadratic, rates: &[f64]) -> ScheduledExpectation {
    let h = &model.curvatures;
    let noise = model.noise * model.noise / model.batch.max(1) as f64;
    let mut q: Vec<f64> = model.theta0.iter().map(|x| x * x).collect();
    let loss = |q: &[f64]| 0.5 * q.iter().zip(h).map(|(q, h)| h * q).sum::<f64>();
    let mut losses = Vec::with_capacity(model.steps + 1);
    let mut cost = 0.0;
    for n in 0..model.steps {
        let lr = rates.get(n).or(rates.last()).copied().unwrap_or(0.0);
        let l = loss(&q);
        losses.push(l);
        let mut speed2 = 0.0;
        for (qi, &hi) in q.iter_mut().zip(h) {
            // E[Δθ²] = lr²(h²q + σ²h/M): the drift and the noise are uncorrelated.
            speed2 += lr * lr * (hi * hi * *qi + noise * hi);
            *qi = (1.0 - lr * hi).powi(2) * *qi + lr * lr * noise * hi;
        }
        let w = model.dt * (-model.gamma * n as f64 * model.dt).exp();
        cost += w * (speed2 / (2.0 * model.eta * model.dt * model.dt) + model.k * l);
    }
    losses.push(loss(&q));
    ScheduledExpectation { losses, cost }
}

/// Mean and standard error of the paired differences `a[j] − b[j]` (per-path costs under
/// common random numbers).
pub fn paired_difference(a: &[f64], b: &[f64]) -> (f64, f64) {
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len().max(1) as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

/// The learning rate among `grid` with the lowest mean J of `make(lr)` on `paths` paths of
/// `seed` (tune on one seed, compare on another: no selection bias in the comparison);
/// `None` if the grid is empty or every rate diverges.
pub fn tune(
    model: &NoisyQuadratic,
    make: impl Fn(f64) -> Learner,
    grid: &[f64],
    paths: usize,
    seed: u64,
) -> Option<f64> {
    grid.iter()
        .map(|&lr| (lr, simulate(model, make(lr), paths, seed, model.steps).cost))
        .filter(|(_, c)| c.is_finite())
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(lr, _)| lr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_in_one_dimension_matches_the_noiseless_closed_form() {
        // No noise, one coordinate: θ_{n+1} = (1 − Δt·r)θ_n, so J is a geometric sum.
        let mut m = NoisyQuadratic::log_spaced(1, 2.0, 2.0, 0.0);
        m.steps = 4000;
        let out = simulate(&m, Learner::Oracle, 1, 0, 100);
        let r = normalised_rate(1.0, 1.0, 1.0, 2.0) * 2.0;
        let q = (1.0 - m.dt * r).powi(2) * (-m.gamma * m.dt).exp();
        let per_step = m.dt * (r * r / 2.0 + 1.0);
        let exact = per_step * (1.0 - q.powi(m.steps as i32)) / (1.0 - q);
        assert!(
            (out.cost - exact).abs() < 1e-12 * exact,
            "{} vs {exact}",
            out.cost
        );
    }

    /// The exact expectation of scheduled SGD against the Monte Carlo of the same learner at
    /// a constant rate (20000 paths, seed 5): the cost within 4 standard errors, and the
    /// expected loss curve within 5 %. A path's loss is a sum of five scaled squared
    /// Gaussians, whose relative standard deviation is at most √2, so the curve's relative
    /// standard error is at most √2/√20000 = 1 %: 5 % is 5 of them.
    #[test]
    fn scheduled_expectation_matches_the_monte_carlo() {
        let mut m = NoisyQuadratic::log_spaced(5, 0.1, 10.0, 0.5);
        m.steps = 300;
        m.batch = 3;
        let lr = 0.05;
        let exact = scheduled_sgd_expectation(&m, &[lr]);
        let mc = simulate(&m, Learner::Sgd { lr }, 20_000, 5, 50);
        let z = (mc.cost - exact.cost) / mc.stderr;
        assert!(
            z.abs() < 4.0,
            "cost {} vs exact {}: {z:.2} SE",
            mc.cost,
            exact.cost
        );
        for (j, l) in mc.loss_curve.iter().enumerate() {
            let e = exact.losses[50 * j];
            assert!((l - e).abs() < 0.05 * e, "step {}: {l} vs {e}", 50 * j);
        }
        // A schedule that is zero after the first step freezes the moments there.
        let frozen = scheduled_sgd_expectation(&m, &[lr, 0.0]);
        assert!(frozen.losses[2..].iter().all(|&l| l == frozen.losses[1]));
    }
}
