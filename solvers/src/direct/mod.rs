//! Direct minimisation of the discretised objective (docs/theory.md §3): an independent route to
//! optimal trajectories, and the one that scales to large parameter counts.
//!
//! The path is a C¹ piecewise-cubic Hermite spline: nodal values `θ_i` and velocities `v_i`
//! are the unknowns, so `θ(t)` is fourth-order accurate. The objective
//! `J_h = Σ_i ∫ e^{-γt} ℓ(θ, θ̇, t) dt + e^{-γT}Φ(θ_N)` is integrated on each interval by
//! three-point Gauss–Legendre quadrature (exact for degree 5) and minimised by L-BFGS with a
//! strong-Wolfe line search ([`crate::direct::lbfgs`], in place: `2m + 5` vectors of unknowns). This is a Ritz method: its stationarity conditions are a
//! discretisation of the Euler–Lagrange equations, the trajectory converges at order 4 and the
//! cost, being stationary, faster.
//!
//! The gradient is exact and costs `O(N·D)` vector operations: `J_h` is a sum of local terms,
//! so reverse accumulation is one pass over the quadrature points, each using `∂ℓ/∂θ` and
//! `∂ℓ/∂θ̇` from the problem model. No `D×D` matrix is formed on finite horizons (memory
//! `O(N·D)`), which is what lets `D = 10⁵` run; infinite horizons add the `D×D` Riccati matrix
//! of the terminal value `½(θ-θ*)ᵀP(θ-θ*) - p*ᵀ(θ-θ*)/η`.
//!
//! Memory on a finite horizon, with `n = 2(N+1)D` unknowns (fewer by `2D` for the fixed ends)
//! and L-BFGS memory `m`: `(2m + 5)·n` values in the optimiser, `2n` in the objective's
//! node-ordered work buffers, and the solution (`3n`) built after the optimiser has freed its
//! own. At `D = 10⁴`, `N = 200`, `m = 10` that is `27·n·8 B` = 0.87 GB at the peak.
//!
//! Folder: this file (the discretised objective, its gradient, the preconditioned minimisation)
//! and `lbfgs.rs` (the in-place optimiser). Uses: `linalg/` (the banded Cholesky
//! preconditioner), `target/` (infinite-horizon tails), and the collocation residual and mesh
//! error estimate of `bvp/` to state the accuracy of what it returns in the boundary-value
//! solver's terms.

use std::cell::RefCell;

use std::sync::Arc;
use std::time::Instant;

use lossnav_problems::lagrangian::CostScratch;
use lossnav_problems::{End, Horizon, Lagrangian, Points, Problem};

use crate::bvp::collocation::{EndCondition, System, Workspace};
use crate::bvp::mesh;
use crate::error::SolverError;
use crate::linalg::banded::BandedCholesky;
use crate::observe::{Observer, Observers, Progress};
use crate::solution::hermite;
use crate::solution::{Accuracy, Diagnostics, Solution, Summary};
use crate::target::terminal_value;
use crate::target::Target;
use lbfgs::{Ending, Smooth};

pub(crate) mod lbfgs;

/// The most mesh intervals the direct method accepts (the memory budget usually binds first:
/// [`Direct::memory_estimate`]).
const MAX_INTERVALS: usize = 10_000_000;

/// The largest `D` whose error estimate is computed (it uses `O(D²)` field workspaces).
const ESTIMATE_MAX_DIM: usize = 500;

/// Options of the direct method.
///
/// ```
/// use lossnav_problems::load_problem;
/// use lossnav_solvers::Direct;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
/// let problem = load_problem(path).unwrap();
/// let solution = Direct::default().with_intervals(64).solve(&problem).unwrap();
/// assert!(solution.accuracy.tolerance_met());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Direct {
    /// Mesh intervals (uniform on finite horizons, graded on infinite ones).
    pub intervals: usize,
    /// Stop when the gradient norm of the discretised objective, per unknown and relative
    /// to the interval length, falls below this.
    pub gradient_tol: f64,
    /// L-BFGS iterations allowed. Well-scaled problems take tens to hundreds (the kinetic term
    /// is preconditioned away; the 11 386-parameter network of docs/guide.md §9 took 183).
    pub max_iterations: u64,
    /// L-BFGS memory.
    pub memory: usize,
    /// Infinite horizon: truncation time (default: chosen from the slowest closed-loop rate).
    pub truncation: Option<f64>,
    /// Bound on the error estimate of the result: the collocation defect of the optimality
    /// conditions along the returned path, per interval, in the boundary-value solver's norm
    /// ([`crate::bvp::mesh`]). A result above it is [`SolverError::AccuracyNotMet`]. Checked up to
    /// `D =` 500 (the estimate needs the dense field workspace).
    pub tol: f64,
    /// Wall-clock budget in seconds (none by default): past it the solve ends with
    /// [`SolverError::TimeLimit`].
    pub max_seconds: Option<f64>,
    /// The optimiser stops, as [`SolverError::OptimizerFailed`], when over this many
    /// iterations its gradient norm has not halved, or has fallen at a rate that would need
    /// more than `max_iterations` in all to reach the tolerance: a discretisation too coarse
    /// for the problem's fastest rates (a huge curvature or drift) keeps L-BFGS crawling for
    /// tens of seconds otherwise.
    pub stall_window: u64,
    /// Who hears about progress ([`crate::observe`]): every 50 iterations.
    pub observers: Observers,
    /// The most memory a solve may use, in bytes, checked against
    /// [`Direct::memory_estimate`] before anything of the mesh's size is allocated.
    pub max_memory: usize,
}

impl Default for Direct {
    fn default() -> Self {
        Self {
            intervals: 100,
            gradient_tol: 1e-8,
            max_iterations: 10_000,
            memory: 20,
            truncation: None,
            // Refuses paths wrong in the fourth digit (too few intervals, a discount that
            // hides the path from the optimiser); tighter bounds are the caller's choice.
            tol: 1e-4,
            max_seconds: None,
            // Well-scaled problems halve the gradient norm every few dozen iterations (the
            // kinetic term is preconditioned away); the network example of docs/guide.md §9,
            // the slowest converging case shipped, every few hundred.
            stall_window: 1000,
            observers: Observers::default(),
            max_memory: crate::memory::DEFAULT_MAX_MEMORY,
        }
    }
}

/// Watches L-BFGS: reports progress, and stops it at the deadline or when it stalls.
struct Watch {
    start: Instant,
    deadline: Option<Instant>,
    observers: Observers,
    window: u64,
    tol: f64,
    intervals: usize,
    max_iterations: u64,
    /// Iteration and best gradient norm at the last checkpoint (every quarter window).
    checkpoint: (u64, f64),
    /// Every checkpoint so far, with the smallest gradient norm of the quarter window it
    /// closes (progress is measured between recent iterates: the smallest norm of the whole
    /// run can belong to an early iterate the optimiser has since left, near a saddle say).
    history: Vec<(u64, f64)>,
    /// Best gradient norm so far (reported).
    best: f64,
    /// Smallest gradient norm since the last checkpoint.
    recent: f64,
}

impl Watch {
    fn advice(&self) -> String {
        format!(
            "The discretised problem is badly conditioned: rates that differ by orders of \
             magnitude (a very large curvature, drift or parameter) that {} intervals cannot \
             resolve. Use the boundary-value solver (adaptive mesh) or rescale the problem",
            self.intervals
        )
    }
}

impl Watch {
    /// Called before each iteration with the gradient norm of the current iterate.
    fn check(&mut self, iteration: u64, gnorm: f64) -> Result<(), SolverError> {
        if gnorm.is_finite() {
            self.best = self.best.min(gnorm);
            self.recent = self.recent.min(gnorm);
        }
        if iteration % 50 == 0 {
            self.observers.report(|| Progress {
                solver: "direct",
                stage: "L-BFGS".into(),
                iteration: iteration as usize,
                measure: "gradient norm",
                value: gnorm,
                elapsed: self.start.elapsed().as_secs_f64(),
                total: None,
            });
        }
        if self.deadline.is_some_and(|d| Instant::now() > d) || crate::budget::Budget::cancelled() {
            return Err(SolverError::TimeLimit {
                what: format!(
                    "the direct method's L-BFGS (iteration {iteration}, best gradient norm \
                     {:.3e})",
                    self.best
                ),
                residual: f64::NAN,
            });
        }
        if iteration >= self.checkpoint.0 + self.window / 4 {
            let recent = std::mem::replace(&mut self.recent, f64::INFINITY);
            self.history.push((iteration, recent));
            self.checkpoint = (iteration, recent);
            // The rate over the last window, from the checkpoint a window back.
            let back = self
                .history
                .iter()
                .rev()
                .find(|(it, _)| iteration >= it + self.window);
            if let Some(&(then, recent_then)) = back {
                let span = (iteration - then) as f64;
                let rate = recent / recent_then;
                if rate > 0.5 {
                    return Err(SolverError::OptimizerFailed {
                        iterations: iteration as usize,
                        gradient_norm: self.best,
                        reason: format!(
                            "stalled: the gradient norm fell by less than half over the last \
                             {span} iterations (best {:.3e}, tolerance {:.3e}). {}",
                            self.best,
                            self.tol,
                            self.advice()
                        ),
                    });
                }
                // Iterations still needed at this rate.
                let needed = span * (recent / self.tol).ln() / (1.0 / rate).ln();
                if iteration as f64 + needed > self.max_iterations as f64 {
                    return Err(SolverError::OptimizerFailed {
                        iterations: iteration as usize,
                        gradient_norm: self.best,
                        reason: format!(
                            "too slow: at its rate over the last {span} iterations (gradient \
                             norm ×{rate:.2}, now {:.3e}) it would need about {:.1e} more to \
                             reach the tolerance {:.3e}, beyond the budget of {} iterations. {}",
                            self.best,
                            needed,
                            self.tol,
                            self.max_iterations,
                            self.advice()
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Three-point Gauss–Legendre nodes and weights on `[0, 1]`.
const GAUSS_X: [f64; 3] = [
    0.5 - 0.387_298_334_620_741_7,
    0.5,
    0.5 + 0.387_298_334_620_741_7,
];
const GAUSS_W: [f64; 3] = [5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0];

/// The discretised objective over the free unknowns.
///
/// The unknowns are stored slot-major: row `a` of `D` values is slot `a` (a free `θ_i` or a
/// `w_i`) of every coordinate. The preconditioner is the same for every coordinate, so its
/// triangular solves run over whole rows (streamed and vectorised), and a node's values are a
/// contiguous row.
struct Objective<'a> {
    lag: &'a Lagrangian,
    problem: &'a Problem,
    target: Option<&'a Target>,
    t: Vec<f64>,
    theta0: Vec<f64>,
    fixed_end: Option<Vec<f64>>,
    /// Velocities enter as `w = v·h_ref` so all unknowns have the units of θ.
    h_ref: f64,
    offset: f64,
    /// Per-coordinate unknowns in node order: `θ_i` (where free) then `w_i`.
    slots: Vec<Slot>,
    /// Row of `θ_i` among the unknowns (None where it is fixed) and of `w_i`, by node.
    theta_row: Vec<Option<usize>>,
    w_row: Vec<usize>,
    /// Cholesky factor `C` of the kinetic stiffness of one coordinate: the optimiser works in
    /// `z = Cᵀu`, where the kinetic term is the identity, so L-BFGS sees a condition number
    /// independent of the mesh (the unpreconditioned one grows like `N²`).
    precond: BandedCholesky,
    work: RefCell<Buffers>,
}

/// Work buffers of one evaluation, allocated once: the unknowns `u = C⁻ᵀz` (one vector of
/// the optimiser's size) and per-point vectors of length `D`.
struct Buffers {
    u: Vec<f64>,
    l_th: Vec<f64>,
    l_thd: Vec<f64>,
    scratch: CostScratch,
    /// θ, θ̇ (node-major) and t at the Gauss points of a chunk of intervals, and the loss
    /// and its gradient there, evaluated in one batch.
    q_theta: Vec<f64>,
    q_theta_dot: Vec<f64>,
    q_t: Vec<f64>,
    q_loss: Vec<f64>,
    q_grad: Vec<f64>,
    /// Intervals per batch, learnt from how long batches take (see `evaluate`).
    batch: usize,
}

/// Loss values and gradients are evaluated for at most this many values of θ at once (8 MB
/// per buffer): a batch is one pass over an expression's tape and one call into a Python loss,
/// and at large D a chunk is one interval.
const BATCH_VALUES: usize = 1 << 20;

impl Buffers {
    fn new(n_params: usize, d: usize, intervals_per_chunk: usize) -> Self {
        let points = 3 * intervals_per_chunk;
        Self {
            u: vec![0.0; n_params],
            l_th: vec![0.0; d],
            l_thd: vec![0.0; d],
            scratch: CostScratch::new(d),
            q_theta: vec![0.0; points * d],
            q_theta_dot: vec![0.0; points * d],
            q_t: vec![0.0; points],
            q_loss: vec![0.0; points],
            q_grad: vec![0.0; points * d],
            batch: 8,
        }
    }
}

/// Intervals per batch of Gauss points: three points each, at most [`BATCH_VALUES`] values of
/// θ per batch, at least one interval.
fn intervals_per_chunk(d: usize, intervals: usize) -> usize {
    (BATCH_VALUES / (3 * d.max(1))).clamp(1, intervals.max(1))
}

/// One per-coordinate unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Theta(usize),
    W(usize),
}

/// The per-coordinate unknowns, interleaved by node (bandwidth 3 in this order).
fn slots(nodes: usize, free_theta: std::ops::Range<usize>) -> Vec<Slot> {
    let mut out = Vec::with_capacity(2 * nodes);
    for i in 0..nodes {
        if free_theta.contains(&i) {
            out.push(Slot::Theta(i));
        }
        out.push(Slot::W(i));
    }
    out
}

/// Cholesky factor of `∫ θ̇² dt` over one coordinate's unknowns (unit metric), assembled
/// with the same Gauss rule as the objective.
fn kinetic_factor(t: &[f64], h_ref: f64, slots: &[Slot]) -> Option<BandedCholesky> {
    let m = slots.len();
    let index = |s: Slot| slots.iter().position(|&x| x == s);
    let mut dense_band = vec![[0.0; 4]; m];
    for i in 0..t.len() - 1 {
        let h = t[i + 1] - t[i];
        let local = [
            Slot::Theta(i),
            Slot::W(i),
            Slot::Theta(i + 1),
            Slot::W(i + 1),
        ];
        let idx: Vec<Option<usize>> = local.iter().map(|&s| index(s)).collect();
        for q in 0..3 {
            let db = hermite::basis_derivative(GAUSS_X[q]);
            let c = [db[0] / h, db[1] / h_ref, db[2] / h, db[3] / h_ref];
            for a in 0..4 {
                for b in 0..4 {
                    if let (Some(ia), Some(ib)) = (idx[a], idx[b]) {
                        if ib <= ia && ia - ib <= 3 {
                            dense_band[ia][ia - ib] += GAUSS_W[q] * h * c[a] * c[b];
                        }
                    }
                }
            }
        }
    }
    BandedCholesky::new(m, 3, |i, j| dense_band[i][i - j])
}

impl Objective<'_> {
    fn d(&self) -> usize {
        self.lag.dim()
    }
    fn nodes(&self) -> usize {
        self.t.len()
    }
    fn n_params(&self) -> usize {
        self.slots.len() * self.d()
    }

    /// `θ_i` from the unknowns `u` (slot-major), or the fixed start or end.
    fn theta_at<'s>(&'s self, u: &'s [f64], i: usize) -> &'s [f64] {
        let d = self.d();
        match (self.theta_row[i], &self.fixed_end) {
            (Some(r), _) => &u[r * d..(r + 1) * d],
            (None, _) if i == 0 => &self.theta0,
            (None, Some(end)) => end,
            (None, None) => unreachable!("only the start and a fixed end are not unknowns"),
        }
    }

    /// Nodal θ and v (node-major) from the parameter vector.
    fn unpack(&self, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (d, n) = (self.d(), self.nodes());
        let mut u = x.to_vec();
        self.precond.solve_upper_rows(&mut u, d);
        let (mut theta, mut v) = (vec![0.0; n * d], vec![0.0; n * d]);
        for i in 0..n {
            theta[i * d..(i + 1) * d].copy_from_slice(self.theta_at(&u, i));
            let w = &u[self.w_row[i] * d..(self.w_row[i] + 1) * d];
            for (vk, wk) in v[i * d..(i + 1) * d].iter_mut().zip(w) {
                *vk = wk / self.h_ref;
            }
        }
        (theta, v)
    }

    /// The parameter vector `z = Cᵀu` of nodal θ and v (node-major).
    fn pack(&self, theta: &[f64], v: &[f64]) -> Vec<f64> {
        let d = self.d();
        let mut x = vec![0.0; self.n_params()];
        for (a, slot) in self.slots.iter().enumerate() {
            let row = &mut x[a * d..(a + 1) * d];
            match *slot {
                Slot::Theta(i) => row.copy_from_slice(&theta[i * d..(i + 1) * d]),
                Slot::W(i) => {
                    for (r, vk) in row.iter_mut().zip(&v[i * d..(i + 1) * d]) {
                        *r = vk * self.h_ref;
                    }
                }
            }
        }
        self.precond.mul_upper_rows(&mut x, d);
        x
    }

    /// Cost and exact gradient with respect to the parameters, the gradient written to `grad`.
    fn evaluate(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        let (d, n, hr) = (self.d(), self.nodes(), self.h_ref);
        let mut work = self.work.borrow_mut();
        let Buffers {
            u,
            l_th,
            l_thd,
            scratch,
            q_theta,
            q_theta_dot,
            q_t,
            q_loss,
            q_grad,
            batch,
        } = &mut *work;
        u.copy_from_slice(x);
        self.precond.solve_upper_rows(u, d);
        let u: &[f64] = u;
        // ∂J/∂u accumulates in `grad`, row by row as the unknowns.
        grad.iter_mut().for_each(|g| *g = 0.0);
        let mut cost = 0.0;
        // Read every chunk and every 8 intervals: one evaluation can take seconds at large D.
        let deadline = crate::budget::Budget::deadline();
        let out_of_time =
            || deadline.is_some_and(|d| Instant::now() > d) || crate::budget::Budget::cancelled();
        let max_chunk = (q_t.len() / 3).max(1);
        let loss = self.lag.loss();
        // The interpolant's weights at Gauss point q of an interval of length h: θ = b₀y₀ +
        // b₁h·v₀ + b₂y₁ + b₃h·v₁ with v = w/h_ref, θ̇ likewise from b' (the basis at the three
        // points is the same on every interval).
        let basis = GAUSS_X.map(|x| (hermite::basis(x), hermite::basis_derivative(x)));
        let weights = |q: usize, h: f64| {
            let (b, db) = &basis[q];
            (
                [b[0], b[1] * h / hr, b[2], b[3] * h / hr],
                [db[0] / h, db[1] / hr, db[2] / h, db[3] / hr],
            )
        };
        let mut i0 = 0;
        while i0 < n - 1 {
            // Batches grow while they take under 5 ms (the size learnt is kept for the next
            // evaluation): cheap losses, and Python losses with their per-call cost, get the
            // largest batch, and an expensive loss (autodiff at large D) is still interrupted
            // within a few milliseconds of its budget.
            let chunk = (*batch).clamp(1, max_chunk);
            let i1 = (i0 + chunk).min(n - 1);
            if out_of_time() {
                grad.iter_mut().for_each(|g| *g = f64::NAN);
                return f64::NAN;
            }
            let started = Instant::now();
            // θ and θ̇ at the Gauss points of the chunk.
            for i in i0..i1 {
                let h = self.t[i + 1] - self.t[i];
                let (y0, y1) = (self.theta_at(u, i), self.theta_at(u, i + 1));
                let (r0, r1) = (self.w_row[i], self.w_row[i + 1]);
                let (w0, w1) = (&u[r0 * d..(r0 + 1) * d], &u[r1 * d..(r1 + 1) * d]);
                for (q, &x) in GAUSS_X.iter().enumerate() {
                    let at = 3 * (i - i0) + q;
                    q_t[at] = self.t[i] + x * h;
                    let (cv, cd) = weights(q, h);
                    let th = &mut q_theta[at * d..(at + 1) * d];
                    let thd = &mut q_theta_dot[at * d..(at + 1) * d];
                    for k in 0..d {
                        th[k] = cv[0] * y0[k] + cv[1] * w0[k] + cv[2] * y1[k] + cv[3] * w1[k];
                        thd[k] = cd[0] * y0[k] + cd[1] * w0[k] + cd[2] * y1[k] + cd[3] * w1[k];
                    }
                }
            }
            let points = 3 * (i1 - i0);
            let at = Points::new(&q_theta[..points * d], d, d, &q_t[..points]);
            loss.values_and_gradients(at, &mut q_loss[..points], &mut q_grad[..points * d], d);
            let took = started.elapsed();
            if took < std::time::Duration::from_millis(5) && i1 - i0 == chunk {
                *batch = (2 * chunk).min(max_chunk);
            } else if took > std::time::Duration::from_millis(20) {
                *batch = (chunk / 2).max(1);
            }
            for i in i0..i1 {
                if (i - i0) % 8 == 7 && out_of_time() {
                    grad.iter_mut().for_each(|g| *g = f64::NAN);
                    return f64::NAN;
                }
                let h = self.t[i + 1] - self.t[i];
                let (r0, r1) = (self.w_row[i], self.w_row[i + 1]);
                for (q, &gw) in GAUSS_W.iter().enumerate() {
                    let at = 3 * (i - i0) + q;
                    let tq = q_t[at];
                    let (cv, cd) = weights(q, h);
                    let wq = gw * h * self.lag.discount(tq);
                    l_th.copy_from_slice(&q_grad[at * d..(at + 1) * d]);
                    let l = self.lag.running_cost_with_loss(
                        &q_theta[at * d..(at + 1) * d],
                        &q_theta_dot[at * d..(at + 1) * d],
                        tq,
                        q_loss[at],
                        l_th,
                        l_thd,
                        scratch,
                    );
                    cost += wq * (l - self.offset);
                    let rows = [self.theta_row[i], Some(r0), self.theta_row[i + 1], Some(r1)];
                    for (j, row) in rows.iter().enumerate() {
                        if let Some(r) = *row {
                            let (ca, cb) = (wq * cv[j], wq * cd[j]);
                            let g = &mut grad[r * d..(r + 1) * d];
                            for k in 0..d {
                                g[k] += ca * l_th[k] + cb * l_thd[k];
                            }
                        }
                    }
                }
            }
            i0 = i1;
        }
        let t_end = self.t[n - 1];
        let last = self.theta_at(u, n - 1);
        let disc = self.lag.discount(t_end);
        cost += disc * terminal_value(self.problem, self.target, last, t_end);
        if let Some(r) = self.theta_row[n - 1] {
            let tg = l_th;
            tg.iter_mut().for_each(|g| *g = 0.0);
            match (self.target, self.problem.end()) {
                (Some(target), _) => target.tail_gradient(last, tg),
                (
                    None,
                    End::Free {
                        terminal_cost: Some(c),
                    },
                ) => c.gradient(last, t_end, tg),
                _ => {}
            }
            for (g, t) in grad[r * d..(r + 1) * d].iter_mut().zip(tg.iter()) {
                *g += disc * t;
            }
        }
        // Chain rule through z: ∂J/∂z = C⁻¹ ∂J/∂u.
        self.precond.solve_lower_rows(grad, d);
        cost
    }
}

impl Smooth for Objective<'_> {
    fn stop(&self) -> bool {
        crate::budget::Budget::expired()
    }
    fn value_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64 {
        // `evaluate` itself returns NaN once the budget runs out (an evaluation can take
        // seconds at large D), and `stop` ends the line search between trial points.
        self.evaluate(x, grad)
    }
}

impl Direct {
    /// Bytes a solve of a `dim`-parameter problem on this mesh needs at its peak: L-BFGS holds
    /// `2m + 5` vectors of the `n ≈ 2·(intervals + 1)·dim` unknowns, the objective one more
    /// and its batch of Gauss points (θ, θ̇ and ∇L at three points per interval, at most
    /// 3·2²⁰ values or one interval's), and the solution is assembled from about three; an
    /// infinite horizon adds its dense
    /// `D×D` terminal target (about twelve `D×D` matrices while it is computed). Measured:
    /// 0.82 GB at `D = 10⁴`, `N = 200`, `m = 10` against an estimate of 0.93 GB; 4.15 GB at
    /// `D = 10⁵`, `N = 100` against 4.69 GB.
    pub fn memory_estimate(&self, dim: usize, infinite_horizon: bool) -> usize {
        let (d, m) = (dim as u128, self.memory.max(1) as u128);
        let n = 2 * (self.intervals as u128 + 1) * d;
        let target = if infinite_horizon { 12 * d * d } else { 0 };
        // The objective's batch of Gauss points: θ, θ̇ and ∇L for at most BATCH_VALUES values
        // of θ, or one interval's three points.
        let batch = 3
            * (3 * d * self.intervals as u128)
                .min(BATCH_VALUES as u128)
                .max(3 * d);
        usize::try_from(8 * ((2 * m + 9) * n + target + batch)).unwrap_or(usize::MAX)
    }

    /// Sets the number of mesh intervals.
    pub fn with_intervals(mut self, intervals: usize) -> Self {
        self.intervals = intervals;
        self
    }

    /// Sets the wall-clock budget in seconds.
    pub fn with_max_seconds(mut self, seconds: f64) -> Self {
        self.max_seconds = Some(seconds);
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers = Observers(Some(observer));
        self
    }

    /// Sets the bound on the error estimate.
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Sets the gradient tolerance.
    pub fn with_gradient_tol(mut self, tol: f64) -> Self {
        self.gradient_tol = tol;
        self
    }

    fn validate(&self) -> Result<(), SolverError> {
        if !(2..=MAX_INTERVALS).contains(&self.intervals) {
            return Err(SolverError::InvalidOption {
                name: "intervals",
                value: self.intervals as f64,
                requirement: "must be between 2 and 10⁷",
            });
        }
        if !(self.tol.is_finite() && self.tol > 0.0) {
            return Err(SolverError::InvalidOption {
                name: "tol",
                value: self.tol,
                requirement: "must be a finite number > 0",
            });
        }
        // The estimate is a collocation defect computed in floating point: like the
        // boundary-value solver's, it cannot fall below rounding, so a smaller bound would
        // only be refused after the whole minimisation.
        if self.tol < 1e-13 {
            return Err(SolverError::InvalidOption {
                name: "tol",
                value: self.tol,
                requirement: "must be at least 1e-13 (rounding error dominates below)",
            });
        }
        crate::budget::check_max_seconds(self.max_seconds)?;
        if self.stall_window == 0 {
            return Err(SolverError::InvalidOption {
                name: "stall_window",
                value: 0.0,
                requirement: "must be at least 1",
            });
        }
        if !(self.gradient_tol.is_finite() && self.gradient_tol > 0.0) {
            return Err(SolverError::InvalidOption {
                name: "gradient_tol",
                value: self.gradient_tol,
                requirement: "must be a finite number > 0",
            });
        }
        Ok(())
    }

    /// Minimises the discretised objective from the plain initial path (straight line to a
    /// fixed end, rest at θ0 for a free end, the linearised solution for an infinite horizon).
    pub fn solve(&self, problem: &Problem) -> Result<Solution, SolverError> {
        self.solve_from(problem, None)
    }

    /// As [`Direct::solve`], starting from `guess(t) = (θ(t), p(t))` (only θ is used; the
    /// velocities come from `θ̇ = f + Mp`).
    pub fn solve_from(
        &self,
        problem: &Problem,
        guess: Option<&crate::solution::Guess>,
    ) -> Result<Solution, SolverError> {
        self.validate()?;
        let _budget = crate::budget::Budget::start(self.max_seconds);
        let lag = problem.lagrangian();
        let d = lag.dim();
        crate::memory::reserve(
            self.memory_estimate(d, matches!(problem.horizon(), Horizon::Infinite)),
            self.max_memory,
            "direct method",
            "L-BFGS keeps 2m + 5 vectors of the 2·N·D unknowns: use fewer intervals or a \
             shorter L-BFGS memory",
            self.intervals + 1,
            d,
        )?;
        if !lag.metric().is_invertible() {
            return Err(SolverError::Unsupported(
                "the direct method needs an invertible metric; a singular mobility \
                 (partial controllability) has no finite kinetic term: use the boundary-value solver"
                    .into(),
            ));
        }
        let theta0 = problem.theta0().as_slice().to_vec();
        let target = match problem.horizon() {
            Horizon::Infinite => Some(Target::new(problem)?),
            Horizon::Finite(_) => None,
        };
        let t: Vec<f64> = match (problem.horizon(), &target) {
            (Horizon::Finite(t_end), _) => (0..=self.intervals)
                .map(|i| t_end * i as f64 / self.intervals as f64)
                .collect(),
            (Horizon::Infinite, Some(target)) => {
                // A fixed mesh: the truncation must leave the nonlinearity below the
                // discretisation error (1e-10 on the gap scale).
                let t_end = self
                    .truncation
                    .unwrap_or_else(|| target.initial_truncation(&theta0, 1e-10));
                target.graded_mesh(t_end, self.intervals)
            }
            _ => unreachable!("an infinite horizon has a target"),
        };
        let n = t.len();
        let fixed_end = match problem.end() {
            End::Fixed(v) => Some(v.as_slice().to_vec()),
            _ => None,
        };
        let offset = if target.as_ref().is_some_and(Target::relative) {
            target.as_ref().map_or(0.0, |t| t.running_cost)
        } else {
            0.0
        };
        // Initial path.
        let mut theta = vec![0.0; n * d];
        let mut v = vec![0.0; n * d];
        let linear = match (guess, &target) {
            (None, Some(target)) => target.linear_path(&t, &theta0),
            _ => Vec::new(),
        };
        for (i, &ti) in t.iter().enumerate() {
            let (th, vel): (Vec<f64>, Vec<f64>) = match (guess, &target, &fixed_end) {
                (Some(g), _, _) => {
                    let (th, p) = g(ti);
                    let mut vel = vec![0.0; d];
                    lag.velocity(&th, &p, ti, &mut vel);
                    (th, vel)
                }
                (None, Some(_), _) => {
                    let y = &linear[i * 2 * d..(i + 1) * 2 * d];
                    let mut vel = vec![0.0; d];
                    lag.velocity(&y[..d], &y[d..], ti, &mut vel);
                    (y[..d].to_vec(), vel)
                }
                (None, None, Some(end)) => {
                    let t_end = t[n - 1];
                    let vel: Vec<f64> = (0..d).map(|j| (end[j] - theta0[j]) / t_end).collect();
                    ((0..d).map(|j| theta0[j] + vel[j] * ti).collect(), vel)
                }
                (None, None, None) => (theta0.clone(), vec![0.0; d]),
            };
            theta[i * d..(i + 1) * d].copy_from_slice(&th);
            v[i * d..(i + 1) * d].copy_from_slice(&vel);
        }
        theta[..d].copy_from_slice(&theta0);
        let h_ref = t[n - 1] / self.intervals as f64;
        let free_theta = 1..(if fixed_end.is_some() { n - 1 } else { n });
        let slots = slots(n, free_theta);
        let precond = kinetic_factor(&t, h_ref, &slots).ok_or_else(|| {
            SolverError::Unsupported("the mesh is degenerate (repeated times)".into())
        })?;
        let work = RefCell::new(Buffers::new(
            slots.len() * d,
            d,
            intervals_per_chunk(d, t.len().saturating_sub(1)),
        ));
        let (mut theta_row, mut w_row) = (vec![None; n], vec![0; n]);
        for (a, slot) in slots.iter().enumerate() {
            match *slot {
                Slot::Theta(i) => theta_row[i] = Some(a),
                Slot::W(i) => w_row[i] = a,
            }
        }
        let objective = Objective {
            lag,
            problem,
            target: target.as_ref(),
            h_ref,
            slots,
            theta_row,
            w_row,
            precond,
            t: t.clone(),
            theta0: theta0.clone(),
            fixed_end,
            offset,
            work,
        };
        let x0 = objective.pack(&theta, &v);
        drop((theta, v));
        let n_params = objective.n_params();
        let mut grad0 = vec![0.0; n_params];
        let cost0 = objective.evaluate(&x0, &mut grad0);
        // L-BFGS from a non-finite start never finds a descent direction and would spend its
        // whole iteration budget in line searches.
        if !(cost0.is_finite() && grad0.iter().all(|g| g.is_finite())) {
            if crate::budget::Budget::expired() {
                return Err(SolverError::TimeLimit {
                    what: "the direct method's first evaluation of the objective".into(),
                    residual: f64::NAN,
                });
            }
            return Err(SolverError::NonFinite {
                what: "the discretised objective at the initial path".into(),
                t: 0.0,
            });
        }
        // In the preconditioned variables the kinetic term is the identity: the gradient
        // tolerance is per unknown, in units of the cost.
        let tol = self.gradient_tol * (n_params as f64).sqrt();
        let mut watch = Watch {
            start: Instant::now(),
            // Its own budget, or what is left of an enclosing one (a search's).
            deadline: crate::budget::Budget::deadline(),
            observers: self.observers.clone(),
            window: self.stall_window,
            tol,
            intervals: self.intervals,
            max_iterations: self.max_iterations,
            checkpoint: (0, f64::INFINITY),
            history: vec![(0, f64::INFINITY)],
            best: f64::INFINITY,
            recent: f64::INFINITY,
        };
        let options = lbfgs::Options {
            memory: self.memory,
            gradient_tol: tol,
            max_iterations: self.max_iterations,
        };
        let outcome = lbfgs::minimise(&objective, x0, cost0, grad0, options, |it, g| {
            watch.check(it, g)
        })?;
        let (iterations, gnorm) = (outcome.iterations as usize, outcome.gradient_norm);
        match &outcome.ending {
            Ending::Converged => {}
            Ending::IterationLimit => {
                return Err(SolverError::OptimizerFailed {
                    iterations,
                    gradient_norm: gnorm,
                    reason: format!(
                        "iteration limit {} reached (gradient norm {gnorm:.3e} above {tol:.3e})",
                        self.max_iterations
                    ),
                })
            }
            Ending::LineSearchFailed(_) if crate::budget::Budget::expired() => {
                return Err(SolverError::TimeLimit {
                    what: format!(
                        "the direct method's L-BFGS (iteration {iterations}, gradient norm \
                         {gnorm:.3e})"
                    ),
                    residual: f64::NAN,
                })
            }
            Ending::LineSearchFailed(why) => {
                return Err(SolverError::OptimizerFailed {
                    iterations,
                    gradient_norm: gnorm,
                    reason: format!(
                        "line search failed: {why} (gradient norm {gnorm:.3e} above {tol:.3e}). \
                         {}",
                        watch.advice()
                    ),
                })
            }
        }
        let cost = outcome.value;
        let best = outcome.x;
        drop(outcome.grad);
        let (theta, v) = objective.unpack(&best);
        let sol = self
            .assemble(
                problem,
                &objective,
                &theta,
                &v,
                target.as_ref(),
                iterations,
                gnorm,
                cost,
            )
            .finite(lag)?;
        self.estimate(problem, sol).map(|s| s.checked(problem))
    }

    /// Attaches the error estimate (the collocation defect of the path's optimality
    /// conditions) and refuses a result above `tol`.
    fn estimate(&self, problem: &Problem, mut sol: Solution) -> Result<Solution, SolverError> {
        let lag = problem.lagrangian();
        let d = lag.dim();
        if d > ESTIMATE_MAX_DIM {
            // `assemble` left the gradient norm there.
            let gradient_norm = sol.diagnostics.max_residual;
            sol.diagnostics.max_residual = f64::NAN;
            sol.accuracy = Accuracy::NotEstimated {
                gradient_norm,
                reason: format!(
                    "the defect estimate is made up to D = {ESTIMATE_MAX_DIM}: it uses \
                     O(D²) workspaces"
                ),
            };
            return Ok(sol);
        }
        let n = 2 * d;
        let y: Vec<f64> = (0..sol.t.len())
            .flat_map(|i| sol.theta[i].iter().chain(&sol.p[i]).copied())
            .collect();
        let end = EndCondition::Free {
            eta: lag.eta(),
            cost: None,
        };
        let sys = System::new(lag, problem.theta0().as_slice(), &end);
        let mut ws = Workspace::new(d);
        ws.f = sol.slopes.clone();
        debug_assert_eq!(ws.f.len(), sol.t.len() * n);
        let errors = mesh::estimate(&sys, &sol.t, &y, &mut ws);
        let (worst, estimate) = mesh::worst(&errors);
        sol.diagnostics.max_residual = estimate;
        if estimate <= self.tol {
            sol.accuracy = Accuracy::Met {
                measure: "collocation defect of the optimality conditions",
                estimate,
                tol: self.tol,
            };
        } else {
            return Err(SolverError::AccuracyNotMet {
                estimate,
                tol: self.tol,
                worst_t: 0.5 * (sol.t[worst] + sol.t[worst + 1]),
                hint: if lag.gamma() * sol.end_time() > 20.0 {
                    "under strong discounting the optimiser cannot resolve the path where \
                     e^{-γt} flattens the objective (the cost is insensitive there): use the \
                     boundary-value solver"
                } else {
                    "use more intervals, or the boundary-value solver (adaptive mesh)"
                }
                .into(),
            });
        }
        Ok(sol)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        problem: &Problem,
        objective: &Objective,
        theta: &[f64],
        v: &[f64],
        target: Option<&Target>,
        iterations: usize,
        gnorm: f64,
        cost: f64,
    ) -> Solution {
        let lag = problem.lagrangian();
        let d = lag.dim();
        let t = &objective.t;
        let n = t.len();
        let mut y = vec![0.0; n * 2 * d];
        let mut slopes = vec![0.0; n * 2 * d];
        let mut fws = lossnav_problems::FieldWorkspace::new(d);
        for i in 0..n {
            let th = &theta[i * d..(i + 1) * d];
            let vel = &v[i * d..(i + 1) * d];
            let (yt, yp) = y[i * 2 * d..(i + 1) * 2 * d].split_at_mut(d);
            yt.copy_from_slice(th);
            lag.momentum(th, vel, t[i], yp);
        }
        // The field at every node in one batch (one call into a Python loss): p-slopes come
        // from it, θ-slopes are the spline's own.
        lag.field_batch(t, &y, &mut slopes, &mut fws);
        for i in 0..n {
            slopes[i * 2 * d..i * 2 * d + d].copy_from_slice(&v[i * d..(i + 1) * d]);
        }
        let summary = Summary {
            method: "direct",
            // Replaced by `estimate`, which knows whether the path's error was estimated.
            accuracy: Accuracy::NotEstimated {
                gradient_norm: gnorm,
                reason: "not yet estimated".into(),
            },
            cost,
            cost_is_relative: target.is_some_and(Target::relative),
            diagnostics: Diagnostics {
                iterations,
                nodes: n,
                max_residual: gnorm,
                mesh_passes: 1,
                continuation: None,
            },
            tail: target.map(|tg| tg.tail(t[n - 1])),
        };
        Solution::from_nodes(lag, t.clone(), &y, slopes, summary)
    }
}
