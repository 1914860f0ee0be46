//! The cheapest certified minimum: a search over the extremals of a nonconvex problem.
//!
//! A local solve returns *an* extremal, which on a long horizon over a double well can be a
//! saddle of `J` far above the optimum. [`Search`] looks for the others as a careful analyst
//! would, then keeps the cheapest one the second-order check ([`crate::certify::certificate`])
//! certifies as a strict local minimum:
//!
//! 1. the local solve from the solver's own guess;
//! 2. toward each local minimum of `L` (found by descent from θ0 and from points around it,
//!    [`crate::search::extremals::candidate_minima`]): on a finite horizon, a path that approaches the
//!    minimum (and leaves it for a fixed end) minimised by the direct method, a descent method
//!    that does not stop at saddles, then polished by the boundary-value solver; on an infinite
//!    horizon, the extremal to that equilibrium;
//! 3. continuation in the horizon from a short one (where the extremal is unique) up to `T`,
//!    each step warm-started from the last, time-rescaled; a step that fails is halved, and a
//!    branch that cannot be continued ends (a fold);
//! 4. every saddle found that is cheaper than the best minimum found so far (or all, while no
//!    minimum is known) is left along its steepest descent direction (the lowest mode of the
//!    second variation, both signs): the direct method from the perturbed path, polished by
//!    the boundary-value solver, and the result classified in turn.
//!
//! What is certified is stated in [`Optimality`]: the cheapest of the minima found is not a
//! proof of global optimality, except for convex problems (quadratic loss with `H ⪰ 0`,
//! constant metric, affine drift, convex or no terminal cost), where the extremal is unique.
//!
//! Folder: this file (the search) and [`extremals`] (candidate minima of the loss and the
//! extremals toward them). Uses: the boundary-value and direct methods and the certificate;
//! nothing below depends on it.

use nalgebra::DVector;

use lossnav_problems::{End, Horizon, Problem};

pub mod extremals;

use crate::bvp::Bvp;
use crate::certify::certificate::SecondVariation;
use crate::direct::Direct;
use crate::error::SolverError;
use crate::search::extremals::candidate_minima;
use crate::solution::Guess;
use crate::solution::Solution;

/// Options of the search.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The boundary-value solver used for every solve and polish.
    pub bvp: Bvp,
    /// The direct method used for descent toward candidates and away from saddles.
    pub direct: Direct,
    /// Saddles left along their descent directions, at most.
    pub max_escapes: usize,
    /// Horizon continuation (finite horizons).
    pub horizon_continuation: bool,
    /// Candidate minima of `L` are searched up to this dimension (the multistart of
    /// [`candidate_minima`] costs `6D + 17` descents up to `D = 16`).
    pub max_candidate_dim: usize,
}

impl Default for Search {
    fn default() -> Self {
        Self {
            bvp: Bvp::default(),
            // A rough descent stage: the boundary-value solver polishes and meets `tol`.
            direct: Direct::default().with_intervals(200).with_tol(1e3),
            max_escapes: 4,
            horizon_continuation: true,
            max_candidate_dim: 20,
        }
    }
}

/// What the search can say about the answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Optimality {
    /// `J` is convex: the extremal is the unique, global minimum.
    Convex,
    /// The cheapest of this many distinct strict local minima found (not a proof of global
    /// optimality).
    CheapestOfMinima(usize),
    /// No extremal found could be certified a minimum (saddles only, or checks that could not
    /// run); the answer is the cheapest extremal found.
    Uncertified,
}

impl Optimality {
    /// Whether the answer is certified a minimum (the global one for [`Optimality::Convex`],
    /// the cheapest strict local minimum found otherwise).
    pub fn is_certified(&self) -> bool {
        !matches!(self, Optimality::Uncertified)
    }

    /// A sentence for output.
    pub fn describe(&self) -> String {
        match self {
            Optimality::Convex => {
                "global minimum: J is convex (quadratic loss with H ⪰ 0, constant metric, \
                 affine drift), so the extremal is unique"
                    .into()
            }
            Optimality::CheapestOfMinima(1) => {
                "the only strict local minimum found (not a proof of global optimality)".into()
            }
            Optimality::CheapestOfMinima(k) => format!(
                "the cheapest of {k} strict local minima found (not a proof of global optimality)"
            ),
            Optimality::Uncertified => {
                "no extremal found could be certified a minimum: this is the cheapest extremal \
                 found"
                    .into()
            }
        }
    }
}

/// One distinct extremal found by the search.
#[derive(Debug, Clone)]
pub struct Found {
    /// The trajectory (with its second-order status).
    pub solution: Solution,
    /// How it was found (`"local solve"`, `"toward minimum [..]"`, `"horizon continuation"`,
    /// `"escape from saddle"`).
    pub origin: String,
}

/// What the search returns.
#[derive(Debug, Clone)]
pub struct SearchResult {
    /// Index into `found` of the answer.
    pub best: usize,
    /// Distinct extremals, cheapest first.
    pub found: Vec<Found>,
    /// What is certified about the answer.
    pub optimality: Optimality,
    /// Attempts that failed, with why (for diagnostics; failures are normal in a search).
    pub failures: Vec<(String, SolverError)>,
}

impl SearchResult {
    /// The answer.
    pub fn solution(&self) -> &Solution {
        &self.found[self.best].solution
    }
}

/// The largest curvature `max |λ(∇²L(θ))|`, a time scale for the search's guesses: from the
/// dense Hessian up to `D = 64`, beyond by 50 steps of power iteration on Hessian–vector
/// products from a fixed pseudo-random start (`O(D)` each for structured losses; an estimate
/// from below, which is all a time scale needs), so no `D×D` eigenproblem runs inside a
/// budget.
fn curvature_scale(loss: &dyn lossnav_problems::Landscape, theta: &[f64]) -> f64 {
    let d = theta.len();
    if d <= 64 {
        return lossnav_problems::hessian_mat(loss, theta, 0.0)
            .symmetric_eigenvalues()
            .amax();
    }
    // A pseudo-random start: a uniform one is annihilated by losses of differences alone.
    let mut u = lossnav_problems::testbed::uniform(0xc0de);
    let mut v: Vec<f64> = (0..d).map(|_| u()).collect();
    let mut hv = vec![0.0; d];
    let mut estimate = 0.0;
    for _ in 0..50 {
        loss.hessian_vector(theta, 0.0, &v, &mut hv);
        let norm = hv.iter().map(|x| x * x).sum::<f64>().sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            break;
        }
        estimate = norm;
        for (vi, hi) in v.iter_mut().zip(&hv) {
            *vi = hi / norm;
        }
    }
    estimate
}

/// Whether `problem`'s objective is convex in the path: quadratic loss with `H ⪰ 0`, constant
/// metric, affine drift and a convex (quadratic, or no) terminal cost.
pub fn is_convex(problem: &Problem) -> bool {
    // Decided from the losses' structure (`O(D)` for diagonal curvatures): no `D×D` matrix.
    let lag = problem.lagrangian();
    let terminal_ok = match problem.end() {
        End::Free {
            terminal_cost: Some(c),
        } => c.is_convex_quadratic() == Some(true),
        _ => true,
    };
    lag.loss().is_convex_quadratic() == Some(true)
        && lag.metric().is_constant()
        && lag.drift().is_affine()
        && !lag.drift().is_time_dependent()
        && terminal_ok
}

/// The answer a user wants first: the cheapest extremal of `problem` that is certified a
/// strict local minimum, found by [`Search`] with its defaults (boundary-value solves at
/// tolerance 1e-8 from several starts, each with its second-order check).
/// [`SearchResult::optimality`] says what is certified; [`SearchResult::solution`] is the
/// trajectory. [`crate::Bvp::solve`] is one local solve from the solver's own guess (faster,
/// and on a multi-well landscape possibly a saddle).
///
/// ```
/// use lossnav_solvers::problems::{End, Horizon, Lagrangian, Problem, Quadratic};
/// let loss = Quadratic::diagonal(vec![1.0], vec![0.0]).unwrap();
/// let problem = Problem::new(
///     Lagrangian::new(loss).with_gamma(0.5),
///     vec![1.0].into(),
///     Horizon::Finite(2.0),
///     End::free(),
/// )
/// .unwrap();
/// let result = lossnav_solvers::solve_certified(&problem).unwrap();
/// assert!(result.optimality.is_certified());
/// ```
pub fn solve_certified(problem: &Problem) -> Result<SearchResult, SolverError> {
    Search::default().solve(problem)
}

impl Search {
    /// Searches for the cheapest certified minimum of `problem`.
    pub fn solve(&self, problem: &Problem) -> Result<SearchResult, SolverError> {
        self.bvp.validate()?;
        // One budget for the whole search: every solve in it shares `bvp.max_seconds`.
        let _budget = crate::budget::Budget::start(self.bvp.max_seconds);
        let out_of_time = |found: &[Found]| -> Result<(), SolverError> {
            match crate::budget::Budget::deadline() {
                Some(d) if std::time::Instant::now() > d => Err(SolverError::TimeLimit {
                    what: format!(
                        "the search for the cheapest minimum ({} extremals found so far; \
                         --local solves once)",
                        found.len()
                    ),
                    residual: f64::NAN,
                }),
                _ => Ok(()),
            }
        };
        let mut found: Vec<Found> = Vec::new();
        let mut failures = Vec::new();
        // 1. The local solve.
        let first = self.bvp.solve(problem);
        if is_convex(problem) {
            let solution = first?;
            return Ok(SearchResult {
                best: 0,
                found: vec![Found {
                    solution,
                    origin: "local solve".into(),
                }],
                optimality: Optimality::Convex,
                failures,
            });
        }
        let record = |found: &mut Vec<Found>,
                      failures: &mut Vec<(String, SolverError)>,
                      origin: String,
                      result: Result<Solution, SolverError>| {
            match result {
                Ok(sol) => {
                    if !found.iter().any(|f| same(&f.solution, &sol)) {
                        found.push(Found {
                            solution: sol,
                            origin,
                        });
                    }
                }
                Err(e) => failures.push((origin, e)),
            }
        };
        record(&mut found, &mut failures, "local solve".into(), first);
        out_of_time(&found)?;
        let pinned = matches!(problem.end(), End::Equilibrium { guess: Some(_) });
        let d = problem.dim();
        // 2. Toward each local minimum of L.
        if d <= self.max_candidate_dim && !pinned {
            for m in candidate_minima(problem) {
                let origin = format!("toward minimum {m:?}");
                let result = self.toward(problem, &m);
                record(&mut found, &mut failures, origin, result);
                out_of_time(&found)?;
            }
        }
        // 3. Continuation in the horizon.
        if let (true, Horizon::Finite(t_end)) = (self.horizon_continuation, problem.horizon()) {
            match self.horizon_continuation(problem, t_end) {
                Ok(sol) => record(
                    &mut found,
                    &mut failures,
                    "horizon continuation".into(),
                    Ok(sol),
                ),
                Err(e) => failures.push(("horizon continuation".into(), e)),
            }
            out_of_time(&found)?;
        }
        // 4. Leave saddles cheaper than every minimum found so far (descent from a saddle ends
        // below its cost; one above the best minimum is unlikely to lead lower, and each escape
        // costs a direct solve from a far path).
        let mut escapes = 0;
        let mut k = 0;
        while k < found.len() && escapes < self.max_escapes {
            let best_minimum = found
                .iter()
                .filter(|f| f.solution.second_order.is_minimum())
                .map(|f| rank(&f.solution))
                .fold(None, |a: Option<(f64, f64)>, r| match a {
                    Some(b) if b <= r => Some(b),
                    _ => Some(r),
                });
            let promising = best_minimum.is_none_or(|b| rank(&found[k].solution) < b);
            if found[k].solution.second_order.is_saddle() && promising {
                escapes += 1;
                let saddle = found[k].solution.clone();
                for result in self.escape(problem, &saddle) {
                    record(
                        &mut found,
                        &mut failures,
                        "escape from saddle".into(),
                        result,
                    );
                }
                out_of_time(&found)?;
            }
            k += 1;
        }
        if found.is_empty() {
            return Err(failures
                .into_iter()
                .next()
                .map(|(_, e)| e)
                .unwrap_or(SolverError::Unsupported("the search found nothing".into())));
        }
        found.sort_by(|a, b| {
            rank(&a.solution)
                .partial_cmp(&rank(&b.solution))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let minima = found
            .iter()
            .filter(|f| f.solution.second_order.is_minimum())
            .count();
        let (best, optimality) = match found
            .iter()
            .position(|f| f.solution.second_order.is_minimum())
        {
            Some(i) => (i, Optimality::CheapestOfMinima(minima)),
            None => (0, Optimality::Uncertified),
        };
        Ok(SearchResult {
            best,
            found,
            optimality,
            failures,
        })
    }

    /// The extremal toward the local minimum `m` of `L`.
    fn toward(&self, problem: &Problem, m: &[f64]) -> Result<Solution, SolverError> {
        let lag = problem.lagrangian();
        match problem.horizon() {
            Horizon::Infinite => {
                let p = Problem::new(
                    lag.clone(),
                    problem.theta0().clone(),
                    Horizon::Infinite,
                    End::Equilibrium {
                        guess: Some(DVector::from_column_slice(m)),
                    },
                )
                .map_err(|e| SolverError::Unsupported(e.to_string()))?;
                self.bvp.solve(&p)
            }
            Horizon::Finite(t_end) => {
                let theta0 = problem.theta0().as_slice().to_vec();
                let end: Option<Vec<f64>> = match problem.end() {
                    End::Fixed(v) => Some(v.as_slice().to_vec()),
                    _ => None,
                };
                // Approach m at the rate of the landscape's curvature there (≥ 4/T so it arrives
                // within the horizon), and leave it for a fixed end the same way.
                let curv = curvature_scale(lag.loss(), m);
                let rate = (lag.eta() * lag.k() * curv).sqrt().max(4.0 / t_end);
                let guess = move |t: f64| {
                    let a = (-rate * t).exp();
                    let b = (-rate * (t_end - t)).exp();
                    let theta: Vec<f64> = (0..m.len())
                        .map(|j| {
                            let mut v = m[j] + (theta0[j] - m[j]) * a;
                            if let Some(e) = &end {
                                v += (e[j] - m[j]) * b;
                            }
                            v
                        })
                        .collect();
                    let vel: Vec<f64> = (0..m.len())
                        .map(|j| {
                            let mut v = -rate * (theta0[j] - m[j]) * a;
                            if let Some(e) = &end {
                                v += rate * (e[j] - m[j]) * b;
                            }
                            v
                        })
                        .collect();
                    let mut p = vec![0.0; m.len()];
                    lag.momentum(&theta, &vel, t, &mut p);
                    (theta, p)
                };
                self.descend_and_polish(problem, &guess)
            }
        }
    }

    /// The direct method from `guess`, polished by the boundary-value solver.
    fn descend_and_polish(
        &self,
        problem: &Problem,
        guess: &Guess,
    ) -> Result<Solution, SolverError> {
        let rough = self.direct.solve_from(problem, Some(guess))?;
        let polish = |t: f64| rough.eval(t);
        self.bvp.solve_from(problem, &polish)
    }

    /// Continuation in the horizon from a short one up to `t_end`.
    fn horizon_continuation(&self, problem: &Problem, t_end: f64) -> Result<Solution, SolverError> {
        let lag = problem.lagrangian();
        // A horizon short next to the landscape's time scale at θ0, where the extremal is
        // unique.
        let curv = curvature_scale(lag.loss(), problem.theta0().as_slice());
        let scale = 1.0 / (lag.eta() * lag.k() * curv).sqrt().max(1e-12);
        let mut t = t_end.min(0.5 * scale);
        let at = |horizon: f64| {
            problem
                .with_horizon(Horizon::Finite(horizon))
                .map_err(|e| SolverError::Unsupported(e.to_string()))
        };
        let local = Bvp {
            continuation: false,
            ..self.bvp.clone()
        };
        let mut sol = self.bvp.solve(&at(t)?)?;
        let mut ratio = 1.5_f64;
        let mut steps = 0;
        while t < t_end {
            steps += 1;
            if steps > 200 {
                return Err(SolverError::Unsupported(
                    "horizon continuation took more than 200 steps".into(),
                ));
            }
            let next = (t * ratio).min(t_end);
            let (prev, s) = (&sol, t / next);
            // Time-rescaled previous solution: velocities (and momenta) scale by t/next.
            let guess = |tau: f64| {
                let (theta, p) = prev.eval(tau * s);
                (theta, p.iter().map(|v| v * s).collect())
            };
            match local.solve_from(&at(next)?, &guess) {
                Ok(new) => {
                    sol = new;
                    t = next;
                    ratio = (ratio * 1.2).min(1.5);
                }
                Err(e) => {
                    ratio = 1.0 + 0.5 * (ratio - 1.0);
                    if ratio < 1.01 {
                        return Err(SolverError::ContinuationFailed {
                            parameter: "horizon".into(),
                            reached: t / t_end,
                            min_step: ratio - 1.0,
                            cause: Box::new(e),
                        });
                    }
                }
            }
        }
        Ok(sol)
    }

    /// Solves from a saddle pushed along its lowest mode, both ways.
    fn escape(&self, problem: &Problem, saddle: &Solution) -> Vec<Result<Solution, SolverError>> {
        let Ok(sv) = SecondVariation::new(problem, saddle) else {
            return Vec::new();
        };
        let Some((_, mode, mode_dot)) = sv.lowest_mode() else {
            return Vec::new();
        };
        let mesh = sv.mesh().to_vec();
        let lag = problem.lagrangian();
        let size = 0.25
            * (1.0
                + saddle
                    .theta
                    .iter()
                    .flatten()
                    .fold(0.0_f64, |a, v| a.max(v.abs())));
        let mut out = Vec::new();
        for sign in [1.0, -1.0] {
            let alpha = sign * size;
            let guess = |t: f64| {
                let (mut theta, p) = saddle.eval(t);
                let mut vel = vec![0.0; theta.len()];
                lag.velocity(&theta, &p, t, &mut vel);
                // Piecewise-linear interpolation of the mode on the element mesh.
                let i = match mesh.binary_search_by(|v| v.total_cmp(&t)) {
                    Ok(i) => i.min(mesh.len() - 2),
                    Err(i) => i.saturating_sub(1).min(mesh.len() - 2),
                };
                let x = ((t - mesh[i]) / (mesh[i + 1] - mesh[i])).clamp(0.0, 1.0);
                for j in 0..theta.len() {
                    theta[j] += alpha * ((1.0 - x) * mode[i][j] + x * mode[i + 1][j]);
                    vel[j] += alpha * ((1.0 - x) * mode_dot[i][j] + x * mode_dot[i + 1][j]);
                }
                let mut p = vec![0.0; theta.len()];
                lag.momentum(&theta, &vel, t, &mut p);
                (theta, p)
            };
            out.push(self.descend_and_polish(problem, &guess));
        }
        out
    }
}

/// Ordering key: for `γ = 0` on an infinite horizon the resting cost at the equilibrium comes
/// first (it dominates over infinite time), then the cost.
fn rank(s: &Solution) -> (f64, f64) {
    let rest = s.tail.as_ref().filter(|_| s.cost_is_relative);
    (rest.map_or(0.0, |t| t.equilibrium_running_cost), s.cost)
}

/// Whether two solutions are the same extremal: same cost and the same path at a few times.
fn same(a: &Solution, b: &Solution) -> bool {
    let scale = 1.0 + a.cost.abs();
    if (a.cost - b.cost).abs() > 1e-6 * scale {
        return false;
    }
    let end = a.end_time().min(b.end_time());
    (0..=8).all(|i| {
        let t = end * i as f64 / 8.0;
        let (x, y) = (a.eval(t).0, b.eval(t).0);
        x.iter()
            .zip(&y)
            .all(|(p, q)| (p - q).abs() <= 1e-4 * (1.0 + q.abs()))
    })
}
