//! Learning across task switches with belief updates (docs/theory.md §6): a Monte Carlo of learners
//! that see noisy gradients of a task whose minimum switches at rate λ.
//!
//! One coordinate (directions of a diagonal problem are independent): `L = ½h(θ − μ_t)²`, μ_t
//! switching at Poisson times to fresh draws from `N(μ0, S0)`, gradients seen as
//! `dy = h(θ − μ)dt + √r dW`. A learner keeps a belief `(m, v)` about the current minimum:
//! between observations it relaxes toward the prior at the hazard rate,
//! `dm = −λ(m − μ0)dt`, `dv = λ(S0 − v + (m − μ0)²)dt` (the exact moments of §6, applied to the
//! belief), and gradient evidence moves it with the gain `κ = vh/r`,
//! `dm −= κ(dy − h(θ − m)dt)`, `dv −= κ²r dt`: uncertain weights are more plastic.
//!
//! The learners compared, all with the same switches and noise (common random numbers):
//! - `Derived`: the rule of §6 with its belief, `θ̇ = −R[(θ − μ0) − ρ(m − μ0)]`;
//! - `NoTaskUncertainty`: the same learner believing tasks never switch (λ = 0 in its belief
//!   and rule: `θ̇ = −R(θ − m)`), whose belief variance only shrinks;
//! - `GradientFlow`: `θ̇ = −(ηk/γ)·h(θ − m)` on its (task-aware) belief;
//! - `ResetOnDetection`: the λ = 0 learner that resets θ and its belief to the initialisation
//!   when an exponential average of the innovations exceeds 4 of its standard deviations.

use rayon::prelude::*;

use super::random::PathStream;

/// The task and observation process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContinualSetup {
    /// Curvature `h`.
    pub h: f64,
    /// η.
    pub eta: f64,
    /// k.
    pub k: f64,
    /// γ (> 0: the discounted cost is finite).
    pub gamma: f64,
    /// Hazard λ of task switches.
    pub hazard: f64,
    /// Prior mean μ0 of a fresh minimum (and the initialisation θ0).
    pub prior_mean: f64,
    /// Prior variance S0.
    pub prior_var: f64,
    /// The first task's minimum (known at t = 0).
    pub first_minimum: f64,
    /// Gradient-noise rate `r`.
    pub noise: f64,
}

/// A learner of [`ContinualSetup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learner {
    /// The derived rule with its task-aware belief.
    Derived,
    /// The rule and belief of a learner that assumes no switches.
    NoTaskUncertainty,
    /// Gradient flow at rate ηk/γ on the task-aware belief.
    GradientFlow,
    /// The no-switch learner with resets when a switch is detected.
    ResetOnDetection,
}

/// A learner's parameter and belief about the current minimum at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeliefState {
    /// θ.
    pub theta: f64,
    /// Belief mean m.
    pub mean: f64,
    /// Belief variance v.
    pub variance: f64,
}

/// Called at every step with the step, the time, the true minimum and every learner's state.
type Recorder<'a> = &'a mut dyn FnMut(usize, f64, f64, &[BeliefState]);

/// One recorded path ([`ContinualSetup::trace`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Times.
    pub t: Vec<f64>,
    /// The current task's minimum μ(t).
    pub minimum: Vec<f64>,
    /// Per learner, its state at each time.
    pub states: Vec<Vec<BeliefState>>,
}

/// Per-learner results, each with its standard error over paths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Discounted cost `E[J]`.
    pub cost: (f64, f64),
    /// Long-run average loss `(1/T)∫½h(θ − μ)² dt`.
    pub average_loss: (f64, f64),
}

impl ContinualSetup {
    /// The stable rate `r = √(γ²/4 + ηkh) − γ/2` and the pull `ρ = (r + γ)/(r + λ + γ)`.
    pub fn rate_and_pull(&self) -> (f64, f64) {
        let r =
            (self.gamma * self.gamma / 4.0 + self.eta * self.k * self.h).sqrt() - self.gamma / 2.0;
        (r, (r + self.gamma) / (r + self.hazard + self.gamma))
    }

    /// Simulates `paths` paths of every learner in `learners` with the same switches and noise
    /// (path `i` seeded from `(seed, i)`; identical for any thread count), Euler–Maruyama with
    /// step `dt` up to `40/γ`. Returns the outcomes and, per learner, its per-path costs (for
    /// paired comparisons).
    pub fn simulate(
        &self,
        learners: &[Learner],
        paths: usize,
        seed: u64,
        dt: f64,
    ) -> (Vec<Outcome>, Vec<Vec<f64>>) {
        let t_end = 40.0 / self.gamma;
        let steps = (t_end / dt).ceil() as usize;
        let dt = t_end / steps as f64;
        let per_path: Vec<Vec<(f64, f64)>> = (0..paths)
            .into_par_iter()
            .map(|i| self.path(learners, seed, i as u64, steps, dt))
            .collect();
        let n = paths as f64;
        let stats = |values: &[f64]| {
            let mean = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            (mean, (var / n).sqrt())
        };
        let mut outcomes = Vec::new();
        let mut costs = Vec::new();
        for l in 0..learners.len() {
            let c: Vec<f64> = per_path.iter().map(|p| p[l].0).collect();
            let a: Vec<f64> = per_path.iter().map(|p| p[l].1).collect();
            outcomes.push(Outcome {
                cost: stats(&c),
                average_loss: stats(&a),
            });
            costs.push(c);
        }
        (outcomes, costs)
    }

    /// One path of every learner in `learners`, recorded every `every` steps up to `t_end`:
    /// the true minimum and each learner's θ and belief. The path is path `path` of
    /// [`ContinualSetup::simulate`] with the same `seed` and `dt` (the same switches and
    /// noise).
    pub fn trace(
        &self,
        learners: &[Learner],
        seed: u64,
        path: u64,
        dt: f64,
        t_end: f64,
        every: usize,
    ) -> Trace {
        let steps = (t_end / dt).ceil() as usize;
        let dt = t_end / steps as f64;
        let every = every.max(1);
        let mut trace = Trace {
            t: Vec::new(),
            minimum: Vec::new(),
            states: vec![Vec::new(); learners.len()],
        };
        let mut record = |n: usize, t: f64, mu: f64, states: &[BeliefState]| {
            if n % every == 0 {
                trace.t.push(t);
                trace.minimum.push(mu);
                for (out, s) in trace.states.iter_mut().zip(states) {
                    out.push(*s);
                }
            }
        };
        self.path_with(learners, seed, path, steps, dt, Some(&mut record));
        trace
    }

    /// One path: the same switch times and noise for every learner.
    fn path(
        &self,
        learners: &[Learner],
        seed: u64,
        path: u64,
        steps: usize,
        dt: f64,
    ) -> Vec<(f64, f64)> {
        self.path_with(learners, seed, path, steps, dt, None)
    }

    fn path_with(
        &self,
        learners: &[Learner],
        seed: u64,
        path: u64,
        steps: usize,
        dt: f64,
        mut record: Option<Recorder<'_>>,
    ) -> Vec<(f64, f64)> {
        let mut rng = PathStream::new(seed, path);
        let (rate, rho) = self.rate_and_pull();
        let (mu0, s0, h, r, lambda) = (
            self.prior_mean,
            self.prior_var,
            self.h,
            self.noise,
            self.hazard,
        );
        let sqrt_dt = dt.sqrt();
        // The shared randomness of the path: switch times and minima, and the noise increments.
        let mut mu = self.first_minimum;
        let mut next_switch = rng.exponential() / lambda;
        struct State {
            theta: f64,
            m: f64,
            v: f64,
            ema: f64,
            cost: f64,
            loss: f64,
        }
        let mut states: Vec<State> = learners
            .iter()
            .map(|_| State {
                theta: mu0,
                m: self.first_minimum,
                v: 0.0,
                ema: 0.0,
                cost: 0.0,
                loss: 0.0,
            })
            .collect();
        // Innovation average over a time scale of 1: its standard deviation is √(r/2).
        let (tau, threshold) = (1.0, 4.0 * (r / 2.0).sqrt());
        for n in 0..steps {
            let t = n as f64 * dt;
            while next_switch <= t {
                mu = mu0 + s0.sqrt() * rng.normal();
                next_switch += rng.exponential() / lambda;
            }
            if let Some(record) = record.as_mut() {
                let snapshot: Vec<BeliefState> = states
                    .iter()
                    .map(|s| BeliefState {
                        theta: s.theta,
                        mean: s.m,
                        variance: s.v,
                    })
                    .collect();
                record(n, t, mu, &snapshot);
            }
            let dw = rng.normal() * sqrt_dt;
            let discount = (-self.gamma * t).exp();
            for (state, learner) in states.iter_mut().zip(learners) {
                let aware = matches!(learner, Learner::Derived | Learner::GradientFlow);
                let velocity = match learner {
                    Learner::Derived => -rate * ((state.theta - mu0) - rho * (state.m - mu0)),
                    Learner::NoTaskUncertainty | Learner::ResetOnDetection => {
                        -rate * (state.theta - state.m)
                    }
                    Learner::GradientFlow => {
                        -(self.eta * self.k / self.gamma) * h * (state.theta - state.m)
                    }
                };
                let dev = state.theta - mu;
                state.cost += discount
                    * (velocity * velocity / (2.0 * self.eta) + 0.5 * self.k * h * dev * dev)
                    * dt;
                state.loss += 0.5 * h * dev * dev * dt;
                // Observation and belief update (prediction at the hazard, then the evidence).
                let dy = h * dev * dt + r.sqrt() * dw;
                let innovation = dy - h * (state.theta - state.m) * dt;
                let gain = state.v * h / r;
                if aware {
                    let drift_m = -lambda * (state.m - mu0);
                    let drift_v = lambda * (s0 - state.v + (state.m - mu0).powi(2));
                    state.m += drift_m * dt;
                    state.v += drift_v * dt;
                }
                state.m -= gain * innovation;
                state.v = (state.v - gain * gain * r * dt).max(0.0);
                state.theta += velocity * dt;
                if *learner == Learner::ResetOnDetection {
                    state.ema += (innovation - state.ema * dt) / tau;
                    if state.ema.abs() > threshold {
                        // A switch is detected: back to the initialisation and the prior.
                        state.theta = mu0;
                        state.m = mu0;
                        state.v = s0;
                        state.ema = 0.0;
                    }
                }
            }
        }
        let t_end = steps as f64 * dt;
        states.iter().map(|s| (s.cost, s.loss / t_end)).collect()
    }
}
