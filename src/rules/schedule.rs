//! Optimal learning-rate schedules (docs/theory.md §4.1): the effective learning rate along a
//! finite-horizon optimal path.
//!
//! - [`HorizonRate`]: the closed form on a diagonal quadratic with a free end — the rate is
//!   the infinite-horizon one far from the horizon and decays to zero at it, linearly with
//!   slope `ηk/g` whatever the curvature and discount.
//! - [`Schedule`] / [`schedule`]: the per-step learning rates of a discrete optimiser that
//!   follows any solved finite-horizon path, one scalar rate per step (least squares along
//!   the gradient) and, where the cost gate allows, one per curvature direction.
//! - [`compare_on_noisy_quadratic`]: constant, cosine, warmup–stable–decay and the optimal
//!   path's schedule on the noisy quadratic model, each tuned over the same grid.

use lossnav_problems::{Horizon, Problem};
use lossnav_solvers::Solution;
use nalgebra::DMatrix;
use serde::Serialize;

/// The effective learning rate `α(t)` (`θ̇ = −α(t) ∇L`) of one coordinate of a diagonal
/// quadratic `L = ½h(θ − μ)²` with metric `g`, discount `γ`, a finite horizon `T` and a free
/// end without terminal cost:
///
/// `α(t) = (r/h)·(1 − e^{−2λτ})/(1 + ρ e^{−2λτ})`, `τ = T − t`,
/// `λ = √(γ²/4 + ηkh/g)`, `r = λ − γ/2`, `ρ = r/(λ + γ/2)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HorizonRate {
    /// `η`.
    pub eta: f64,
    /// `k`.
    pub k: f64,
    /// `γ`.
    pub gamma: f64,
    /// Curvature `h > 0`.
    pub h: f64,
    /// Metric `g > 0`.
    pub g: f64,
    /// Horizon `T`.
    pub horizon: f64,
}

impl HorizonRate {
    /// `λ = √(γ²/4 + ηkh/g)`: half the rate at which the horizon's influence fades.
    pub fn lambda(&self) -> f64 {
        (self.gamma * self.gamma / 4.0 + self.eta * self.k * self.h / self.g).sqrt()
    }

    /// `ρ = r/(λ + γ/2)` in `[0, 1]`: 1 without discount, → 0 for large γ.
    pub fn rho(&self) -> f64 {
        let l = self.lambda();
        (l - self.gamma / 2.0) / (l + self.gamma / 2.0)
    }

    /// The infinite-horizon rate `r/h` the schedule starts from when `T` is long.
    pub fn stationary(&self) -> f64 {
        (self.lambda() - self.gamma / 2.0) / self.h
    }

    /// `α(t)` for `t ≤ T` (0 at and beyond the horizon).
    pub fn rate(&self, t: f64) -> f64 {
        let tau = (self.horizon - t).max(0.0);
        let e = (-2.0 * self.lambda() * tau).exp();
        self.stationary() * (1.0 - e) / (1.0 + self.rho() * e)
    }

    /// The time before the horizon at which the rate is half the stationary one:
    /// `ln(2 + ρ)/(2λ)` (independent of `T`; `ln 3/(2λ)` without discount, `→ ln 2/γ` for
    /// large γ).
    pub fn half_decay(&self) -> f64 {
        (2.0 + self.rho()).ln() / (2.0 * self.lambda())
    }

    /// `dα/dt` at the horizon: `−ηk/g`, for every curvature and discount.
    pub fn end_slope(&self) -> f64 {
        -self.eta * self.k / self.g
    }

    /// The coordinate's distance to the minimum, `(θ(t) − μ)/(θ0 − μ)`: the optimal path
    /// `a e^{(γ/2+λ)t} + b e^{(γ/2−λ)t}` with `θ̇(T) = 0` (the free end).
    pub fn path(&self, t: f64) -> f64 {
        let l = self.lambda();
        let (up, down) = (self.gamma / 2.0 + l, self.gamma / 2.0 - l);
        // a·up·e^{up T} + b·down·e^{down T} = 0 and a + b = 1: a/b = −(down/up)e^{−2λT}.
        // The first term is written as b·(−down/up)·e^{up·t − 2λT}, which does not overflow
        // for long horizons.
        let c = -down / up;
        let b = 1.0 / (1.0 + c * (-2.0 * l * self.horizon).exp());
        b * (c * (up * t - 2.0 * l * self.horizon).exp() + (down * t).exp())
    }
}

/// The scalar schedule of a diagonal quadratic `L = ½Σhᵢθᵢ²` (G = I, no drift, free end)
/// from the closed-form path, without a solve: per step, `−⟨Δθ, ∇L⟩/‖∇L‖²` as [`schedule`]
/// computes it from a solution (`tests/schedule.rs` checks the two agree). `None` where the
/// gradient vanishes.
pub fn diagonal_scalar_schedule(
    curvatures: &[f64],
    theta0: &[f64],
    eta: f64,
    k: f64,
    gamma: f64,
    horizon: f64,
    steps: usize,
) -> Vec<Option<f64>> {
    let rates: Vec<HorizonRate> = curvatures
        .iter()
        .map(|&h| HorizonRate {
            eta,
            k,
            gamma,
            h,
            g: 1.0,
            horizon,
        })
        .collect();
    let dt = horizon / steps as f64;
    let at = |t: f64| -> Vec<f64> {
        rates
            .iter()
            .zip(theta0)
            .map(|(r, x0)| x0 * r.path(t))
            .collect()
    };
    let mut x = at(0.0);
    (0..steps)
        .map(|n| {
            let t_next = if n + 1 == steps {
                horizon
            } else {
                (n + 1) as f64 * dt
            };
            let next = at(t_next);
            let (mut sg, mut gg) = (0.0, 0.0);
            for ((a, b), h) in next.iter().zip(&x).zip(curvatures) {
                let g = h * b;
                sg += (a - b) * g;
                gg += g * g;
            }
            x = next;
            (gg > 0.0).then(|| -sg / gg)
        })
        .collect()
}

/// The rates of one step along the curvature directions at its start, in the problem's
/// metric: the eigenvectors `u` of `S = M^{1/2} ∇²L M^{1/2}` (`M = G⁻¹`, the mobility), in
/// whose coordinates `θ = M^{1/2}u` the metric is Euclidean. Along each, the rate of the
/// preconditioned step `θ ← θ − lr·M∇L` that the path takes. With `G = I` these are the
/// Hessian's eigenvectors and plain gradient rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DirectionRates {
    /// Eigenvalues of `S` (curvatures in the metric), ascending.
    pub curvature: Vec<f64>,
    /// The rate along each eigenvector: `−⟨M^{-1/2}Δθ, u⟩/⟨M^{1/2}∇L, u⟩` (`None` where the
    /// gradient has no component along `u`, relative to its norm 1e-12).
    pub lr: Vec<Option<f64>>,
}

/// A learning-rate schedule read off an optimal path: step `n` moves from `θ(t_n)` to
/// `θ(t_{n+1})`, `t_n = nT/N`, and a discrete optimiser `θ ← θ − lr_n ∇L(θ)` that uses these
/// rates retraces the path at the steps (exactly where `unexplained` is 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    /// The time step `T/N`.
    pub dt: f64,
    /// The start time of each step.
    pub t: Vec<f64>,
    /// The scalar rate of each step, `−⟨Δθ, ∇L⟩/‖∇L‖²`. `None` at a stationary point, and
    /// where the step is below the solve's resolution (`‖Δθ‖ < 100 ×` [`Schedule::resolution`]):
    /// a ratio of two rounding-level quantities is not a rate.
    pub lr: Vec<Option<f64>>,
    /// `‖Δθ + lr ∇L‖/‖Δθ‖`: the part of each step a scalar rate cannot represent (the path
    /// turns away from the gradient: a preconditioner is needed, see `directions`; a metric or
    /// a drift also turn it).
    pub unexplained: Vec<Option<f64>>,
    /// The largest eigenvalue of `∇²L(θ_n)` (exact for `D ≤` [`DIRECTIONS_MAX_DIM`], else by
    /// power iteration on Hessian–vector products, an estimate from below): plain gradient
    /// descent with rate `lr` is stable only while `lr × max_curvature < 2`.
    pub max_curvature: Vec<Option<f64>>,
    /// Per-direction rates at each step, when `D ≤` [`DIRECTIONS_MAX_DIM`] and the metric is
    /// invertible.
    pub directions: Option<Vec<DirectionRates>>,
    /// The absolute accuracy of the path: the solve's tolerance (or error estimate) times
    /// `1 + max |θ|`.
    pub resolution: f64,
    /// Steps whose rate is undefined because they are below the resolution.
    pub below_resolution: usize,
}

impl Schedule {
    /// The scalar rates with `None` (stationary points, steps below resolution) replaced by 0:
    /// what a training loop steps with.
    pub fn rates(&self) -> Vec<f64> {
        self.lr.iter().map(|r| r.unwrap_or(0.0)).collect()
    }
}

/// Most steps a schedule may have.
pub const SCHEDULE_MAX_STEPS: usize = 1_000_000;
/// Largest dimension for which per-direction rates are computed: each step then costs dense
/// D×D matrices and eigendecompositions, `O(D³)`.
pub const DIRECTIONS_MAX_DIM: usize = 32;
/// Bound on the numbers a schedule holds, `steps × (4 + 2D)` with directions (else
/// `steps × 4`): at most 20 million, about 2 GB with their JSON rendering.
const SCHEDULE_MAX_NUMBERS: usize = 20_000_000;

/// Why a schedule cannot be read off a solution.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// The horizon is infinite: there is no end to decay toward.
    #[error(
        "an infinite horizon has no end to decay toward: the optimal rate is constant in \
         time (`lossnav rule` gives it); give a finite horizon"
    )]
    InfiniteHorizon,
    /// The step count is out of range.
    #[error(
        "steps {steps}: between 1 and {max}, and at most {numbers} numbers in the schedule \
         (steps × (4 + 2D) for D ≤ 32, steps × 4 above)"
    )]
    Steps {
        /// Asked for.
        steps: usize,
        /// The bound.
        max: usize,
        /// The bound on the numbers held.
        numbers: usize,
    },
    /// The path, the loss's gradient or its Hessian is not finite somewhere.
    #[error("the path, the loss's gradient or its Hessian is not finite at t = {0}")]
    NotFinite(f64),
}

/// Whether `steps` steps of a `d`-dimensional path are within the bounds (checked before
/// anything is solved or allocated).
///
/// # Errors
/// [`ScheduleError::Steps`] when they are not.
pub fn check_steps(steps: usize, d: usize) -> Result<(), ScheduleError> {
    let per_step = if d <= DIRECTIONS_MAX_DIM {
        4 + 2 * d
    } else {
        4
    };
    if steps == 0
        || steps > SCHEDULE_MAX_STEPS
        || steps.saturating_mul(per_step) > SCHEDULE_MAX_NUMBERS
    {
        return Err(ScheduleError::Steps {
            steps,
            max: SCHEDULE_MAX_STEPS,
            numbers: SCHEDULE_MAX_NUMBERS,
        });
    }
    Ok(())
}

/// `M^{1/2}` and `M^{-1/2}` of a symmetric positive definite mobility, or `None` when it is
/// not (a singular mobility: partial controllability).
fn mobility_roots(m: &DMatrix<f64>) -> Option<(DMatrix<f64>, DMatrix<f64>)> {
    let eig = nalgebra::SymmetricEigen::new(m.clone());
    let largest = eig.eigenvalues.amax();
    if !(largest.is_finite() && largest > 0.0)
        || eig
            .eigenvalues
            .iter()
            .any(|&l| l.is_nan() || l <= 1e-12 * largest)
    {
        return None;
    }
    let v = &eig.eigenvectors;
    let root = v * DMatrix::from_diagonal(&eig.eigenvalues.map(f64::sqrt)) * v.transpose();
    let inv = v * DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / l.sqrt())) * v.transpose();
    Some((root, inv))
}

/// The largest eigenvalue of `∇²L(θ)` by 60 steps of power iteration on Hessian–vector
/// products from a fixed start (an estimate from below; `O(D)` per product for structured
/// losses, no D×D matrix).
fn largest_curvature(loss: &dyn lossnav_problems::Landscape, theta: &[f64], t: f64) -> f64 {
    let d = theta.len();
    // A fixed, non-uniform start: a uniform one is annihilated by losses of differences alone.
    let mut v: Vec<f64> = (0..d)
        .map(|i| 1.0 + ((i * 7919) % 101) as f64 / 101.0)
        .collect();
    let mut hv = vec![0.0; d];
    let mut estimate = 0.0;
    for _ in 0..60 {
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            return f64::NAN;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        loss.hessian_vector(theta, t, &v, &mut hv);
        estimate = v.iter().zip(&hv).map(|(a, b)| a * b).sum::<f64>();
        std::mem::swap(&mut v, &mut hv);
    }
    estimate
}

/// The schedule of `steps` steps along `solution`, an optimal path of `problem` over its
/// finite horizon.
///
/// # Errors
/// [`ScheduleError`] for an infinite horizon, a step count out of range or a non-finite path.
pub fn schedule(
    problem: &Problem,
    solution: &Solution,
    steps: usize,
) -> Result<Schedule, ScheduleError> {
    let Horizon::Finite(horizon) = problem.horizon() else {
        return Err(ScheduleError::InfiniteHorizon);
    };
    let d = problem.dim();
    check_steps(steps, d)?;
    let lag = problem.lagrangian();
    let loss = lag.loss();
    let dt = horizon / steps as f64;
    let scale = 1.0
        + solution
            .theta
            .iter()
            .flatten()
            .fold(0.0_f64, |m, v| m.max(v.abs()));
    let accuracy = match solution.accuracy {
        lossnav_solvers::Accuracy::Met { estimate, tol, .. } => tol.max(estimate),
        lossnav_solvers::Accuracy::FixedMeshAbove { estimate, .. } => estimate,
        _ => 1e-8,
    };
    let resolution = accuracy.max(1e-14) * scale;
    let small = d <= DIRECTIONS_MAX_DIM;
    // The mobility's square roots, once for a constant metric.
    let mut mobility = DMatrix::zeros(d, d);
    let constant_roots = if small && lag.metric().is_constant() {
        lag.metric().mobility(&solution.eval(0.0).0, &mut mobility);
        mobility_roots(&mobility)
    } else {
        None
    };
    let with_directions = small
        && lag.metric().is_invertible()
        && (!lag.metric().is_constant() || constant_roots.is_some());
    let mut out = Schedule {
        dt,
        t: Vec::with_capacity(steps),
        lr: Vec::with_capacity(steps),
        unexplained: Vec::with_capacity(steps),
        max_curvature: Vec::with_capacity(steps),
        directions: with_directions.then(|| Vec::with_capacity(steps)),
        resolution,
        below_resolution: 0,
    };
    let mut grad = vec![0.0; d];
    let mut hess = DMatrix::zeros(d, d);
    let mut theta = solution.eval(0.0).0;
    for n in 0..steps {
        let t = n as f64 * dt;
        // The last step ends exactly at T, not at n·dt rounded.
        let t_next = if n + 1 == steps {
            horizon
        } else {
            (n + 1) as f64 * dt
        };
        let next = solution.eval(t_next).0;
        loss.gradient(&theta, t, &mut grad);
        if theta
            .iter()
            .chain(&next)
            .chain(&grad)
            .any(|v| !v.is_finite())
        {
            return Err(ScheduleError::NotFinite(t));
        }
        let step: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let gg: f64 = grad.iter().map(|g| g * g).sum();
        let sg: f64 = step.iter().zip(&grad).map(|(s, g)| s * g).sum();
        let ss: f64 = step.iter().map(|s| s * s).sum();
        let resolved = ss.sqrt() >= 100.0 * resolution;
        if !resolved {
            out.below_resolution += 1;
        }
        let lr = (gg > 0.0 && resolved).then(|| -sg / gg);
        let unexplained = lr.and_then(|lr| {
            let r: f64 = step
                .iter()
                .zip(&grad)
                .map(|(s, g)| (s + lr * g).powi(2))
                .sum();
            (ss > 0.0).then(|| (r / ss).sqrt())
        });
        out.t.push(t);
        out.lr.push(lr);
        out.unexplained.push(unexplained);
        if small {
            loss.hessian(&theta, t, &mut hess);
            // nalgebra's eigensolvers need not end on non-finite input.
            if hess.iter().any(|v| !v.is_finite()) {
                return Err(ScheduleError::NotFinite(t));
            }
            let plain = hess.clone().symmetric_eigenvalues();
            out.max_curvature.push(Some(plain.max()));
        } else {
            let h = largest_curvature(loss, &theta, t);
            out.max_curvature.push(h.is_finite().then_some(h));
        }
        if let Some(dirs) = out.directions.as_mut() {
            // A constant metric's roots are borrowed; a varying one's computed at this step.
            let step_roots;
            let roots = match &constant_roots {
                Some(r) => Some(r),
                None => {
                    lag.metric().mobility(&theta, &mut mobility);
                    step_roots = mobility_roots(&mobility);
                    step_roots.as_ref()
                }
            };
            let Some((root, inv)) = roots else {
                // The metric lost definiteness at this step: no directions for the schedule.
                out.directions = None;
                theta = next;
                continue;
            };
            let s_mat = root * &hess * root;
            let eig = nalgebra::SymmetricEigen::new((&s_mat + s_mat.transpose()) * 0.5);
            let mut order: Vec<usize> = (0..d).collect();
            order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
            let g_u = root * nalgebra::DVector::from_column_slice(&grad);
            let s_u = inv * nalgebra::DVector::from_column_slice(&step);
            let gnorm = g_u.norm();
            let (mut curvature, mut rates) = (Vec::with_capacity(d), Vec::with_capacity(d));
            for j in order {
                let u = eig.eigenvectors.column(j);
                let gu = u.dot(&g_u);
                let su = u.dot(&s_u);
                curvature.push(eig.eigenvalues[j]);
                rates.push((resolved && gu.abs() > 1e-12 * gnorm).then(|| -su / gu));
            }
            dirs.push(DirectionRates {
                curvature,
                lr: rates,
            });
        }
        theta = next;
    }
    Ok(out)
}

/// One schedule of [`compare_on_noisy_quadratic`], tuned.
#[derive(Debug, Clone, PartialEq)]
pub struct TunedSchedule {
    /// The family.
    pub name: &'static str,
    /// What was tuned (`lr`, `peak lr`, `ηk`).
    pub knob: &'static str,
    /// Its best value on the grid.
    pub tuned: f64,
    /// The rates at that value.
    pub rates: Vec<f64>,
    /// `E[L(θ_n)]`, `n = 0..=steps`, exact.
    pub losses: Vec<f64>,
}

/// Steps of every run of [`compare_on_noisy_quadratic`].
pub const COMPARISON_STEPS: usize = 1000;
/// Points of every tuning grid of [`compare_on_noisy_quadratic`].
pub const COMPARISON_GRID: usize = 25;

/// The model of [`compare_on_noisy_quadratic`]: 20 curvatures log-spaced from 1e-3 to 1 (so
/// plain SGD is stable below lr = 2), gradient noise `0.3√h` per step (one sample), θ0 = 1,
/// time counted in steps, no discount.
pub fn comparison_model() -> crate::rules::noisy_quadratic::NoisyQuadratic {
    let mut m = crate::rules::noisy_quadratic::NoisyQuadratic::log_spaced(20, 1e-3, 1.0, 0.3);
    m.batch = 1;
    m.steps = COMPARISON_STEPS;
    m.dt = 1.0;
    m.gamma = 0.0;
    m
}

/// Learning-rate schedules for SGD on [`comparison_model`] with equal tuning effort: each
/// family has one number, tuned over a 25-point log grid for the lowest exact expected loss
/// after the last step.
///
/// - constant `lr`; cosine `½lr(1 + cos πn/N)`; warmup–stable–decay with a 5 % linear warmup
///   and the last 20 % linear to zero — peak rates over `[1e-2, 1.99/h_max]`;
/// - the scalar schedule of the noiseless problem's optimal path ([`diagonal_scalar_schedule`],
///   γ = 0, T = N), `ηk` over `[1e-6, 1e2]`, capped at the stiffest direction's Newton rate
///   `1/h_max` (no direction's own optimal step exceeds `lr·h = 1`, docs/theory.md §4.1; beyond
///   `2/h_max` plain SGD diverges).
pub fn compare_on_noisy_quadratic() -> Vec<TunedSchedule> {
    use crate::rules::noisy_quadratic::scheduled_sgd_expectation;
    let m = comparison_model();
    let steps = COMPARISON_STEPS;
    let n = steps as f64;
    let h_max = m.curvatures.iter().copied().fold(0.0, f64::max);
    let log_grid = |lo: f64, hi: f64| -> Vec<f64> {
        (0..COMPARISON_GRID)
            .map(|i| lo * (hi / lo).powf(i as f64 / (COMPARISON_GRID - 1) as f64))
            .collect()
    };
    let peaks = log_grid(1e-2, 1.99 / h_max);
    let constant = |lr: f64| vec![lr; steps];
    let cosine = |lr: f64| {
        (0..steps)
            .map(|k| 0.5 * lr * (1.0 + (std::f64::consts::PI * k as f64 / n).cos()))
            .collect()
    };
    let wsd = |lr: f64| {
        (0..steps)
            .map(|k| {
                let f = k as f64 / n;
                lr * if f < 0.05 {
                    (k + 1) as f64 / (0.05 * n)
                } else if f < 0.8 {
                    1.0
                } else {
                    (1.0 - f) / 0.2
                }
            })
            .collect()
    };
    let optimal = |eta_k: f64| {
        diagonal_scalar_schedule(&m.curvatures, &m.theta0, eta_k, 1.0, 0.0, n, steps)
            .into_iter()
            .map(|r| r.unwrap_or(0.0).min(1.0 / h_max))
            .collect()
    };
    type Rates<'a> = &'a dyn Fn(f64) -> Vec<f64>;
    let families: [(&'static str, &'static str, Vec<f64>, Rates); 4] = [
        ("constant", "lr", peaks.clone(), &constant),
        ("cosine", "peak lr", peaks.clone(), &cosine),
        ("warmup–stable–decay", "peak lr", peaks, &wsd),
        ("optimal path", "ηk", log_grid(1e-6, 1e2), &optimal),
    ];
    families
        .into_iter()
        .filter_map(|(name, knob, grid, rates)| {
            grid.iter()
                .map(|&x| {
                    let r = rates(x);
                    let e = scheduled_sgd_expectation(&m, &r);
                    (x, r, e.losses)
                })
                // A diverged setting is never the best one.
                .filter(|(_, _, l)| l.last().is_some_and(|v| v.is_finite()))
                .min_by(|a, b| a.2[steps].total_cmp(&b.2[steps]))
                .map(|(tuned, rates, losses)| TunedSchedule {
                    name,
                    knob,
                    tuned,
                    rates,
                    losses,
                })
        })
        .collect()
}
