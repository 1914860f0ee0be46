//! Direct minimisation of the discretised objective (docs/theory.md §3): an independent route to
//! optimal trajectories, and the one that scales to large parameter counts.
//!
//! The path is a C¹ piecewise-cubic Hermite spline: nodal values `θ_i` and velocities `v_i`
//! are the unknowns, so `θ(t)` is fourth-order accurate. The objective
//! `J_h = Σ_i ∫ e^{-γt} ℓ(θ, θ̇, t) dt + e^{-γT}Φ(θ_N)` is integrated on each interval by
//! three-point Gauss–Legendre quadrature (exact for degree 5) and minimised by L-BFGS with the
//! More–Thuente line search (argmin). This is a Ritz method: its stationarity conditions are a
//! discretisation of the Euler–Lagrange equations, the trajectory converges at order 4 and the
//! cost, being stationary, faster.
//!
//! The gradient is exact and costs `O(N·D)` vector operations: `J_h` is a sum of local terms,
//! so reverse accumulation is one pass over the quadrature points, each using `∂ℓ/∂θ` and
//! `∂ℓ/∂θ̇` from the problem model. No `D×D` matrix is formed on finite horizons (memory
//! `O(N·D)`), which is what lets `D = 10⁴` run; infinite horizons add the `D×D` Riccati matrix
//! of the terminal value `½(θ-θ*)ᵀP(θ-θ*) - p*ᵀ(θ-θ*)/η`.

use std::cell::RefCell;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use argmin::core::observers::{Observe, ObserverMode};
use argmin::core::{
    CostFunction, Executor, Gradient, IterState, State, TerminationReason, TerminationStatus, KV,
};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

use lossnav_problems::{End, Horizon, Lagrangian, Problem};

use crate::banded::BandedCholesky;
use crate::bvp::terminal_value;
use crate::collocation::{EndCondition, System, Workspace};
use crate::error::SolverError;
use crate::hermite;
use crate::mesh;
use crate::observe::{Observer, Observers, Progress};
use crate::solution::{Accuracy, Diagnostics, Solution, Summary};
use crate::target::Target;

/// The most mesh intervals the direct method accepts. Memory is about 50 buffers of
/// `2·intervals·D` values (docs/benchmarks.md), so this is already 8 GB per parameter.
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
    /// ([`crate::mesh`]). A result above it is [`SolverError::AccuracyNotMet`]. Checked up to
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
        }
    }
}

/// Watches L-BFGS: reports progress, and stops it at the deadline or when it stalls, leaving
/// the typed reason in `stop` (argmin only passes on that an observer failed).
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
    stop: Arc<Mutex<Option<SolverError>>>,
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

type LbfgsState = IterState<Vec<f64>, Vec<f64>, (), (), (), f64>;

impl Observe<LbfgsState> for Watch {
    fn observe_iter(&mut self, state: &LbfgsState, _kv: &KV) -> Result<(), argmin::core::Error> {
        let iteration = state.get_iter();
        let gnorm = state
            .get_gradient()
            .map_or(f64::NAN, |g| g.iter().map(|x| x * x).sum::<f64>().sqrt());
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
        let fail = |e: SolverError| {
            let text = e.to_string();
            *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            Err(argmin::core::Error::msg(text))
        };
        if self.deadline.is_some_and(|d| Instant::now() > d) {
            return fail(SolverError::TimeLimit {
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
                    return fail(SolverError::OptimizerFailed {
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
                    return fail(SolverError::OptimizerFailed {
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
    /// Cholesky factor `C` of the kinetic stiffness of one coordinate: the optimiser works in
    /// `z = Cᵀu`, where the kinetic term is the identity, so L-BFGS sees a condition number
    /// independent of the mesh (the unpreconditioned one grows like `N²`).
    precond: BandedCholesky,
    cache: RefCell<Option<Evaluation>>,
}

/// The last evaluation: parameters, cost, gradient (argmin asks for cost and gradient
/// separately at the same point).
type Evaluation = (Vec<f64>, f64, Vec<f64>);

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

    /// Nodal θ and v from the parameter vector (coordinate-major blocks of `z`).
    fn unpack(&self, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (d, n, m) = (self.d(), self.nodes(), self.slots.len());
        let mut theta = vec![0.0; n * d];
        theta[..d].copy_from_slice(&self.theta0);
        if let Some(end) = &self.fixed_end {
            theta[(n - 1) * d..].copy_from_slice(end);
        }
        let mut v = vec![0.0; n * d];
        let mut u = vec![0.0; m];
        for k in 0..d {
            u.copy_from_slice(&x[k * m..(k + 1) * m]);
            self.precond.solve_upper(&mut u);
            for (a, slot) in self.slots.iter().enumerate() {
                match *slot {
                    Slot::Theta(i) => theta[i * d + k] = u[a],
                    Slot::W(i) => v[i * d + k] = u[a] / self.h_ref,
                }
            }
        }
        (theta, v)
    }

    fn pack(&self, theta: &[f64], v: &[f64]) -> Vec<f64> {
        let (d, m) = (self.d(), self.slots.len());
        let mut x = vec![0.0; m * d];
        for k in 0..d {
            let z = &mut x[k * m..(k + 1) * m];
            for (a, slot) in self.slots.iter().enumerate() {
                z[a] = match *slot {
                    Slot::Theta(i) => theta[i * d + k],
                    Slot::W(i) => v[i * d + k] * self.h_ref,
                };
            }
            self.precond.mul_upper(z);
        }
        x
    }

    /// Cost and exact gradient with respect to the parameters.
    fn evaluate(&self, x: &[f64]) -> (f64, Vec<f64>) {
        if let Some((cx, c, g)) = self.cache.borrow().as_ref() {
            if cx.as_slice() == x {
                return (*c, g.clone());
            }
        }
        let (d, n) = (self.d(), self.nodes());
        let (theta, v) = self.unpack(x);
        let mut g_theta = vec![0.0; n * d];
        let mut g_v = vec![0.0; n * d];
        let (mut th, mut thd) = (vec![0.0; d], vec![0.0; d]);
        let (mut l_th, mut l_thd) = (vec![0.0; d], vec![0.0; d]);
        let mut cost = 0.0;
        for i in 0..n - 1 {
            let h = self.t[i + 1] - self.t[i];
            let (y0, y1) = (&theta[i * d..(i + 1) * d], &theta[(i + 1) * d..(i + 2) * d]);
            let (v0, v1) = (&v[i * d..(i + 1) * d], &v[(i + 1) * d..(i + 2) * d]);
            for q in 0..3 {
                let x = GAUSS_X[q];
                let tq = self.t[i] + x * h;
                hermite::value(x, h, y0, v0, y1, v1, &mut th);
                hermite::derivative(x, h, y0, v0, y1, v1, &mut thd);
                let w = GAUSS_W[q] * h * self.lag.discount(tq);
                cost += w * (self.lag.running_cost(&th, &thd, tq) - self.offset);
                self.lag
                    .running_cost_gradients(&th, &thd, tq, &mut l_th, &mut l_thd);
                let b = hermite::basis(x);
                let db = hermite::basis_derivative(x);
                for k in 0..d {
                    let (a, bb) = (w * l_th[k], w * l_thd[k]);
                    g_theta[i * d + k] += a * b[0] + bb * db[0] / h;
                    g_v[i * d + k] += a * b[1] * h + bb * db[1];
                    g_theta[(i + 1) * d + k] += a * b[2] + bb * db[2] / h;
                    g_v[(i + 1) * d + k] += a * b[3] * h + bb * db[3];
                }
            }
        }
        let t_end = self.t[n - 1];
        let last = &theta[(n - 1) * d..];
        let disc = self.lag.discount(t_end);
        cost += disc * terminal_value(self.problem, self.target, last, t_end);
        let mut tg = vec![0.0; d];
        match (self.target, self.problem.end()) {
            (Some(target), _) => target.tail_gradient(last, &mut tg),
            (
                None,
                End::Free {
                    terminal_cost: Some(c),
                },
            ) => c.gradient(last, t_end, &mut tg),
            _ => {}
        }
        for k in 0..d {
            g_theta[(n - 1) * d + k] += disc * tg[k];
        }
        // Chain rule through z: ∂J/∂z = C⁻¹ ∂J/∂u.
        let m = self.slots.len();
        let mut grad = vec![0.0; m * d];
        for k in 0..d {
            let gz = &mut grad[k * m..(k + 1) * m];
            for (a, slot) in self.slots.iter().enumerate() {
                gz[a] = match *slot {
                    Slot::Theta(i) => g_theta[i * d + k],
                    Slot::W(i) => g_v[i * d + k] / self.h_ref,
                };
            }
            self.precond.solve_lower(gz);
        }
        *self.cache.borrow_mut() = Some((x.to_vec(), cost, grad.clone()));
        (cost, grad)
    }
}

/// What argmin owns: a reference, so the objective stays available after the run.
struct ByRef<'a, 'b>(&'a Objective<'b>);

impl CostFunction for ByRef<'_, '_> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, x: &Vec<f64>) -> Result<f64, argmin::core::Error> {
        let (c, _) = self.0.evaluate(x);
        if c.is_finite() {
            Ok(c)
        } else {
            // Let the line search back off from undefined regions.
            Ok(f64::INFINITY)
        }
    }
}

impl Gradient for ByRef<'_, '_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, x: &Vec<f64>) -> Result<Vec<f64>, argmin::core::Error> {
        Ok(self.0.evaluate(x).1)
    }
}

impl Direct {
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
        crate::error::check_max_seconds(self.max_seconds)?;
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
        guess: Option<&crate::Guess>,
    ) -> Result<Solution, SolverError> {
        self.validate()?;
        let _budget = crate::bvp::Budget::start(self.max_seconds);
        let lag = problem.lagrangian();
        let d = lag.dim();
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
        for (i, &ti) in t.iter().enumerate() {
            let (th, vel): (Vec<f64>, Vec<f64>) = match (guess, &target, &fixed_end) {
                (Some(g), _, _) => {
                    let (th, p) = g(ti);
                    let mut vel = vec![0.0; d];
                    lag.velocity(&th, &p, ti, &mut vel);
                    (th, vel)
                }
                (None, Some(target), _) => {
                    let y = target.linear(ti, &theta0);
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
        let objective = Objective {
            lag,
            problem,
            target: target.as_ref(),
            h_ref,
            slots,
            precond,
            t: t.clone(),
            theta0: theta0.clone(),
            fixed_end,
            offset,
            cache: RefCell::new(None),
        };
        let x0 = objective.pack(&theta, &v);
        // L-BFGS from a non-finite start never finds a descent direction and would spend its
        // whole iteration budget in line searches.
        let (cost0, grad0) = objective.evaluate(&x0);
        if !(cost0.is_finite() && grad0.iter().all(|g| g.is_finite())) {
            return Err(SolverError::NonFinite {
                what: "the discretised objective at the initial path".into(),
                t: 0.0,
            });
        }
        let n_params = objective.n_params();
        // In the preconditioned variables the kinetic term is the identity: the gradient
        // tolerance is per unknown, in units of the cost.
        let tol = self.gradient_tol * (n_params as f64).sqrt();
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), self.memory)
            .with_tolerance_grad(tol)
            .and_then(|s| s.with_tolerance_cost(0.0))
            .map_err(|e| SolverError::Unsupported(e.to_string()))?;
        let stop = Arc::new(Mutex::new(None));
        let watch = Watch {
            start: Instant::now(),
            // Its own budget, or what is left of an enclosing one (a search's).
            deadline: crate::bvp::Budget::deadline(),
            observers: self.observers.clone(),
            window: self.stall_window,
            tol,
            intervals: self.intervals,
            max_iterations: self.max_iterations,
            checkpoint: (0, f64::INFINITY),
            history: vec![(0, f64::INFINITY)],
            best: f64::INFINITY,
            recent: f64::INFINITY,
            stop: stop.clone(),
        };
        let result = Executor::new(ByRef(&objective), solver)
            .configure(|s| s.param(x0).max_iters(self.max_iterations))
            .add_observer(watch, ObserverMode::Always)
            .run()
            .map_err(|e| {
                let stopped = stop.lock().unwrap_or_else(|p| p.into_inner()).take();
                stopped.unwrap_or_else(|| SolverError::OptimizerFailed {
                    iterations: 0,
                    gradient_norm: f64::NAN,
                    reason: e.to_string(),
                })
            })?;
        let state = result.state();
        let iterations = state.get_iter() as usize;
        let best = state
            .get_best_param()
            .cloned()
            .ok_or_else(|| SolverError::OptimizerFailed {
                iterations,
                gradient_norm: f64::NAN,
                reason: "no finite objective value was found".into(),
            })?;
        let (_, grad) = objective.evaluate(&best);
        let gnorm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        // L-BFGS also stops when the cost no longer decreases at all (rounding level): that is
        // convergence too; the gradient norm is reported either way.
        let solver_converged = matches!(
            state.get_termination_status(),
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        );
        let converged = gnorm <= tol || solver_converged;
        let reason = match state.get_termination_status() {
            TerminationStatus::Terminated(r) => r.text().to_string(),
            TerminationStatus::NotTerminated => "not terminated".into(),
        };
        if !converged {
            return Err(SolverError::OptimizerFailed {
                iterations,
                gradient_norm: gnorm,
                reason: format!("{reason} (gradient norm {gnorm:.3e} above {tol:.3e})"),
            });
        }
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
            let mut p = vec![0.0; d];
            lag.momentum(th, vel, t[i], &mut p);
            let (mut dth, mut dp) = (vec![0.0; d], vec![0.0; d]);
            lag.field(t[i], th, &p, &mut dth, &mut dp, &mut fws);
            y[i * 2 * d..i * 2 * d + d].copy_from_slice(th);
            y[i * 2 * d + d..(i + 1) * 2 * d].copy_from_slice(&p);
            // θ-slopes are the spline's own; p-slopes come from the field.
            slopes[i * 2 * d..i * 2 * d + d].copy_from_slice(vel);
            slopes[i * 2 * d + d..(i + 1) * 2 * d].copy_from_slice(&dp);
        }
        let (cost, _) = objective.evaluate(&objective.pack(theta, v));
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
