//! Several extremals of one problem: a double well has a trajectory ending in each basin, and
//! only one is optimal.

use nalgebra::DVector;

use lossnav_problems::{gradient_vec, End, Horizon, Landscape, Problem};

use crate::error::SolverError;
use crate::solution::Solution;
use crate::solver::Solver;

/// One stationary trajectory of the objective.
#[derive(Debug, Clone)]
pub struct Extremal {
    /// Where it ends: the equilibrium (infinite horizon) or `θ(T)`.
    pub end: Vec<f64>,
    /// The trajectory.
    pub solution: Solution,
    /// Whether it has the lowest cost of those found.
    pub global: bool,
}

/// What [`extremals`] found: the distinct extremals (global one marked) and the candidates
/// that failed, with why.
#[derive(Debug, Clone)]
pub struct Extremals {
    /// Distinct extremals, cheapest first.
    pub found: Vec<Extremal>,
    /// Candidates that did not produce an extremal.
    pub failed: Vec<(Vec<f64>, SolverError)>,
}

/// Solves `problem` toward each candidate end point and returns every distinct extremal.
///
/// Infinite horizon: each candidate is an equilibrium guess. Finite horizon with a free end:
/// each candidate is where the initial path (a straight line from θ0) ends. Fixed ends have a
/// single candidate, the end itself. Costs are compared directly, except for `γ = 0` on an
/// infinite horizon, where costs are relative to each equilibrium's resting cost `ℓ*`: there the
/// lower `ℓ*` wins (it dominates over infinite time) and the relative cost breaks ties.
pub fn extremals(problem: &Problem, solver: &dyn Solver, candidates: &[Vec<f64>]) -> Extremals {
    let mut found: Vec<Extremal> = Vec::new();
    let mut failed = Vec::new();
    let theta0 = problem.theta0().clone();
    for c in candidates {
        let attempt = match (problem.horizon(), problem.end()) {
            (Horizon::Infinite, _) => Problem::new(
                problem.lagrangian().clone(),
                theta0.clone(),
                Horizon::Infinite,
                End::Equilibrium {
                    guess: Some(DVector::from_column_slice(c)),
                },
            )
            .map_err(|e| SolverError::Unsupported(e.to_string()))
            .and_then(|p| solver.solve(&p)),
            (Horizon::Finite(t_end), End::Free { .. }) => {
                let guess = |t: f64| {
                    let s = t / t_end;
                    let th: Vec<f64> = theta0.iter().zip(c).map(|(a, b)| a + s * (b - a)).collect();
                    (th, vec![0.0; c.len()])
                };
                solver.solve_from(problem, &guess)
            }
            _ => solver.solve(problem),
        };
        match attempt {
            Ok(sol) => {
                let end = match &sol.tail {
                    Some(t) => t.theta_star.as_slice().to_vec(),
                    None => sol.theta.last().map(<[f64]>::to_vec).unwrap_or_default(),
                };
                let duplicate = found.iter().any(|e| {
                    e.end
                        .iter()
                        .zip(&end)
                        .all(|(a, b)| (a - b).abs() < 1e-6 * (1.0 + b.abs()))
                        && (e.solution.cost - sol.cost).abs() < 1e-8 * (1.0 + sol.cost.abs())
                });
                if !duplicate {
                    found.push(Extremal {
                        end,
                        solution: sol,
                        global: false,
                    });
                }
            }
            Err(e) => failed.push((c.clone(), e)),
        }
    }
    let key = |e: &Extremal| {
        let rest = e
            .solution
            .tail
            .as_ref()
            .filter(|_| e.solution.cost_is_relative);
        (
            rest.map_or(0.0, |t| t.equilibrium_running_cost),
            e.solution.cost,
        )
    };
    found.sort_by(|a, b| {
        key(a)
            .partial_cmp(&key(b))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    if let Some(first) = found.first_mut() {
        first.global = true;
    }
    Extremals { found, failed }
}

/// Up to this `D` the descents start along every coordinate axis; beyond, along
/// [`RANDOM_DIRECTIONS`] pseudo-random directions (the work is `starts × D` per descent step).
pub const AXIS_STARTS_MAX_DIM: usize = 16;
/// Directions of the starts beyond [`AXIS_STARTS_MAX_DIM`].
pub const RANDOM_DIRECTIONS: usize = 4;
/// Radii of the starts around θ0, in units of `r = 1 + |θ0|∞`.
pub const START_RADII: [f64; 3] = [1.0, 2.0, 4.0];
/// Quasi-random starts in the box `θ0 ± 4r` (for `D ≤ AXIS_STARTS_MAX_DIM`).
pub const BOX_STARTS: usize = 16;

/// Candidate end points: the minima of the loss reached by natural-gradient descent from a
/// multi-start, deduplicated.
///
/// Starts: θ0; `θ0 ± ρ·eᵢ` along each axis at the radii `ρ ∈ {r, 2r, 4r}` (`r = 1 + |θ0|∞`;
/// pseudo-random unit directions instead of axes above `D = 16`); and, up to `D = 16`,
/// [`BOX_STARTS`] points of a fixed pseudo-random sequence in the box `θ0 ± 4r`. Each end is
/// kept if its gradient vanishes (to `1e-6`) and its Hessian is positive definite (checked
/// densely up to [`lossnav_problems::landscape::DENSE_CHECK_MAX_DIM`]; beyond, a zero-gradient
/// end is kept and left to the second-order certificate of the path toward it).
///
/// What this guarantees: every minimum whose basin of attraction (under the descent) contains
/// one of the starts. A well whose basin lies outside `θ0 ± 4r`, or between the starts, can be
/// missed; the search then says only that its answer is the cheapest of the minima found.
/// The descents read the solve's time budget and stop when it runs out.
pub fn candidate_minima(problem: &Problem) -> Vec<Vec<f64>> {
    let lag = problem.lagrangian();
    let theta0 = problem.theta0();
    let d = theta0.len();
    let r = 1.0 + theta0.amax();
    let directions: Vec<DVector<f64>> = if d <= AXIS_STARTS_MAX_DIM {
        (0..d)
            .map(|i| DVector::from_fn(d, |j, _| if i == j { 1.0 } else { 0.0 }))
            .collect()
    } else {
        let mut u = lossnav_problems::testbed::uniform(0x5eed);
        (0..RANDOM_DIRECTIONS)
            .map(|_| {
                let v = DVector::from_fn(d, |_, _| u());
                let n = v.norm().max(f64::MIN_POSITIVE);
                v / n
            })
            .collect()
    };
    let mut starts = vec![theta0.clone()];
    for radius in START_RADII {
        for dir in &directions {
            for sign in [1.0, -1.0] {
                starts.push(theta0 + dir * (sign * radius * r));
            }
        }
    }
    if d <= AXIS_STARTS_MAX_DIM {
        let mut u = lossnav_problems::testbed::uniform(0xb0c5);
        for _ in 0..BOX_STARTS {
            starts.push(DVector::from_fn(d, |j, _| theta0[j] + 4.0 * r * u()));
        }
    }
    let mut minima: Vec<Vec<f64>> = Vec::new();
    // All descents in lockstep, each batch of gradients and losses one call to the loss.
    for m in crate::target::equilibrium::descend_many(lag, &starts) {
        if gradient_vec(lag.loss(), m.as_slice(), 0.0).amax() > 1e-6
            || !is_minimum(lag.loss(), m.as_slice())
        {
            continue;
        }
        if !minima.iter().any(|x| {
            x.iter()
                .zip(m.iter())
                .all(|(a, b)| (a - b).abs() < 1e-4 * (1.0 + b.abs()))
        }) {
            minima.push(m.as_slice().to_vec());
        }
    }
    minima
}

/// A positive definite Hessian, decided densely up to `DENSE_CHECK_MAX_DIM`, by the loss's
/// own structure beyond (a convex quadratic), and otherwise not decided here (`true`: the
/// certificate of the path toward the point decides).
fn is_minimum(loss: &dyn Landscape, theta: &[f64]) -> bool {
    if theta.len() > lossnav_problems::landscape::DENSE_CHECK_MAX_DIM {
        return loss.is_convex_quadratic() != Some(false);
    }
    let h = lossnav_problems::hessian_mat(loss, theta, 0.0);
    h.symmetric_eigenvalues().iter().all(|&v| v > 0.0)
}
