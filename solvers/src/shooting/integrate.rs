//! Dense output of a diffsol integration under a step budget.
//!
//! diffsol's `solve_dense` steps until the end time however many steps that takes. On a
//! problem that is stiff for an explicit method (a huge curvature or mobility) or whose step
//! size collapses (a field that becomes infinite), that is for ever. The solvers step through
//! this loop instead, which stops with a typed error.

use diffsol::{NalgebraVec, OdeEquations, OdeSolverMethod, OdeSolverStopReason, Vector};

use crate::error::SolverError;

/// Integrator steps allowed for one integration. Non-stiff problems at tight tolerances take
/// hundreds to thousands; one that needs more is stiff for an explicit method and is reported
/// instead of integrated for hours.
pub(crate) const MAX_STEPS: usize = 1_000_000;

/// The solution at `times` (ascending, from the solver's start time, the last the end time),
/// one `Vec` per time. `what` names the integration in errors.
pub(crate) fn dense_output<'a, Eqn, S>(
    solver: &mut S,
    times: &[f64],
    what: &str,
    deadline: Option<std::time::Instant>,
) -> Result<Vec<Vec<f64>>, SolverError>
where
    Eqn: OdeEquations<T = f64, V = NalgebraVec<f64>> + 'a,
    S: OdeSolverMethod<'a, Eqn>,
{
    let Some(&t_end) = times.last() else {
        return Ok(Vec::new());
    };
    let out_of_time = |t: f64| {
        (deadline.is_some_and(|d| std::time::Instant::now() > d)
            || crate::budget::Budget::cancelled())
        .then(|| SolverError::TimeLimit {
            what: format!("{what} (at t = {t:.4e} of {t_end:.4e})"),
            residual: f64::NAN,
        })
    };
    // A right-hand side stopped by the deadline fails the step: that is the time limit.
    let failed = |e: diffsol::DiffsolError, t: f64| {
        out_of_time(t).unwrap_or_else(|| SolverError::NonFinite {
            what: format!("{what} ({e})"),
            t,
        })
    };
    let start = solver.state().t;
    solver.set_stop_time(t_end).map_err(|e| failed(e, start))?;
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(times.len());
    let every = (65_536 / solver.state().y.len().max(1)).clamp(1, 1024);
    let mut steps = 0;
    let mut before = start;
    while out.len() < times.len() {
        if steps == MAX_STEPS {
            return Err(SolverError::StepLimit {
                steps,
                t: before,
                t_end,
            });
        }
        // The clock is read every `every` steps: every 1024 for small systems (cheap next to
        // a step, and prompt enough), every step for large ones, whose single step can take a
        // second (D = 200 with variational equations: 160 400 states).
        if let Some(deadline) = deadline.filter(|_| steps % every == 0) {
            if std::time::Instant::now() > deadline || crate::budget::Budget::cancelled() {
                return Err(SolverError::TimeLimit {
                    what: format!("{what} (at t = {before:.4e} of {t_end:.4e})"),
                    residual: f64::NAN,
                });
            }
        }
        let reason = solver.step().map_err(|e| failed(e, before))?;
        steps += 1;
        let now = solver.state().t;
        // diffsol's error norm does not see NaN, so a step into a region where the field is
        // not finite can be accepted; the state is checked here. The step can become NaN
        // itself.
        let y = solver.state().y;
        let finite = (0..y.len()).all(|i| y[i].is_finite());
        if !finite || now.is_nan() {
            return Err(
                out_of_time(before).unwrap_or_else(|| SolverError::NonFinite {
                    what: what.to_string(),
                    t: before,
                }),
            );
        }
        if now <= before {
            // A step below the resolution of t (a huge end time): no progress is possible.
            return Err(SolverError::StepLimit {
                steps,
                t: before,
                t_end,
            });
        }
        before = now;
        let reached_end = matches!(reason, OdeSolverStopReason::TstopReached);
        while let Some(&t) = times.get(out.len()) {
            if t > now && !reached_end {
                break;
            }
            let y = solver.interpolate(t.min(now)).map_err(|e| failed(e, t))?;
            out.push(y.clone_as_vec());
        }
    }
    Ok(out)
}
