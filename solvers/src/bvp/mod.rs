//! The boundary-value solver: adaptive collocation of the optimality conditions, by the
//! sixth-order MIRK scheme at `tol ≤ 1e-6` on autonomous problems and three-stage Lobatto IIIA
//! (order 4) otherwise.
//!
//! One documented algorithm, in the spirit of scipy's `solve_bvp`:
//!
//! 1. Discretise the Hamiltonian system (docs/theory.md §2) on a mesh by three-stage Lobatto
//!    IIIA collocation (order 4) or, by default at tight tolerances, a sixth-order MIRK scheme
//!    ([`crate::bvp::scheme`]); solve the discrete equations by damped Newton with the exact
//!    Jacobian, factored as a band for small `D` and panel by panel with dense kernels beyond
//!    (`O(N·D²)` memory, `O(N·D³)` work per step), with chord steps while they contract fast.
//! 2. Estimate each interval's error from the defect of the interpolant (cubic or quintic);
//!    while some estimate exceeds `tol`, rebuild the mesh to equidistribute the error
//!    predicted by the scheme's order ([`crate::bvp::mesh`]); merge intervals far below `tol` once
//!    at the end.
//! 3. Infinite horizon: find the equilibrium, impose the stable-manifold projection condition of
//!    the linearisation at a truncation time chosen from the slowest closed-loop rate, and
//!    lengthen the horizon until the end point is close enough to the equilibrium that the
//!    neglected nonlinearity is below `tol`.
//! 4. Finite horizons start Newton from the solution of the problem linearised about rest at
//!    the end (fixed end) or the start (free end). When Newton fails from there and from the
//!    plain initial guess, continue from an easy problem: in `k`
//!    from 0 (finite horizon) or in the start point from the equilibrium (infinite horizon).
//!
//! Files: this one (options, the finite-horizon solve, mesh adaptation, continuation,
//! assembly of the [`Solution`]), `infinite.rs` (the infinite-horizon solve), `collocation/`
//! (the discrete equations, their Jacobian, Newton), [`scheme`], [`mesh`] (error estimate and
//! refinement), `quadrature.rs` (the discounted cost). Uses: `linalg/` for the Newton matrix,
//! `target/` for infinite horizons and terminal values, the solution vocabulary; asks
//! `certify/` for the second-order check of what it returns.

use lossnav_problems::{End, Horizon, Lagrangian, Points, Problem};

use crate::budget::Budget;
use crate::bvp::collocation::{EndCondition, Linearisation, NewtonOptions, System, Workspace};
use crate::bvp::scheme::Scheme;
use crate::error::SolverError;
use crate::observe::{Observer, Observers, Progress};
use crate::solution::{Accuracy, Diagnostics, Guess, Solution, Summary, Tail};
use crate::target::{terminal_value, Target};

pub(crate) mod collocation;
mod infinite;
pub mod mesh;
pub(crate) mod quadrature;
pub mod scheme;
mod warm;

/// How often an infinite horizon's truncation is lengthened (by 1.5 each time, so up to about
/// 130 times the first estimate) before the solve gives up.
const MAX_LENGTHENINGS: usize = 12;

/// Fewest intervals of the coarse first mesh of a finite-horizon solve without a guess
/// ([`Bvp::initial_intervals`] / 3): fewer cannot show the path's shape to the error estimate.
const MIN_COARSE_INTERVALS: usize = 4;

/// Newton's tolerance (scaled step size) on that coarse mesh: its solution only starts the next
/// mesh's Newton and feeds the error estimate that places its nodes. On the Figure 1 problem
/// the coarse mesh's estimate is about 1e-3, and Newton's last steps to the final tolerance
/// (1e-3 · tol) were most of that mesh's work.
const COARSE_NEWTON_TOL: f64 = 1e-6;

/// A Newton solve stopped at tolerance `l` is used for the error estimate only if the estimate
/// exceeds `LOOSE_MARGIN · l`, so that Newton's remaining error (about `l`) is a small part of
/// it: about 1 % where `h‖∂F‖ ≲ 1` on that mesh, more on stiffer problems, where it only moves
/// the next mesh's nodes (every returned mesh is solved to full accuracy).
const LOOSE_MARGIN: f64 = 100.0;

/// Options of the boundary-value solver.
///
/// ```
/// use lossnav_problems::load_problem;
/// use lossnav_solvers::Bvp;
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
/// let problem = load_problem(path).unwrap();
/// let solution = Bvp::default().with_tol(1e-8).solve(&problem).unwrap();
/// assert!(solution.accuracy.tolerance_met());
/// assert_eq!(solution.theta[0], vec![-0.6, 0.55]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Bvp {
    /// Bound on every interval's error estimate (mixed absolute/relative; see [`crate::bvp::mesh`]).
    pub tol: f64,
    /// The mesh may not grow beyond this many nodes.
    pub max_nodes: usize,
    /// Intervals of the first mesh. A finite-horizon solve without a guess and with
    /// [`Bvp::adapt_mesh`] starts on a third of them (if at least 4), and on all of them if
    /// the solve from there fails for any cause but a time limit.
    pub initial_intervals: usize,
    /// Newton iterations allowed per mesh.
    pub max_newton_iterations: usize,
    /// Infinite horizon: a fixed truncation time instead of the automatic choice.
    pub truncation: Option<f64>,
    /// Whether to fall back to continuation when Newton fails from the plain guess.
    pub continuation: bool,
    /// The most memory a solve may use, in bytes, checked against an estimate before each
    /// mesh is allocated ([`Bvp::memory_estimate`]).
    pub max_memory: usize,
    /// Whether to run the second-order check on the solution ([`crate::certify::certificate`]; about
    /// twice the cost of a small solve). When false, [`Solution::second_order`] says it was
    /// not checked.
    pub second_order: bool,
    /// Whether to adapt the mesh. When false the problem is solved once on a uniform mesh of
    /// `initial_intervals` intervals (for convergence studies); [`Solution::accuracy`] then says
    /// whether that mesh happens to meet `tol`.
    pub adapt_mesh: bool,
    /// Wall-clock budget in seconds (none by default): past it the solve ends with
    /// [`SolverError::TimeLimit`], checked at every Newton iteration.
    pub max_seconds: Option<f64>,
    /// Who hears about progress ([`crate::observe`]): once per mesh pass.
    pub observers: Observers,
    /// The discretisation ([`Scheme`]): by default sixth order for tolerances at or below
    /// [`crate::bvp::scheme::SIXTH_ORDER_BELOW`] on autonomous problems, fourth order otherwise.
    pub scheme: Scheme,
}

impl Default for Bvp {
    fn default() -> Self {
        Self {
            tol: 1e-8,
            max_nodes: 200_000,
            initial_intervals: 24,
            max_newton_iterations: 50,
            truncation: None,
            continuation: true,
            adapt_mesh: true,
            max_memory: crate::memory::DEFAULT_MAX_MEMORY,
            second_order: true,
            max_seconds: None,
            observers: Observers::default(),
            scheme: Scheme::Auto,
        }
    }
}

/// Newton iterations allowed per step of the continuation in the start point (infinite
/// horizons) before the step is halved.
const THETA0_STEP_NEWTON: usize = 12;

/// Error tolerance of a continuation's intermediate steps. Their solutions only start the next
/// step, and meshes that reach 1e-6 have far fewer nodes than those that reach 1e-10 (a tenth
/// at order 4, a quarter at order 6), so each step, and above all each failed try near a
/// fold, costs that much less. The last step is then solved at the requested tolerance.
const STEP_TOL: f64 = 1e-6;

/// What [`Accuracy`] reports the boundary-value solver's tolerance against.
/// What the accuracy reports, per scheme order.
fn measure(order: u32) -> &'static str {
    if order == 6 {
        "collocation error estimate (order 6)"
    } else {
        "collocation error estimate (order 4)"
    }
}

/// A mesh and nodal values `y = (θ, p)`, node-major.
#[derive(Debug, Clone)]
struct State {
    t: Vec<f64>,
    y: Vec<f64>,
}

/// What the adaptive loop reports besides the state.
#[derive(Debug, Clone, Default)]
struct Stats {
    iterations: usize,
    passes: usize,
    max_error: f64,
    /// Order of the scheme of the last mesh pass.
    order: u32,
}

impl Stats {
    /// Adds the work of a later adaptive run; its error and order are the ones that stand.
    fn absorb(&mut self, later: Stats) {
        self.iterations += later.iterations;
        self.passes += later.passes;
        self.max_error = later.max_error;
        self.order = later.order;
    }
}

/// The end condition of a finite horizon: a fixed end point, or a free end with its terminal
/// cost (`None` for an equilibrium end, which needs an infinite horizon).
fn finite_end(problem: &Problem) -> Option<EndCondition> {
    let lag = problem.lagrangian();
    match problem.end() {
        End::Fixed(v) => Some(EndCondition::Fixed(v.as_slice().to_vec())),
        End::Free { terminal_cost } => Some(EndCondition::Free {
            eta: lag.eta(),
            cost: terminal_cost.clone(),
        }),
        End::Equilibrium { .. } => None,
    }
}

/// The end condition of an infinite horizon truncated at the target equilibrium: the
/// stable-manifold projection.
fn projection_end(target: &Target, lag: &Lagrangian) -> EndCondition {
    EndCondition::Projection {
        theta_star: target.theta_star.clone(),
        p_star: target.p_star.clone(),
        eta_p: &target.riccati * lag.eta(),
    }
}

impl Bvp {
    /// Sets the tolerance.
    pub fn with_tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Solves on a fixed uniform mesh of `intervals` intervals, without adaptation.
    pub fn with_fixed_mesh(mut self, intervals: usize) -> Self {
        self.initial_intervals = intervals;
        self.adapt_mesh = false;
        self
    }

    /// Fixes the truncation time of infinite-horizon problems.
    pub fn with_truncation(mut self, t: f64) -> Self {
        self.truncation = Some(t);
        self
    }

    /// Bytes a mesh of `nodes` nodes at `D = dim` needs: the Newton matrix (a band of
    /// `2·(3D−1) + 3D` diagonals below `D = 8`; above it the `2D×4D` interval blocks, which its
    /// factors overwrite: [`crate::linalg::staircase`]), about 52 vectors of `2D` values per node
    /// (states, fields, second derivatives, residuals, steps, the stage and error-estimate
    /// batches, the solution), and, once per solve, the dense
    /// `2D×2D` workspaces of the field Jacobian, the sixth-order stages and the
    /// infinite-horizon target (about thirty).
    pub fn memory_estimate(dim: usize, nodes: usize) -> usize {
        let d = dim as u128;
        let per_node = if dim < 8 {
            2 * d * (9 * d - 2)
        } else {
            8 * d * d
        } + 104 * d;
        let fixed = 120 * d * d;
        usize::try_from(8 * (per_node * nodes as u128 + fixed)).unwrap_or(usize::MAX)
    }

    /// Refuses a mesh whose [`Bvp::memory_estimate`] is above `max_memory`, and one whose
    /// memory the system would not grant ([`crate::memory::probe`]).
    fn check_memory(&self, dim: usize, nodes: usize) -> Result<(), SolverError> {
        crate::memory::reserve(
            Self::memory_estimate(dim, nodes),
            self.max_memory,
            "boundary-value solver",
            "its Newton matrix is O(N·D²); the direct method (--method direct) works in O(N·D) \
             memory",
            nodes,
            dim,
        )
    }

    /// Sets the wall-clock budget in seconds.
    pub fn with_max_seconds(mut self, seconds: f64) -> Self {
        self.max_seconds = Some(seconds);
        self
    }

    /// Reports progress to `observer`.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn Observer>) -> Self {
        self.observers = Observers(Some(observer));
        self
    }

    /// Checks the options (tolerance, node limit, ...) without solving anything.
    pub fn validate(&self) -> Result<(), SolverError> {
        crate::budget::check_max_seconds(self.max_seconds)?;
        if !(self.tol.is_finite() && self.tol > 0.0 && self.tol < 1.0) {
            return Err(SolverError::InvalidOption {
                name: "tol",
                value: self.tol,
                requirement: "must be in (0, 1)",
            });
        }
        if self.tol < 1e-13 {
            return Err(SolverError::InvalidOption {
                name: "tol",
                value: self.tol,
                requirement: "must be at least 1e-13 (rounding error dominates below)",
            });
        }
        if self.initial_intervals < 2 {
            return Err(SolverError::InvalidOption {
                name: "initial_intervals",
                value: self.initial_intervals as f64,
                requirement: "must be at least 2",
            });
        }
        if let Some(t) = self.truncation {
            if !(t.is_finite() && t > 0.0) {
                return Err(SolverError::InvalidOption {
                    name: "truncation",
                    value: t,
                    requirement: "must be a finite number > 0",
                });
            }
        }
        Ok(())
    }

    /// Solves the problem from the solver's own initial guess (for a finite horizon the solution
    /// of the problem linearised about rest at the end or start, else a straight line to a fixed
    /// end or rest at `θ0`; the linearised solution at the equilibrium for an infinite horizon).
    pub fn solve(&self, problem: &Problem) -> Result<Solution, SolverError> {
        self.validate()?;
        let _budget = Budget::start(self.max_seconds);
        // Before the dense workspaces are allocated.
        self.check_memory(problem.dim(), self.initial_intervals + 1)?;
        match problem.horizon() {
            Horizon::Finite(t_end) => self.solve_finite(problem, t_end, None),
            Horizon::Infinite => self.solve_infinite(problem, None),
        }
        .and_then(|s| s.finite(problem.lagrangian()))
        .map(|s| self.certified(problem, s))
    }

    fn certified(&self, problem: &Problem, solution: Solution) -> Solution {
        if self.second_order {
            solution.checked(problem)
        } else {
            solution
        }
    }

    /// Solves the problem starting Newton from `guess(t) = (θ(t), p(t))`, for instance a
    /// previous [`Solution::eval`]. Where a problem has several extremals (a double well), the
    /// guess selects which one is found.
    pub fn solve_from(&self, problem: &Problem, guess: &Guess) -> Result<Solution, SolverError> {
        self.validate()?;
        let _budget = Budget::start(self.max_seconds);
        self.check_memory(problem.dim(), self.initial_intervals + 1)?;
        match problem.horizon() {
            Horizon::Finite(t_end) => self.solve_finite(problem, t_end, Some(guess)),
            Horizon::Infinite => self.solve_infinite(problem, Some(guess)),
        }
        .and_then(|s| s.finite(problem.lagrangian()))
        .map(|s| self.certified(problem, s))
    }

    fn newton_options(&self) -> NewtonOptions {
        NewtonOptions {
            tol: (1e-3 * self.tol).max(1e-14),
            max_iterations: self.max_newton_iterations,
            deadline: Budget::deadline(),
        }
    }

    /// Newton + mesh adaptation until every interval meets `tol`, with the scheme
    /// [`Bvp::scheme`] calls for at this tolerance. On success `ws.f` holds the field values at
    /// the nodes of the returned state and `ws.a` their second derivatives (sixth order) or
    /// nothing (fourth order).
    fn adapt(
        &self,
        sys: &System,
        state: State,
        ws: &mut Workspace,
    ) -> Result<(State, Stats), SolverError> {
        self.adapt_from(sys, state, None, ws)
    }

    /// [`Bvp::adapt`], with Newton on the first mesh stopped at `first_tol` (a step size in
    /// Newton's scaled norm) instead of the final tolerance's, for a first mesh that will almost
    /// certainly be refined: its solution is only the start of the next mesh's Newton and the
    /// source of the error estimate that places that mesh's nodes. If the estimate is within
    /// [`LOOSE_MARGIN`] times `first_tol`, or meets the tolerance, that mesh is solved again to
    /// the final accuracy before anything is decided from it.
    fn adapt_from(
        &self,
        sys: &System,
        mut state: State,
        first_tol: Option<f64>,
        ws: &mut Workspace,
    ) -> Result<(State, Stats), SolverError> {
        let n = 2 * sys.lag.dim();
        let (sys, order) = self.discretised(sys);
        let sys = &sys;
        let mut stats = Stats {
            order,
            ..Stats::default()
        };
        let mut coarsened = false;
        let tight = self.newton_options();
        // Without mesh adaptation the first mesh is the last: solved to full accuracy.
        let mut loose = first_tol.filter(|&l| self.adapt_mesh && l > tight.tol);
        loop {
            stats.passes += 1;
            self.check_memory(sys.lag.dim(), state.t.len())?;
            let opts = NewtonOptions {
                tol: loose.unwrap_or(tight.tol),
                ..tight
            };
            let report = sys.newton(&state.t, &mut state.y, opts, ws)?;
            stats.iterations += report.iterations;
            sys.eval_nodes(&state.t, &state.y, ws)?;
            sys.eval_curvatures(&state.t, &state.y, ws);
            let errors = mesh::estimate(sys, &state.t, &state.y, ws);
            let (worst_i, max_error) = mesh::worst(&errors);
            stats.max_error = max_error;
            self.observers.report(|| Progress {
                solver: "bvp",
                stage: format!("mesh pass {}, {} nodes", stats.passes, state.t.len()),
                iteration: stats.iterations,
                measure: "largest error estimate",
                value: max_error,
                elapsed: Budget::elapsed(),
                total: None,
            });
            if let Some(l) = loose.take() {
                // A NaN estimate also goes to the full-accuracy solve, which names its cause.
                let informative = max_error > self.tol.max(LOOSE_MARGIN * l);
                if !informative {
                    continue;
                }
            }
            if !self.adapt_mesh {
                return Ok((state, stats));
            }
            if max_error <= self.tol {
                if !coarsened {
                    coarsened = true;
                    if let Some(t_new) = mesh::coarsen(&state.t, &errors, self.tol, order) {
                        state.y = mesh::interpolate(&state.t, &state.y, &ws.f, &ws.a, n, &t_new);
                        state.t = t_new;
                        continue;
                    }
                }
                return Ok((state, stats));
            }
            let t_new = mesh::refine(&state.t, &errors, self.tol, order);
            self.check_memory(sys.lag.dim(), t_new.len())?;
            if t_new.len() > self.max_nodes || stats.passes >= 60 {
                return Err(SolverError::MeshLimit {
                    nodes: state.t.len(),
                    tol: self.tol,
                    max_error,
                    worst_t: 0.5 * (state.t[worst_i] + state.t[worst_i + 1]),
                });
            }
            state.y = mesh::interpolate(&state.t, &state.y, &ws.f, &ws.a, n, &t_new);
            state.t = t_new;
        }
    }

    /// `sys` discretised by the scheme [`Bvp::scheme`] calls for at this tolerance, and the
    /// scheme's order.
    fn discretised<'a>(&self, sys: &System<'a>) -> (System<'a>, u32) {
        let order = self.scheme.order(self.tol, System::autonomous(sys.lag));
        (
            System {
                order6: order == 6,
                ..*sys
            },
            order,
        )
    }

    /// Affine fields, infinite horizon: the linearised path the solve starts from is the exact
    /// solution, so its error estimate predicts that of the discrete solution. The mesh is
    /// refined from it (and the start recomputed on the new mesh) before anything is
    /// factored: at D = 1000 the factorisation of a first mesh that was then refined anyway
    /// was 40 % of the solve.
    fn premesh(
        &self,
        sys: &System,
        target: &Target,
        mut state: State,
        ws: &mut Workspace,
    ) -> Result<State, SolverError> {
        let (sys, order) = self.discretised(sys);
        let sys = &sys;
        for _ in 0..4 {
            if Budget::expired() {
                return Err(SolverError::TimeLimit {
                    what: format!(
                        "the boundary-value solver's first mesh (premeshing, {} nodes)",
                        state.t.len()
                    ),
                    residual: f64::NAN,
                });
            }
            sys.eval_nodes(&state.t, &state.y, ws)?;
            sys.eval_curvatures(&state.t, &state.y, ws);
            let errors = mesh::estimate(sys, &state.t, &state.y, ws);
            // A NaN estimate is left to the solve, which names its cause.
            let worst = mesh::worst(&errors).1;
            if worst.is_nan() || worst <= self.tol {
                break;
            }
            let t_new = mesh::refine(&state.t, &errors, self.tol, order);
            if t_new.len() > self.max_nodes {
                break;
            }
            self.check_memory(sys.lag.dim(), t_new.len())?;
            state = State {
                y: target.linear_path(&t_new, sys.theta0),
                t: t_new,
            };
        }
        Ok(state)
    }

    /// Solves the problem with the field linearised about rest at `theta_ref` (`p = 0`) on the
    /// initial mesh, from `plain`; returns the state and the Newton iterations it took, or
    /// `None` if the linear problem cannot be solved.
    fn linearised_guess(
        &self,
        lag: &Lagrangian,
        theta0: &[f64],
        end: &EndCondition,
        theta_ref: &[f64],
        plain: State,
        ws: &mut Workspace,
    ) -> Option<(State, usize)> {
        let reference: Vec<f64> = theta_ref
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0.0, theta_ref.len()))
            .collect();
        let lin = Linearisation::new(lag, reference);
        let sys = System {
            linearised: Some(&lin),
            ..System::new(lag, theta0, end)
        };
        let mut state = plain;
        let report = sys
            .newton(&state.t, &mut state.y, self.newton_options(), ws)
            .ok()?;
        Some((state, report.iterations))
    }

    /// Continuation over `s ∈ [0, 1]`: `make(s)` gives the Lagrangian and start point at `s`;
    /// `s = 0` must be solvable from `initial`. Each step may take at most `step_newton`
    /// Newton iterations (per mesh pass) before it is halved.
    fn continuation(
        &self,
        parameter: &str,
        end: &EndCondition,
        initial: State,
        make: &dyn Fn(f64) -> (Lagrangian, Vec<f64>),
        step_newton: usize,
        ws: &mut Workspace,
    ) -> Result<(State, Stats, usize), SolverError> {
        const MIN_STEP: f64 = 1.0 / 4096.0;
        let loose = Bvp {
            tol: self.tol.max(STEP_TOL),
            ..self.clone()
        };
        let stepper = Bvp {
            max_newton_iterations: self.max_newton_iterations.min(step_newton),
            ..loose.clone()
        };
        let (lag0, th0) = make(0.0);
        let sys0 = System::new(&lag0, &th0, end);
        let (mut state, mut stats) = loose.adapt(&sys0, initial, ws)?;
        let (mut s, mut ds, mut steps) = (0.0_f64, 0.25_f64, 0usize);
        while s < 1.0 {
            let next = (s + ds).min(1.0);
            let (lag, th) = make(next);
            let sys = System::new(&lag, &th, end);
            match stepper.adapt(&sys, state.clone(), ws) {
                Ok((st, stt)) => {
                    state = st;
                    stats.iterations += stt.iterations;
                    stats.passes += stt.passes;
                    stats.max_error = stt.max_error;
                    stats.order = stt.order;
                    s = next;
                    steps += 1;
                    ds = (ds * 1.5).min(0.5);
                }
                // Budgets are not cured by shorter steps.
                Err(
                    e @ (SolverError::TimeLimit { .. }
                    | SolverError::MemoryLimit { .. }
                    | SolverError::OutOfMemory { .. }),
                ) => return Err(e),
                Err(e) => {
                    ds *= 0.5;
                    if ds < MIN_STEP {
                        return Err(SolverError::ContinuationFailed {
                            parameter: parameter.to_string(),
                            reached: s,
                            min_step: MIN_STEP,
                            cause: Box::new(e),
                        });
                    }
                }
            }
        }
        if loose.tol > self.tol {
            // The end point at the requested tolerance, from its loose solution.
            let (lag, th) = make(1.0);
            let sys = System::new(&lag, &th, end);
            let (st, stt) = self.adapt(&sys, state, ws)?;
            state = st;
            stats.iterations += stt.iterations;
            stats.passes += stt.passes;
            stats.max_error = stt.max_error;
            stats.order = stt.order;
        }
        Ok((state, stats, steps))
    }

    fn solve_finite(
        &self,
        problem: &Problem,
        t_end: f64,
        user: Option<&Guess>,
    ) -> Result<Solution, SolverError> {
        let lag = problem.lagrangian();
        let d = lag.dim();
        let theta0 = problem.theta0().as_slice();
        let end = finite_end(problem).expect("validated: equilibrium needs an infinite horizon");
        let uniform =
            |m: usize| -> Vec<f64> { (0..=m).map(|i| t_end * i as f64 / m as f64).collect() };
        let t = uniform(self.initial_intervals);
        let start = |t: &[f64], lag: &Lagrangian, theta0: &[f64]| -> State {
            if let Some(g) = user {
                return from_guess(t, g);
            }
            let mut y = vec![0.0; t.len() * 2 * d];
            // Straight line to a fixed end, with the momentum of its constant velocity.
            let vel: Option<Vec<f64>> = match &end {
                EndCondition::Fixed(target) => {
                    Some((0..d).map(|j| (target[j] - theta0[j]) / t_end).collect())
                }
                _ => None,
            };
            for (node, &ti) in y.chunks_exact_mut(2 * d).zip(t) {
                let (th, p) = node.split_at_mut(d);
                match &vel {
                    Some(vel) => {
                        for j in 0..d {
                            th[j] = theta0[j] + vel[j] * ti;
                        }
                        if lag.metric().is_invertible() {
                            lag.momentum(th, vel, ti, p);
                        }
                    }
                    None => th.copy_from_slice(theta0),
                }
            }
            State { t: t.to_vec(), y }
        };
        let guess = |lag: &Lagrangian, theta0: &[f64]| start(&t, lag, theta0);
        let mut ws = Workspace::new(d);
        let sys = System::new(lag, theta0, &end);
        // Without a user guess, start from the solution of the problem linearised about rest at
        // the end point (fixed end) or the start (free end): the linear-quadratic model already
        // has the optimal path's shape (a fast approach, then slow settling), where a straight
        // line can leave damped Newton crawling for a dozen iterations. Fall back to the plain
        // guess if the linear problem is singular or its solution does not lead to convergence.
        let linear_start = |t: &[f64], ws: &mut Workspace| match (&end, user) {
            (_, Some(_)) => None,
            (EndCondition::Fixed(target), None) => {
                self.linearised_guess(lag, theta0, &end, target, start(t, lag, theta0), ws)
            }
            (_, None) => {
                self.linearised_guess(lag, theta0, &end, theta0, start(t, lag, theta0), ws)
            }
        };
        let from_linear = |t: &[f64], first_tol: Option<f64>, ws: &mut Workspace| {
            let (state, iterations) =
                linear_start(t, ws).ok_or(SolverError::Singular { t: 0.0 })?;
            self.adapt_from(&sys, state, first_tol, ws)
                .map(|(s, mut st)| {
                    st.iterations += iterations;
                    (s, st)
                })
        };
        // The linearised start is first solved on a third of the first mesh: the nonlinear
        // Newton iterations, most of a solve's work, then cost a third, and that mesh's error
        // estimate places the nodes of the next (on the Figure 1 problem at tol 1e-8: 9 nodes
        // refined to 44 in one pass, 40 % less time than from 25 nodes). A user's guess keeps
        // the full first mesh, which must resolve it. If the coarse solve fails, the solve
        // starts again on the full mesh.
        let coarse = self.initial_intervals / 3;
        let mut direct = Err(SolverError::Singular { t: 0.0 });
        if user.is_none() && self.adapt_mesh && coarse >= MIN_COARSE_INTERVALS {
            direct = from_linear(&uniform(coarse), Some(COARSE_NEWTON_TOL), &mut ws);
            // A memory limit may come from a refinement of the coarse mesh's estimate that the
            // full first mesh, solved directly, would not need: that one is still tried.
            if let Err(e @ (SolverError::InvalidOption { .. } | SolverError::TimeLimit { .. })) =
                direct
            {
                return Err(e);
            }
        }
        if direct.is_err() {
            direct = from_linear(&t, None, &mut ws);
        }
        if direct.is_err() {
            direct = self.adapt(&sys, guess(lag, theta0), &mut ws);
        }
        let (state, stats, continuation) = match direct {
            Ok((s, st)) => (s, st, None),
            Err(e)
                if !self.continuation
                    || matches!(
                        e,
                        SolverError::InvalidOption { .. }
                            | SolverError::MemoryLimit { .. }
                            | SolverError::OutOfMemory { .. }
                    ) =>
            {
                return Err(e)
            }
            Err(_) => {
                let k = lag.k();
                let make = |s: f64| (lag.clone().with_k(s * k), theta0.to_vec());
                let (lag0, _) = make(0.0);
                let (state, stats, steps) = self.continuation(
                    "k",
                    &end,
                    guess(&lag0, theta0),
                    &make,
                    self.max_newton_iterations,
                    &mut ws,
                )?;
                (state, stats, Some(("k".to_string(), steps)))
            }
        };
        Ok(self.assemble(problem, state, stats, continuation, None, None, &mut ws))
    }

    /// Builds the solution: path quantities, cost quadrature and diagnostics.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &self,
        problem: &Problem,
        state: State,
        stats: Stats,
        continuation: Option<(String, usize)>,
        target: Option<&Target>,
        tail: Option<Tail>,
        ws: &mut Workspace,
    ) -> Solution {
        let lag = problem.lagrangian();
        let d = lag.dim();
        let n = 2 * d;
        // `adapt` leaves the node fields of the state it returns in `ws.f`.
        debug_assert_eq!(ws.f.len(), state.y.len());
        let slopes = ws.f.clone();
        let curvatures = ws.a.clone();
        let nodes = state.t.len();
        let relative = target.is_some_and(Target::relative);
        let offset = if relative {
            target.map_or(0.0, |t| t.running_cost)
        } else {
            0.0
        };
        let mut cost = integrate_cost(lag, &state.t, &state.y, &slopes, &curvatures, offset);
        let t_end = *state.t.last().unwrap();
        let last_theta = &state.y[(nodes - 1) * n..(nodes - 1) * n + d];
        cost += lag.discount(t_end) * terminal_value(problem, target, last_theta, t_end);
        let summary = Summary {
            method: "bvp",
            accuracy: if stats.max_error <= self.tol {
                Accuracy::Met {
                    measure: measure(stats.order),
                    estimate: stats.max_error,
                    tol: self.tol,
                }
            } else {
                Accuracy::FixedMeshAbove {
                    measure: measure(stats.order),
                    estimate: stats.max_error,
                    tol: self.tol,
                }
            },
            cost,
            cost_is_relative: relative,
            diagnostics: Diagnostics {
                iterations: stats.iterations,
                nodes,
                max_residual: stats.max_error,
                mesh_passes: stats.passes,
                continuation,
            },
            tail,
        };
        Solution::from_nodes(lag, state.t, &state.y, slopes, summary).with_curvatures(curvatures)
    }
}

/// `∫₀ᵀ e^{-γt} (ℓ(t) - offset) dt` along the interpolant (quintic when second derivatives `a`
/// are given, cubic when `a` is empty), with the exponentially fitted
/// five-point Lobatto rule on every interval. The integrand at the mesh nodes is shared by the
/// two intervals meeting there, and the weights are reused while the interval length repeats
/// (refined intervals come in runs of equal pieces).
pub(crate) fn integrate_cost(
    lag: &Lagrangian,
    t: &[f64],
    y: &[f64],
    f: &[f64],
    a: &[f64],
    offset: f64,
) -> f64 {
    let d = lag.dim();
    let n = 2 * d;
    let intervals = t.len() - 1;
    // The interpolant at the three interior nodes of every interval; the loss at all nodes and
    // at all interior points is evaluated in two batches.
    let interior = &quadrature::NODES[1..4];
    let mut states = vec![0.0; intervals * interior.len() * n];
    let mut times = Vec::with_capacity(intervals * interior.len());
    for (i, s) in states.chunks_exact_mut(interior.len() * n).enumerate() {
        let h = t[i + 1] - t[i];
        let (e0, e1) = mesh::ends(y, f, a, n, i);
        for (&x, s) in interior.iter().zip(s.chunks_exact_mut(n)) {
            crate::solution::hermite::value_at(x, h, e0, e1, s);
            times.push(t[i] + x * h);
        }
    }
    let mut node_loss = vec![0.0; t.len()];
    lag.loss().values(Points::new(y, d, n, t), &mut node_loss);
    let mut interior_loss = vec![0.0; times.len()];
    lag.loss()
        .values(Points::new(&states, d, n, &times), &mut interior_loss);
    let ell = |s: &[f64], loss: f64| {
        lag.kinetic_from_momentum(&s[..d], &s[d..]) + lag.k() * loss - offset
    };
    let mut total = 0.0;
    let mut left = ell(&y[..n], node_loss[0]);
    let (mut cached_h, mut w) = (f64::NAN, [0.0; 5]);
    for i in 0..intervals {
        let h = t[i + 1] - t[i];
        if h != cached_h {
            (cached_h, w) = (h, quadrature::weights(lag.gamma(), h));
        }
        let right = ell(&y[(i + 1) * n..(i + 2) * n], node_loss[i + 1]);
        let mut sum = w[0] * left + w[4] * right;
        for (k, &wk) in w[1..4].iter().enumerate() {
            let q = i * interior.len() + k;
            sum += wk * ell(&states[q * n..(q + 1) * n], interior_loss[q]);
        }
        total += lag.discount(t[i]) * sum;
        left = right;
    }
    total
}

/// Nodal values of a user's guess on mesh `t`.
fn from_guess(t: &[f64], guess: &Guess) -> State {
    let y = t
        .iter()
        .flat_map(|&ti| {
            let (th, p) = guess(ti);
            th.into_iter().chain(p)
        })
        .collect();
    State { t: t.to_vec(), y }
}
