//! Multiple shooting: the boundary-value problem as matching conditions between segments, each
//! integrated by diffsol with error control — a third route to optimal trajectories, with
//! ODE-integrator accuracy along the path.
//!
//! The horizon is cut into `K` segments. The unknowns are `p(0)` and the states `y_k = (θ, p)`
//! at the other segment starts. Each segment carries the variational equations `Φ̇ = (∂F/∂y) Φ`
//! (exact field Jacobian from the problem model), so Newton's method on the matching
//! conditions `φ_k(t_{k+1}) − y_{k+1} = 0` and the end condition has its exact Jacobian. That
//! Jacobian is block-banded and is factored as a band. Short segments tame the forward
//! instability of the Hamiltonian system that defeats single shooting.
//!
//! Folder: forward integration with diffsol. `integrate.rs` steps a diffsol solver under the
//! time budget with dense output; [`simulate`] integrates learning rules forward and the cost
//! they achieve; this file is multiple shooting. Uses: `linalg/` (the band of the matching
//! conditions), `target/`, the solution vocabulary.

use std::cell::RefCell;

use diffsol::{NalgebraMat, OdeBuilder};
use nalgebra::DMatrix;

use lossnav_problems::{End, FieldWorkspace, Horizon, Lagrangian, Problem};

use crate::error::SolverError;
use crate::linalg::banded::BandedLu;
use crate::solution::Guess;
use crate::solution::{Accuracy, Diagnostics, Solution, Summary};
use crate::target::terminal_value;
use crate::target::Target;

pub(crate) mod integrate;
pub mod simulate;

/// Options of multiple shooting.
///
/// ```
/// use lossnav_problems::load_problem;
/// use lossnav_solvers::Shooting;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
/// let problem = load_problem(path).unwrap();
/// let solution = Shooting::default().solve(&problem).unwrap();
/// assert!(solution.accuracy.tolerance_met());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Shooting {
    /// Number of segments.
    pub segments: usize,
    /// Relative and absolute tolerance of the integrator.
    pub tol: f64,
    /// Newton iterations allowed.
    pub max_iterations: usize,
    /// Output samples per segment (the solution interpolates between them).
    pub samples_per_segment: usize,
    /// Wall-clock budget of one solve, in seconds (continuation included): a problem that
    /// needs more ends with [`SolverError::TimeLimit`].
    pub max_seconds: f64,
}

impl Default for Shooting {
    fn default() -> Self {
        Self {
            segments: 20,
            tol: 1e-12,
            max_iterations: 40,
            samples_per_segment: 16,
            max_seconds: 20.0,
        }
    }
}

/// A segment's samples (`(θ, p, ∫e^{-γt}ℓ)` at each output time), the end sensitivity `Φ`
/// (empty without sensitivities), and the output times.
type Flow = (Vec<Vec<f64>>, DMatrix<f64>, Vec<f64>);

/// A continuation family: the Lagrangian and start point at `s ∈ [0, 1]`.
type Family<'a> = Box<dyn Fn(f64) -> (Lagrangian, Vec<f64>) + 'a>;

/// Buffers of the segment right-hand side.
struct Scratch {
    ws: FieldWorkspace,
    jac: DMatrix<f64>,
    y: Vec<f64>,
    a: Vec<f64>,
    b: Vec<f64>,
}

/// Integrates one segment: end state, its sensitivity `Φ`, and the discounted cost integral.
#[allow(clippy::too_many_arguments)]
fn flow(
    lag: &Lagrangian,
    t0: f64,
    t1: f64,
    y0: &[f64],
    with_sensitivity: bool,
    samples: &[f64],
    tol: f64,
    deadline: Option<std::time::Instant>,
) -> Result<Flow, SolverError> {
    let d = lag.dim();
    let m = 2 * d;
    let sens = if with_sensitivity { m * m } else { 0 };
    let n = m + sens + 1;
    // The right-hand side runs at every integrator stage: its buffers are allocated once.
    let scratch = RefCell::new(Scratch {
        ws: FieldWorkspace::new(d),
        jac: DMatrix::zeros(m, m),
        y: vec![0.0; m],
        a: vec![0.0; d],
        b: vec![0.0; d],
    });
    let ode = OdeBuilder::<NalgebraMat<f64>>::new()
        .t0(t0)
        .rtol(tol)
        .atol(vec![tol; n])
        .rhs(|x, _p, t, out| {
            let (xs, os) = (x, out);
            // One diffsol step (with its rejections and its choice of the first step) can
            // outlast the budget on a large system; past the deadline the field is NaN, the
            // step fails, and `dense_output` reports the time limit.
            if deadline.is_some_and(|d| std::time::Instant::now() > d)
                || crate::budget::Budget::cancelled()
            {
                os.fill(f64::NAN);
                return;
            }
            let mut guard = scratch.borrow_mut();
            let Scratch { ws, jac, y, a, b } = &mut *guard;
            y.copy_from_slice(&xs[..m]);
            lag.field(t, &y[..d], &y[d..], a, b, ws);
            os[..d].copy_from_slice(a);
            os[d..m].copy_from_slice(b);
            if with_sensitivity {
                lag.field_jacobian(t, &y[..d], &y[d..], jac, ws);
                // Φ' = JΦ (Φ column-major after y) as one blocked matrix product.
                let phi = nalgebra::DMatrixView::from_slice(&xs[m..m + sens], m, m);
                let mut dphi = nalgebra::DMatrixViewMut::from_slice(&mut os[m..m + sens], m, m);
                dphi.gemm(1.0, jac, &phi, 0.0);
            }
            let ell = lag.kinetic_from_momentum(&y[..d], &y[d..]) + lag.potential(&y[..d], t);
            os[n - 1] = lag.discount(t) * ell;
        })
        .init(
            |_p, _t, out| {
                for i in 0..n {
                    out[i] = if i < m {
                        y0[i]
                    } else if i < m + sens {
                        let j = i - m;
                        if j / m == j % m {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        0.0
                    };
                }
            },
            n,
        )
        .build()
        .map_err(|e| SolverError::Unsupported(format!("cannot set up the integrator: {e}")))?;
    let mut solver = ode
        .tsit45()
        .map_err(|e| SolverError::Unsupported(format!("cannot set up the integrator: {e}")))?;
    let mut times: Vec<f64> = samples.to_vec();
    if times.last().is_none_or(|&t| t < t1) {
        times.push(t1);
    }
    let ys = crate::shooting::integrate::dense_output(
        &mut solver,
        &times,
        "the shooting integration",
        deadline,
    )?;
    let last = times.len() - 1;
    let states: Vec<Vec<f64>> = ys
        .iter()
        .map(|y| {
            y[..m]
                .iter()
                .chain(std::iter::once(&y[n - 1]))
                .copied()
                .collect()
        })
        .collect();
    if !states[last].iter().all(|v| v.is_finite()) {
        return Err(SolverError::NonFinite {
            what: "the shooting integration".into(),
            t: t1,
        });
    }
    let phi = if with_sensitivity {
        DMatrix::from_fn(m, m, |r, c| ys[last][m + c * m + r])
    } else {
        DMatrix::zeros(0, 0)
    };
    Ok((states, phi, times))
}

/// The state at the start of segment `seg` from the unknowns `x = [p_0, y_1, …]`.
fn state_at(theta0: &[f64], d: usize, x: &[f64], seg: usize) -> Vec<f64> {
    if seg == 0 {
        theta0
            .iter()
            .copied()
            .chain(x[..d].iter().copied())
            .collect()
    } else {
        let o = d + 2 * d * (seg - 1);
        x[o..o + 2 * d].to_vec()
    }
}

impl Shooting {
    /// Solves from the plain initial guess (straight line to a fixed end, rest for a free end,
    /// the linearised solution for an infinite horizon).
    pub fn solve(&self, problem: &Problem) -> Result<Solution, SolverError> {
        self.solve_from(problem, None)
    }

    /// Solves starting Newton from `guess(t) = (θ(t), p(t))` at the segment starts.
    pub fn solve_from(
        &self,
        problem: &Problem,
        guess: Option<&Guess>,
    ) -> Result<Solution, SolverError> {
        if self.segments < 1 {
            return Err(SolverError::InvalidOption {
                name: "segments",
                value: self.segments as f64,
                requirement: "need at least one segment",
            });
        }
        // An integrator asked for less than about a hundred ulps of relative error spends its
        // steps on rounding and fails with a non-finite state instead of meeting it.
        if !(self.tol >= 1e-14 && self.tol < 1e-3) {
            return Err(SolverError::InvalidOption {
                name: "tol",
                value: self.tol,
                requirement: "must be in [1e-14, 1e-3) (rounding error dominates below)",
            });
        }
        crate::budget::check_max_seconds(Some(self.max_seconds))?;
        // Memory before anything is allocated: each segment integrates the 2D states with
        // their (2D)² sensitivities (about 12 copies in the integrator's stages and dense
        // output), and Newton's matrix has (2D)² entries per segment; an infinite horizon's
        // target adds about twelve 2D×2D matrices. D = 10⁵ asked for hundreds of GB and aborted.
        let m = 2 * problem.dim() as u128;
        let k = self.segments as u128;
        let target = if problem.horizon() == Horizon::Infinite {
            12 * m * m
        } else {
            0
        };
        let estimate = usize::try_from(8 * (12 * (m + m * m + 1) + 3 * k * m * m + target))
            .unwrap_or(usize::MAX);
        crate::memory::reserve(
            estimate,
            crate::memory::DEFAULT_MAX_MEMORY,
            "shooting method",
            "it integrates the (2D)² variational equations on every segment; the direct method \
             (--method direct) works in O(N·D) memory",
            self.segments + 1,
            problem.dim(),
        )?;
        // Capped at 10⁹ s (31 years): a longer budget is no budget, and could not be added to
        // an instant. Set as this thread's budget so that the equilibrium's descent and the
        // certificate read it too (and an enclosing solve's earlier deadline wins).
        let _budget = crate::budget::Budget::start(Some(self.max_seconds.min(1e9)));
        let deadline = crate::budget::Budget::deadline().unwrap_or_else(|| {
            std::time::Instant::now()
                + std::time::Duration::from_secs_f64(self.max_seconds.min(1e9))
        });
        let lag = problem.lagrangian();
        let d = lag.dim();
        let theta0 = problem.theta0().as_slice().to_vec();
        let target = match problem.horizon() {
            Horizon::Infinite => Some(Target::new(problem)?),
            Horizon::Finite(_) => None,
        };
        let t_end = match (problem.horizon(), &target) {
            (Horizon::Finite(t), _) => t,
            (_, Some(tg)) => tg.initial_truncation(&theta0, self.tol.max(1e-12)),
            _ => unreachable!("an infinite horizon has a target"),
        };
        let k = self.segments;
        let starts: Vec<f64> = match &target {
            Some(tg) => tg.graded_mesh(t_end, k),
            None => (0..=k).map(|i| t_end * i as f64 / k as f64).collect(),
        };
        // Initial states at the segment starts.
        let initial = |t: f64| -> Vec<f64> {
            if let Some(g) = guess {
                let (th, p) = g(t);
                return th.into_iter().chain(p).collect();
            }
            match (&target, problem.end()) {
                (Some(tg), _) => tg.linear(t, &theta0),
                (None, End::Fixed(end)) => {
                    let vel: Vec<f64> = (0..d).map(|j| (end[j] - theta0[j]) / t_end).collect();
                    let th: Vec<f64> = (0..d).map(|j| theta0[j] + vel[j] * t).collect();
                    let mut p = vec![0.0; d];
                    if lag.metric().is_invertible() {
                        lag.momentum(&th, &vel, t, &mut p);
                    }
                    th.into_iter().chain(p).collect()
                }
                _ => theta0.iter().copied().chain(vec![0.0; d]).collect(),
            }
        };
        // x = [p_0, y_1, …, y_{K-1}]
        let mut x0: Vec<f64> = initial(0.0)[d..].to_vec();
        for &t in &starts[1..k] {
            x0.extend(initial(t));
        }
        let newton = |lag: &Lagrangian, theta0: &[f64], x: Vec<f64>| {
            self.newton(
                problem,
                lag,
                theta0,
                target.as_ref(),
                &starts,
                t_end,
                x,
                deadline,
            )
        };
        let (x, iterations, r, continuation) = match newton(lag, &theta0, x0) {
            Ok((x, it, r)) => (x, it, r, None),
            Err(first) => {
                // Continue from an easy problem: k from 0 (finite horizon), or the start point
                // from the equilibrium (infinite horizon), warm-starting each step.
                let (name, make): (&str, Family) = match &target {
                    None => (
                        "k",
                        Box::new(|s: f64| (lag.clone().with_k(s * lag.k()), theta0.clone())),
                    ),
                    Some(tg) => (
                        "theta0",
                        Box::new(|s: f64| {
                            let th = (0..d)
                                .map(|j| tg.theta_star[j] + s * (theta0[j] - tg.theta_star[j]))
                                .collect();
                            (lag.clone(), th)
                        }),
                    ),
                };
                let (lag0, th0) = make(0.0);
                let mut xs: Vec<f64> = match &target {
                    Some(tg) => {
                        let rest: Vec<f64> =
                            tg.theta_star.iter().chain(&tg.p_star).copied().collect();
                        rest[d..]
                            .iter()
                            .copied()
                            .chain((1..k).flat_map(|_| rest.clone()))
                            .collect()
                    }
                    None => {
                        let mut v = initial(0.0)[d..].to_vec();
                        for &t in &starts[1..k] {
                            v.extend(initial(t));
                        }
                        v
                    }
                };
                let (x, mut total, _) = newton(&lag0, &th0, xs.clone())?;
                xs = x;
                let (mut s, mut ds, mut steps) = (0.0_f64, 0.25_f64, 0usize);
                let mut last = Vec::new();
                while s < 1.0 {
                    let next = (s + ds).min(1.0);
                    let (l, th) = make(next);
                    match newton(&l, &th, xs.clone()) {
                        Ok((x, it, r)) => {
                            xs = x;
                            total += it;
                            last = r;
                            s = next;
                            steps += 1;
                            ds = (ds * 1.5).min(0.5);
                        }
                        Err(e) => {
                            ds *= 0.5;
                            if ds < 1.0 / 4096.0 {
                                return Err(SolverError::ContinuationFailed {
                                    parameter: name.to_string(),
                                    reached: s,
                                    min_step: 1.0 / 4096.0,
                                    cause: Box::new(if s == 0.0 { first } else { e }),
                                });
                            }
                        }
                    }
                }
                (xs, total, last, Some((name.to_string(), steps)))
            }
        };
        let state_at = |x: &[f64], seg: usize| state_at(&theta0, d, x, seg);
        let mut sol = self.assemble(
            problem,
            lag,
            &starts,
            &x,
            &state_at,
            target.as_ref(),
            iterations,
            r,
        )?;
        sol.diagnostics.continuation = continuation;
        Ok(sol.checked(problem))
    }

    /// Damped Newton on the matching conditions from `x`.
    #[allow(clippy::too_many_arguments)]
    fn newton(
        &self,
        problem: &Problem,
        lag: &Lagrangian,
        theta0: &[f64],
        target: Option<&Target>,
        starts: &[f64],
        t_end: f64,
        mut x: Vec<f64>,
        deadline: std::time::Instant,
    ) -> Result<(Vec<f64>, usize, Vec<f64>), SolverError> {
        let deadline = Some(deadline);
        let d = lag.dim();
        let m = 2 * d;
        let k = starts.len() - 1;
        let size = d + m * (k - 1);
        let state_at = |x: &[f64], seg: usize| state_at(theta0, d, x, seg);
        let end_residual = |y: &[f64], out: &mut [f64], jac: Option<&mut DMatrix<f64>>| {
            let (th, p) = (&y[..d], &y[d..]);
            let mut e = DMatrix::zeros(d, m);
            match (target, problem.end()) {
                (Some(tg), _) => {
                    for i in 0..d {
                        out[i] = p[i] - tg.p_star[i];
                        for j in 0..d {
                            out[i] += lag.eta() * tg.riccati[(i, j)] * (th[j] - tg.theta_star[j]);
                            e[(i, j)] = lag.eta() * tg.riccati[(i, j)];
                        }
                        e[(i, d + i)] = 1.0;
                    }
                }
                (None, End::Fixed(end)) => {
                    for i in 0..d {
                        out[i] = th[i] - end[i];
                        e[(i, i)] = 1.0;
                    }
                }
                (None, End::Free { terminal_cost }) => {
                    let mut g = vec![0.0; d];
                    let mut h = DMatrix::zeros(d, d);
                    if let Some(c) = terminal_cost {
                        c.gradient(th, t_end, &mut g);
                        c.hessian(th, t_end, &mut h);
                    }
                    for i in 0..d {
                        out[i] = p[i] + lag.eta() * g[i];
                        for j in 0..d {
                            e[(i, j)] = lag.eta() * h[(i, j)];
                        }
                        e[(i, d + i)] = 1.0;
                    }
                }
                _ => unreachable!("validated end conditions"),
            }
            if let Some(j) = jac {
                *j = e;
            }
        };
        // Residual (and optionally the banded Jacobian) at x.
        let evaluate = |x: &[f64], lu: Option<&mut BandedLu>| -> Result<Vec<f64>, SolverError> {
            let mut r = vec![0.0; size];
            let with = lu.is_some();
            let mut blocks = Vec::with_capacity(k);
            for seg in 0..k {
                let y0 = state_at(x, seg);
                let (states, phi, _) = flow(
                    lag,
                    starts[seg],
                    starts[seg + 1],
                    &y0,
                    with,
                    &[],
                    self.tol,
                    deadline,
                )?;
                let y1 = &states[states.len() - 1][..m];
                if seg + 1 < k {
                    let next = state_at(x, seg + 1);
                    for i in 0..m {
                        r[m * seg + i] = y1[i] - next[i];
                    }
                } else {
                    end_residual(y1, &mut r[m * seg..m * seg + d], None);
                }
                blocks.push((phi, y1.to_vec()));
            }
            if let Some(lu) = lu {
                lu.clear();
                for (seg, (phi, y1)) in blocks.iter().enumerate() {
                    let row = m * seg;
                    // Columns of y_seg: p_0 only for the first segment.
                    let (col, first) = if seg == 0 {
                        (0, d)
                    } else {
                        (d + m * (seg - 1), 0)
                    };
                    if seg + 1 < k {
                        for i in 0..m {
                            for j in first..m {
                                lu.add(row + i, col + j - first, phi[(i, j)]);
                            }
                            lu.add(row + i, d + m * seg + i, -1.0);
                        }
                    } else {
                        let mut e = DMatrix::zeros(d, m);
                        let mut tmp = vec![0.0; d];
                        end_residual(y1, &mut tmp, Some(&mut e));
                        let ephi = e * phi;
                        for i in 0..d {
                            for j in first..m {
                                lu.add(row + i, col + j - first, ephi[(i, j)]);
                            }
                        }
                    }
                }
            }
            Ok(r)
        };
        // Each residual is measured relative to the size of what it matches: the state at the
        // next segment start, the fixed end, or the momentum at the end. (Relative to the size
        // of all unknowns, a momentum of 1e11 let a miss of 0.2 in θ(T) pass as converged.)
        let reference = |x: &[f64], i: usize| -> f64 {
            let (seg, row) = (i / m, i % m);
            if seg + 1 < k {
                state_at(x, seg + 1)[row]
            } else {
                match (target, problem.end()) {
                    (None, End::Fixed(end)) => end[row],
                    // p(T) itself is not an unknown: the momentum at the last segment start.
                    _ => state_at(x, k - 1)[d + row],
                }
            }
        };
        let scaled = |x: &[f64], r: &[f64]| -> (f64, usize) {
            r.iter()
                .enumerate()
                .map(|(i, v)| (v.abs() / (1.0 + reference(x, i).abs()), i))
                .fold(
                    (0.0_f64, 0),
                    |a, b| if b.0 > a.0 || b.0.is_nan() { b } else { a },
                )
        };
        let band = 3 * d;
        let mut lu = BandedLu::zeros(size, band, band);
        let mut iterations = 0;
        let mut r = evaluate(&x, Some(&mut lu))?;
        let newton_tol = 100.0 * self.tol;
        loop {
            let (norm, worst) = scaled(&x, &r);
            // Where the worst residual sits: the end of its segment.
            let worst_t = starts[(worst / m + 1).min(k)];
            if norm <= newton_tol {
                break;
            }
            if iterations >= self.max_iterations {
                return Err(SolverError::NewtonFailed {
                    iterations,
                    step: f64::NAN,
                    residual: norm,
                    worst_t,
                    undefined: None,
                });
            }
            if deadline.is_some_and(|d| std::time::Instant::now() > d)
                || crate::budget::Budget::cancelled()
            {
                return Err(SolverError::TimeLimit {
                    what: format!(
                        "shooting's Newton iteration {iterations} (largest residual near t = {worst_t:.4})"
                    ),
                    residual: norm,
                });
            }
            iterations += 1;
            lu.factor().map_err(|s| SolverError::Singular {
                t: starts[(s.column / m).min(k - 1)],
            })?;
            let mut step: Vec<f64> = r.iter().map(|v| -v).collect();
            lu.solve(&mut step);
            let mut alpha = 1.0;
            loop {
                let trial: Vec<f64> = x.iter().zip(&step).map(|(a, s)| a + alpha * s).collect();
                let attempt = evaluate(&trial, None);
                match attempt {
                    Ok(rt) => {
                        let (nt, _) = scaled(&trial, &rt);
                        if nt < (1.0 - 1e-4 * alpha) * norm || (alpha == 1.0 && nt <= newton_tol) {
                            x = trial;
                            break;
                        }
                    }
                    Err(SolverError::TimeLimit { what, .. }) => {
                        return Err(SolverError::TimeLimit {
                            what: format!(
                                "{what}, in Newton iteration {iterations} of shooting \
                                 (largest residual near t = {worst_t:.4})"
                            ),
                            residual: norm,
                        })
                    }
                    Err(_) => {}
                }
                alpha *= 0.5;
                if alpha < 1e-6 {
                    return Err(SolverError::NewtonFailed {
                        iterations,
                        step: alpha,
                        residual: norm,
                        worst_t,
                        undefined: None,
                    });
                }
            }
            r = evaluate(&x, Some(&mut lu)).map_err(|e| match e {
                SolverError::TimeLimit { what, .. } => SolverError::TimeLimit {
                    what: format!("{what}, after Newton iteration {iterations} of shooting"),
                    residual: norm,
                },
                e => e,
            })?;
        }
        // The residuals as Newton's test measured them (relative to what each matches), so
        // that what the solution reports is what was checked.
        let scaled_r: Vec<f64> = r
            .iter()
            .enumerate()
            .map(|(i, v)| v / (1.0 + reference(&x, i).abs()))
            .collect();
        Ok((x, iterations, scaled_r))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        problem: &Problem,
        lag: &Lagrangian,
        starts: &[f64],
        x: &[f64],
        state_at: &dyn Fn(&[f64], usize) -> Vec<f64>,
        target: Option<&Target>,
        iterations: usize,
        residual: Vec<f64>,
    ) -> Result<Solution, SolverError> {
        let d = lag.dim();
        let m = 2 * d;
        let mut t_all = Vec::new();
        let mut y_all: Vec<Vec<f64>> = Vec::new();
        let mut cost = 0.0;
        let relative = target.is_some_and(Target::relative);
        let offset = if relative {
            target.map_or(0.0, |t| t.running_cost)
        } else {
            0.0
        };
        for seg in 0..starts.len() - 1 {
            let (a, b) = (starts[seg], starts[seg + 1]);
            // Enough samples that the cubic interpolant between them resolves the fastest local
            // rate ω (h·ω ≤ 0.05: interpolation error ~ (hω)⁴/384 ≈ 2e-8 relative), e.g. the
            // boundary layer of width 1/γ at the end of a strongly discounted problem.
            let y0 = state_at(x, seg);
            let mut jac = nalgebra::DMatrix::zeros(m, m);
            let mut fws = FieldWorkspace::new(d);
            lag.field_jacobian(a, &y0[..d], &y0[d..], &mut jac, &mut fws);
            let omega = jac.norm() + lag.gamma();
            let needed = ((b - a) * omega / 0.05).ceil();
            let s = self.samples_per_segment.max(1).max(if needed.is_finite() {
                needed.min(1e5) as usize
            } else {
                1
            });
            let samples: Vec<f64> = (0..=s).map(|i| a + (b - a) * i as f64 / s as f64).collect();
            let (states, _, times) = flow(
                lag,
                a,
                b,
                &state_at(x, seg),
                false,
                &samples,
                self.tol,
                None,
            )?;
            let last = states.len() - 1;
            cost += states[last][m];
            if relative {
                // ∫ e^{-γt} ℓ* dt over the segment with γ = 0.
                cost -= offset * (b - a);
            }
            for (j, st) in states.iter().enumerate() {
                if seg > 0 && j == 0 {
                    continue;
                }
                t_all.push(times[j]);
                y_all.push(st[..m].to_vec());
            }
        }
        let t_end = *starts.last().unwrap();
        let last_theta = y_all.last().unwrap()[..d].to_vec();
        if let Some(tg) = target {
            // The truncation is chosen so that the linearisation arrives within the gap target;
            // an extremal that ends far from the equilibrium (none reaches it: a loss unbounded
            // below, say) satisfies the projection condition without being the answer.
            let (gap, gap_target) = (tg.gap(&last_theta), 1e3 * tg.gap_target(self.tol));
            if gap > gap_target {
                return Err(SolverError::TruncationLimit {
                    t_end,
                    gap,
                    gap_target,
                });
            }
        }
        cost += lag.discount(t_end) * terminal_value(problem, target, &last_theta, t_end);
        let mut ws = FieldWorkspace::new(d);
        let mut slopes = Vec::with_capacity(y_all.len() * m);
        for (y, &t) in y_all.iter().zip(&t_all) {
            let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
            lag.field(t, &y[..d], &y[d..], &mut a, &mut b, &mut ws);
            slopes.extend(a.iter().chain(&b));
        }
        let y_flat: Vec<f64> = y_all.concat();
        let summary = Summary {
            method: "shooting",
            // Newton's stopping test: the matching residuals, each relative to what it matches,
            // at most 100 × the integrator tolerance (the integration error is `tol`).
            accuracy: Accuracy::Met {
                measure: "largest relative matching residual",
                estimate: residual.iter().fold(0.0_f64, |a, v| a.max(v.abs())),
                tol: 100.0 * self.tol,
            },
            cost,
            cost_is_relative: relative,
            diagnostics: Diagnostics {
                iterations,
                nodes: starts.len(),
                max_residual: residual.iter().fold(0.0_f64, |a, v| a.max(v.abs())),
                mesh_passes: 1,
                continuation: None,
            },
            tail: target.map(|tg| tg.tail(t_end)),
        };
        Solution::from_nodes(lag, t_all, &y_flat, slopes, summary).finite(lag)
    }
}
