//! The target of an infinite-horizon problem: the equilibrium, the stable manifold of its
//! linearisation, and what follows from them (truncation time, graded mesh, linearised
//! solution, tail cost). Shared by every solver of infinite-horizon problems.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::{End, Problem};

use crate::equilibrium::find_equilibrium;
use crate::error::SolverError;
use crate::riccati::stable_subspace;
use crate::solution::Tail;

/// The equilibrium approached and its linearisation.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub theta_star: Vec<f64>,
    pub p_star: Vec<f64>,
    pub riccati: DMatrix<f64>,
    pub closed_loop: DMatrix<f64>,
    /// Slowest non-zero closed-loop decay rate.
    pub slow: f64,
    /// Running cost `ℓ*` of resting at the equilibrium.
    pub running_cost: f64,
    pub eta: f64,
    pub gamma: f64,
}

impl Target {
    /// Finds the equilibrium of an infinite-horizon problem and linearises there.
    pub fn new(problem: &Problem) -> Result<Self, SolverError> {
        let lag = problem.lagrangian();
        if lag.loss().is_time_dependent() || lag.drift().is_time_dependent() {
            return Err(SolverError::Unsupported(
                "an infinite horizon needs a time-independent loss and drift (an equilibrium)"
                    .into(),
            ));
        }
        let guess = match problem.end() {
            End::Equilibrium { guess } => guess.clone(),
            _ => {
                return Err(SolverError::Unsupported(
                    "an infinite horizon needs an equilibrium end condition".into(),
                ))
            }
        };
        let eq = find_equilibrium(lag, problem.theta0(), guess.as_ref())?;
        let sub = stable_subspace(&eq.jacobian, lag.gamma(), lag.eta())?;
        // Zero closed-loop rates belong to directions that do not move at all (uncontrollable,
        // or flat with nothing to gain); they are exact in the projection and set no time scale.
        let rates = sub.closed_loop.complex_eigenvalues();
        let largest = rates.iter().map(|z| z.norm()).fold(0.0_f64, f64::max);
        let moving: Vec<f64> = rates
            .iter()
            .filter(|z| z.norm() > 1e-10 * (1.0 + largest))
            .map(|z| -z.re)
            .collect();
        let slow = if moving.is_empty() {
            1.0
        } else {
            moving.iter().copied().fold(f64::INFINITY, f64::min)
        };
        if slow.is_nan() || slow <= 0.0 {
            return Err(SolverError::Unsupported(format!(
                "the equilibrium θ* = {:?} is not attracting (slowest closed-loop rate {slow:.3e}); \
                 optimal trajectories do not approach it",
                eq.theta.as_slice()
            )));
        }
        let theta_star = eq.theta.as_slice().to_vec();
        let p_star = eq.p.as_slice().to_vec();
        let running_cost =
            lag.potential(&theta_star, 0.0) + lag.kinetic_from_momentum(&theta_star, &p_star);
        Ok(Self {
            theta_star,
            p_star,
            riccati: sub.riccati,
            closed_loop: sub.closed_loop,
            slow,
            running_cost,
            eta: lag.eta(),
            gamma: lag.gamma(),
        })
    }

    /// How close `θ(T)` must come to `θ*` for the neglected nonlinearity (quadratic in the
    /// distance) to stay below `tol`.
    pub fn gap_target(&self, tol: f64) -> f64 {
        let scale = 1.0 + self.theta_star.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        0.1 * tol.sqrt() * scale
    }

    /// `max |θ - θ*|`.
    pub fn gap(&self, theta: &[f64]) -> f64 {
        theta
            .iter()
            .zip(&self.theta_star)
            .fold(0.0_f64, |m, (a, b)| m.max((a - b).abs()))
    }

    /// First truncation time: the linearisation brings `θ0` within the gap target.
    pub fn initial_truncation(&self, theta0: &[f64], tol: f64) -> f64 {
        let target = self.gap_target(tol);
        (self.gap(theta0).max(target) / target).ln().max(3.0) / self.slow
    }

    /// Mesh on `[0, t_end]` with `m` intervals that equidistribute the error of a
    /// fourth-order method on the slowest mode: the error density `h⁴|θ⁗| ∝ h⁴e^{-rt}` is level
    /// when `h ∝ e^{rt/4}`, i.e. `∫ e^{-rt/4} dt` is shared equally.
    pub fn graded_mesh(&self, t_end: f64, m: usize) -> Vec<f64> {
        let rate = self.slow / 4.0;
        let total = 1.0 - (-rate * t_end).exp();
        (0..=m)
            .map(|i| {
                if i == m {
                    t_end
                } else {
                    -(1.0 - total * i as f64 / m as f64).ln() / rate
                }
            })
            .collect()
    }

    /// The linearised solution `(θ, p)` a time `t` after leaving `from`.
    pub fn linear(&self, t: f64, from: &[f64]) -> Vec<f64> {
        let d = self.theta_star.len();
        let delta0 =
            DVector::from_iterator(d, from.iter().zip(&self.theta_star).map(|(a, b)| a - b));
        let delta = (&self.closed_loop * t).exp() * delta0;
        let p = -(&self.riccati * &delta) * self.eta;
        (0..d)
            .map(|j| self.theta_star[j] + delta[j])
            .chain((0..d).map(|j| self.p_star[j] + p[j]))
            .collect()
    }

    /// Whether costs are reported relative to resting at the equilibrium (`γ = 0`).
    pub fn relative(&self) -> bool {
        self.gamma == 0.0
    }

    /// Value of the tail beyond the truncation, undiscounted to time `T`: the linearisation's
    /// relative value `-p*ᵀδ/η + ½δᵀPδ` plus `ℓ*/γ` when costs are absolute.
    pub fn tail_value(&self, theta_end: &[f64]) -> f64 {
        let d = self.theta_star.len();
        let delta = DVector::from_iterator(
            d,
            theta_end.iter().zip(&self.theta_star).map(|(a, b)| a - b),
        );
        let p_star = DVector::from_column_slice(&self.p_star);
        let v_rel = -p_star.dot(&delta) / self.eta + 0.5 * delta.dot(&(&self.riccati * &delta));
        let rest = if self.relative() {
            0.0
        } else {
            self.running_cost / self.gamma
        };
        v_rel + rest
    }

    /// Exact gradient of [`Target::tail_value`] with respect to `θ(T)`: `-p*/η + Pδ`.
    pub fn tail_gradient(&self, theta_end: &[f64], out: &mut [f64]) {
        let d = self.theta_star.len();
        for (i, o) in out.iter_mut().enumerate() {
            let pd: f64 = (0..d)
                .map(|j| self.riccati[(i, j)] * (theta_end[j] - self.theta_star[j]))
                .sum();
            *o = -self.p_star[i] / self.eta + pd;
        }
    }

    /// The public description of the tail for a solution truncated at `truncation`.
    pub fn tail(&self, truncation: f64) -> Tail {
        Tail {
            theta_star: DVector::from_column_slice(&self.theta_star),
            p_star: DVector::from_column_slice(&self.p_star),
            riccati: self.riccati.clone(),
            closed_loop: self.closed_loop.clone(),
            truncation,
            equilibrium_running_cost: self.running_cost,
            eta: self.eta,
            slowest_rate: self.slow,
        }
    }
}
