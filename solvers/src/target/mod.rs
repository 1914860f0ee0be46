//! The target of an infinite-horizon problem: the equilibrium, the stable manifold of its
//! linearisation, and what follows from them (truncation time, graded mesh, linearised
//! solution, tail cost). Shared by every solver of infinite-horizon problems.
//!
//! Owns: [`equilibrium`] (Newton on the Hamiltonian field), [`riccati`] (the stable subspace
//! by the matrix sign function), the [`Target`] built from them, and [`terminal_value`] (what a
//! path's end adds to `J`). Uses: the error and solution vocabulary only. Used by all three
//! methods and by `certify/`.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::{End, Problem};

use crate::error::SolverError;

pub mod equilibrium;
pub mod riccati;

use crate::solution::Tail;
use equilibrium::find_equilibrium;
use riccati::stable_subspace;

/// Up to this `D`, [`Target::linear_path`] forms the dense exponential at every time.
pub const DENSE_EXP_MAX_DIM: usize = 16;

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
        let rates = closed_loop_rates(&sub.closed_loop);
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

    /// The linearised solution at each of the ascending `times` after leaving `from`, as
    /// `(θ, p)` per time, flattened: [`Target::linear`] at every time. Up to
    /// [`DENSE_EXP_MAX_DIM`] the dense exponential is formed per time; above it `e^{KΔt}`
    /// acts on the previous point (truncated Taylor series on vectors, substeps of
    /// `‖KΔt‖₁ ≤ 1/2`): `O(D²)` per matrix–vector product instead of `O(D³)` per time, which
    /// was 93 % of a direct infinite-horizon solve at `D = 500` (201 exponentials).
    pub fn linear_path(&self, times: &[f64], from: &[f64]) -> Vec<f64> {
        let d = self.theta_star.len();
        if d <= DENSE_EXP_MAX_DIM {
            return times.iter().flat_map(|&t| self.linear(t, from)).collect();
        }
        let k_norm = (0..d)
            .map(|j| {
                self.closed_loop
                    .column(j)
                    .iter()
                    .map(|v| v.abs())
                    .sum::<f64>()
            })
            .fold(0.0, f64::max);
        let mut delta =
            DVector::from_iterator(d, from.iter().zip(&self.theta_star).map(|(a, b)| a - b));
        let mut at = 0.0;
        let mut out = Vec::with_capacity(times.len() * 2 * d);
        for &t in times {
            let dt = t - at;
            debug_assert!(dt >= 0.0, "times must ascend from 0");
            let substeps = (2.0 * k_norm * dt).ceil().max(1.0) as usize;
            let h = dt / substeps as f64;
            for _ in 0..substeps {
                // e^{Kh}δ = Σ (Kh)ʲδ/j!, ‖Kh‖ ≤ 1/2: 50 terms reach far below rounding.
                let mut term = delta.clone();
                let mut sum = delta.clone();
                for j in 1..50 {
                    term = &self.closed_loop * &term * (h / j as f64);
                    sum += &term;
                    if term.amax() <= f64::EPSILON * 1e-3 * sum.amax() {
                        break;
                    }
                }
                delta = sum;
            }
            at = t;
            let p = -(&self.riccati * &delta) * self.eta;
            out.extend((0..d).map(|j| self.theta_star[j] + delta[j]));
            out.extend((0..d).map(|j| self.p_star[j] + p[j]));
        }
        out
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

/// Eigenvalues of the closed-loop matrix `K` (they set the truncation time): faer's blocked
/// Schur decomposition from `D = 64` (as the rest of the target), nalgebra's below (whose rounding small problems keep)
/// and wherever faer's does not converge.
fn closed_loop_rates(k: &DMatrix<f64>) -> Vec<nalgebra::Complex<f64>> {
    if 2 * k.nrows() >= crate::target::riccati::BLOCKED_MIN_ORDER {
        let kf = faer::Mat::<f64>::from_fn(k.nrows(), k.ncols(), |i, j| k[(i, j)]);
        if let Ok(z) = kf.eigenvalues() {
            return z
                .into_iter()
                .map(|z| nalgebra::Complex::new(z.re, z.im))
                .collect();
        }
    }
    k.complex_eigenvalues().iter().copied().collect()
}

/// The terminal term before discounting: `Φ(θ(T))` for a free end with terminal cost, the
/// linearised tail value for an infinite horizon, 0 otherwise.
pub(crate) fn terminal_value(
    problem: &Problem,
    target: Option<&Target>,
    theta_end: &[f64],
    t_end: f64,
) -> f64 {
    match (target, problem.end()) {
        (Some(target), _) => target.tail_value(theta_end),
        (
            None,
            End::Free {
                terminal_cost: Some(c),
            },
        ) => c.value(theta_end, t_end),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lossnav_problems::{Affine, Horizon, Lagrangian, Quadratic};

    /// The stepped action of `e^{Kt}` (above `DENSE_EXP_MAX_DIM`) against the dense
    /// exponential at each time, on a non-normal closed loop (a rotational drift) of D = 24
    /// over times up to 40 with uneven gaps: each substep's Taylor remainder is below rounding,
    /// so the error is rounding accumulated over ~10² substeps; 1e-12 of the start's size.
    #[test]
    fn stepped_linear_path_matches_the_dense_exponential() {
        let d = 24;
        let h = nalgebra::DMatrix::from_fn(d, d, |i, j| {
            if i == j {
                1.0 + 0.5 * (i as f64 / d as f64)
            } else {
                0.0
            }
        });
        let a = nalgebra::DMatrix::from_fn(d, d, |i, j| {
            if i + 1 == j {
                0.8
            } else if j + 1 == i {
                -0.8
            } else {
                0.0
            }
        });
        let loss = Quadratic::new(h, nalgebra::DVector::zeros(d)).unwrap();
        let drift = Affine::new(a, nalgebra::DVector::zeros(d)).unwrap();
        let theta0 = nalgebra::DVector::from_fn(d, |i, _| (1.0 + i as f64).sin());
        let problem = Problem::new(
            Lagrangian::new(loss).with_drift(drift).with_gamma(0.3),
            theta0.clone(),
            Horizon::Infinite,
            End::Equilibrium { guess: None },
        )
        .unwrap();
        let target = Target::new(&problem).unwrap();
        let times = [0.0, 0.01, 0.3, 0.31, 2.0, 7.5, 40.0];
        let path = target.linear_path(&times, theta0.as_slice());
        for (i, &t) in times.iter().enumerate() {
            let dense = target.linear(t, theta0.as_slice());
            for (a, b) in path[i * 2 * d..(i + 1) * 2 * d].iter().zip(&dense) {
                assert!((a - b).abs() < 1e-12, "t = {t}: {a} vs {b}");
            }
        }
    }
}
