//! `schedule`: the learning-rate schedule of a finite-horizon spec's optimal path, as the JSON
//! document (or CSV rows) `lossnav schedule` prints.

use serde_json::json;

use lossnav_problems::{Horizon, Problem, Spec};

use super::solve::{solve, SolveOptions};
use crate::cli::CliError;
use crate::rules::schedule::{schedule as read_schedule, Schedule};

/// A schedule with the solve it was read from.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The JSON document (`lossnav schedule`'s output).
    pub doc: serde_json::Value,
    /// The schedule.
    pub schedule: Schedule,
    /// The solve missed its accuracy (exit status 1 on the command line).
    pub missed: bool,
}

/// Solves `problem` as `lossnav solve` does (`opts`) and reads the schedule of `steps` steps
/// off its optimal path. The document leads with the solve's status: a schedule is only as
/// good as the path it comes from.
///
/// # Errors
/// An infinite horizon or a step count out of range (before any solve), or the solve's error.
pub fn schedule(
    label: &str,
    spec: &Spec,
    problem: &Problem,
    steps: usize,
    opts: &SolveOptions,
) -> Result<Scheduled, CliError> {
    let usage = |e: crate::rules::schedule::ScheduleError| CliError::Usage(format!("{label}: {e}"));
    if matches!(problem.horizon(), Horizon::Infinite) {
        return Err(usage(
            crate::rules::schedule::ScheduleError::InfiniteHorizon,
        ));
    }
    // The step count is checked before the solve, so a typo costs nothing.
    crate::rules::schedule::check_steps(steps, problem.dim()).map_err(usage)?;
    let solved = solve(label, spec, problem, opts)?;
    let schedule = read_schedule(problem, &solved.solution, steps).map_err(usage)?;
    let rates: Vec<f64> = schedule.lr.iter().flatten().copied().collect();
    let peak = rates.iter().copied().fold(f64::NAN, f64::max);
    let first_peak = schedule
        .lr
        .iter()
        .position(|r| r.is_some_and(|r| r == peak));
    // Where the decay to the horizon starts: the last step at or above half the peak.
    let half = schedule
        .lr
        .iter()
        .rposition(|r| r.is_some_and(|r| r >= 0.5 * peak))
        .map(|n| schedule.t[n] + schedule.dt);
    let worst_unexplained = schedule
        .unexplained
        .iter()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max);
    // Plain gradient descent with rate lr is stable along a direction of curvature h only
    // while lr·h < 2: the scalar schedule may leave that range once the stiff directions have
    // converged along the continuous path, where rounding then grows geometrically.
    let products: Vec<(usize, f64)> = schedule
        .directions
        .as_ref()
        .map(|dirs| {
            dirs.iter()
                .zip(&schedule.lr)
                .enumerate()
                .filter_map(|(n, (d, lr))| Some((n, lr.as_ref()? * d.curvature.last()?)))
                .collect()
        })
        .unwrap_or_default();
    let stiff = products.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    let first_unstable = products.iter().find(|p| p.1 >= 2.0).map(|p| p.0);
    let mut doc = json!({
        "status": solved.doc["status"],
        "optimality": solved.doc["optimality"],
        "problem": problem.name(),
        "steps": steps,
        "dt": schedule.dt,
        "summary": {
            "first_lr": schedule.lr.first().copied().flatten(),
            "peak_lr": peak.is_finite().then_some(peak),
            "peak_at": first_peak.map(|n| schedule.t[n]),
            "last_lr": schedule.lr.last().copied().flatten(),
            "half_peak_until": half,
            "largest_unexplained": worst_unexplained,
            "largest_lr_times_curvature": stiff.map(|s| s.1),
        },
        "t": schedule.t,
        "lr": schedule.lr,
        "unexplained": schedule.unexplained,
    });
    if let (Some(first), Some((n, x))) = (first_unstable, stiff) {
        doc["summary"]["warning"] = json!(format!(
            "from step {first}, lr × the largest curvature is ≥ 2 (up to {x:.3} at step {n}): \
             plain gradient descent with the scalar rates is unstable along the stiffest direction; \
             step each direction with its own rate (directions.lr), or cap the rate below 2/h"
        ));
    }
    if let Some(dirs) = &schedule.directions {
        doc["directions"] = json!({
            "curvature": dirs.iter().map(|d| d.curvature.clone()).collect::<Vec<_>>(),
            "lr": dirs.iter().map(|d| d.lr.clone()).collect::<Vec<_>>(),
        });
    }
    Ok(Scheduled {
        doc,
        schedule,
        missed: solved.missed,
    })
}

/// The schedule as CSV: `step, t, lr, unexplained`, then `curvature_J, lr_J` per direction
/// when they were computed (empty cells where a rate is undefined).
pub fn schedule_csv(schedule: &Schedule) -> String {
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let d = schedule
        .directions
        .as_ref()
        .and_then(|d| d.first())
        .map_or(0, |d| d.curvature.len());
    let mut out = String::from("step,t,lr,unexplained");
    for j in 0..d {
        out.push_str(&format!(",curvature_{j},lr_{j}"));
    }
    out.push('\n');
    for n in 0..schedule.t.len() {
        out.push_str(&format!(
            "{n},{},{},{}",
            schedule.t[n],
            cell(schedule.lr[n]),
            cell(schedule.unexplained[n])
        ));
        if let Some(dirs) = &schedule.directions {
            for j in 0..d {
                out.push_str(&format!(
                    ",{},{}",
                    dirs[n].curvature[j],
                    cell(dirs[n].lr[j])
                ));
            }
        }
        out.push('\n');
    }
    out
}
