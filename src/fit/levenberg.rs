//! Levenberg–Marquardt as an argmin solver: argmin runs the loop (state, iteration budget,
//! termination, observers); the step is written here because argmin's own Gauss–Newton
//! needs its math traits for the Jacobian type, which exist for nalgebra only at an older
//! version than this workspace's, and because a fit needs the damping that keeps a step from
//! leaving the region where the optimal trajectory exists.

use argmin::core::{
    CostFunction, Error, IterState, Jacobian, Operator, Problem, Solver, TerminationReason,
    TerminationStatus, KV,
};
use nalgebra::{DMatrix, DVector};

/// The state: parameters, residuals, the Jacobian is recomputed at each accepted point.
pub type State = IterState<Vec<f64>, (), (), (), Vec<f64>, f64>;

/// Damped Gauss–Newton with Marquardt's diagonal scaling.
#[derive(Debug, Clone)]
pub struct LevenbergMarquardt {
    /// Damping `λ` (relative to the diagonal of `JᵀJ`).
    lambda: f64,
    /// Converged when an accepted step changes no parameter by more than `xtol·(1 + |u|)`.
    pub xtol: f64,
    /// Set when no damping makes a step reduce the misfit.
    stalled: bool,
    /// Set when an accepted step was below `xtol`.
    converged: bool,
}

impl Default for LevenbergMarquardt {
    fn default() -> Self {
        Self {
            lambda: 1e-3,
            xtol: 1e-10,
            stalled: false,
            converged: false,
        }
    }
}

/// Whether an error says a time budget ran out (the model's own check, or a solver's
/// `TimeLimit`): such a trial point is not a rejected step, the fit must stop.
pub fn is_time_limit(text: &str) -> bool {
    text.contains("time limit") || text.contains("time budget")
}

/// Largest change of one variable in one step.
const MAX_STEP: f64 = 2.0;

/// Largest damping tried before the step is declared impossible.
const MAX_LAMBDA: f64 = 1e16;

fn half_norm2(r: &[f64]) -> f64 {
    0.5 * r.iter().map(|x| x * x).sum::<f64>()
}

impl<O> Solver<O, State> for LevenbergMarquardt
where
    O: Operator<Param = Vec<f64>, Output = Vec<f64>>
        + Jacobian<Param = Vec<f64>, Jacobian = DMatrix<f64>>
        + CostFunction<Param = Vec<f64>, Output = f64>,
{
    fn name(&self) -> &str {
        "Levenberg-Marquardt"
    }

    fn init(
        &mut self,
        problem: &mut Problem<O>,
        state: State,
    ) -> Result<(State, Option<KV>), Error> {
        let mut state = state;
        let u = state
            .take_param()
            .ok_or_else(|| Error::msg("Levenberg-Marquardt needs a start"))?;
        let r = problem.apply(&u)?;
        let cost = half_norm2(&r);
        Ok((state.param(u).residuals(r).cost(cost), None))
    }

    fn next_iter(
        &mut self,
        problem: &mut Problem<O>,
        state: State,
    ) -> Result<(State, Option<KV>), Error> {
        let mut state = state;
        let u = state.take_param().expect("set by init");
        let r = state.take_residuals().expect("set by init");
        let cost = state.get_cost();
        let jac = problem.jacobian(&u)?;
        let n = u.len();
        let rv = DVector::from_column_slice(&r);
        let a = jac.transpose() * &jac;
        let g = jac.transpose() * &rv;
        let scale = (0..n).fold(0.0_f64, |m, i| m.max(a[(i, i)]));
        let diag: Vec<f64> = (0..n).map(|i| a[(i, i)].max(1e-12 * scale)).collect();
        loop {
            let mut m = a.clone();
            for (i, &d) in diag.iter().enumerate() {
                m[(i, i)] += self.lambda * d;
            }
            let step = m.cholesky().map(|c| -c.solve(&g));
            let Some(step) = step.filter(|s| s.iter().all(|x| x.is_finite())) else {
                self.lambda *= 4.0;
                if self.lambda > MAX_LAMBDA {
                    self.stalled = true;
                    return Ok((state.param(u).residuals(r).cost(cost), None));
                }
                continue;
            };
            // At most a factor e² per step in a positive parameter (2 in its logarithm): far
            // trial points (γ = e³⁰) cost slow, failing solves and teach nothing.
            let largest = step.amax();
            let step = if largest > MAX_STEP {
                step * (MAX_STEP / largest)
            } else {
                step
            };
            let trial: Vec<f64> = u.iter().zip(step.iter()).map(|(a, b)| a + b).collect();
            // A trial point where the problem cannot be solved (the trajectory does not
            // exist, Newton fails) is a rejected step, not a failed fit.
            let accepted = match problem.apply(&trial) {
                Ok(r2) => {
                    let c2 = half_norm2(&r2);
                    (c2 < cost).then_some((r2, c2))
                }
                Err(e) if is_time_limit(&e.to_string()) => return Err(e),
                Err(_) => None,
            };
            match accepted {
                Some((r2, c2)) => {
                    self.lambda = (self.lambda / 3.0).max(1e-12);
                    self.converged = step
                        .iter()
                        .zip(&trial)
                        .all(|(s, x)| s.abs() <= self.xtol * (1.0 + x.abs()));
                    return Ok((state.param(trial).residuals(r2).cost(c2), None));
                }
                None => {
                    self.lambda *= 4.0;
                    // Steps too small to change the parameters: the misfit is at its minimum
                    // to rounding.
                    let negligible = step
                        .iter()
                        .zip(&u)
                        .all(|(s, x)| s.abs() <= 1e-3 * self.xtol * (1.0 + x.abs()));
                    if negligible {
                        self.converged = true;
                        return Ok((state.param(u).residuals(r).cost(cost), None));
                    }
                    if self.lambda > MAX_LAMBDA {
                        self.stalled = true;
                        return Ok((state.param(u).residuals(r).cost(cost), None));
                    }
                }
            }
        }
    }

    fn terminate(&mut self, state: &State) -> TerminationStatus {
        if self.converged {
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        } else if self.stalled {
            TerminationStatus::Terminated(TerminationReason::SolverExit(
                "no damped step reduces the misfit".into(),
            ))
        } else if state.get_cost() == 0.0 {
            TerminationStatus::Terminated(TerminationReason::TargetCostReached)
        } else {
            TerminationStatus::NotTerminated
        }
    }
}
