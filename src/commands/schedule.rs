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
        .fold(None, |m: Option<f64>, u| Some(m.map_or(u, |m| m.max(u))));
    // Plain gradient descent with rate lr is stable along a direction of curvature h only
    // while lr·h < 2: the scalar schedule may leave that range once the stiff directions have
    // converged along the continuous path, where rounding then grows geometrically.
    let products: Vec<(usize, f64)> = schedule
        .lr
        .iter()
        .zip(&schedule.max_curvature)
        .enumerate()
        .filter_map(|(n, (lr, h))| Some((n, lr.as_ref()? * h.as_ref()?)))
        .collect();
    let stiff = products.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    let first_unstable = products.iter().find(|p| p.1 >= 2.0).map(|p| p.0);
    let negative = schedule.lr.iter().flatten().filter(|&&r| r < 0.0).count();
    // What the closed-form picture of docs/theory.md §4.1 assumes, and where this spec differs.
    let mut notes: Vec<String> = Vec::new();
    if schedule.below_resolution > 0 {
        notes.push(format!(
            "{} step(s) move less than 100 × the path's absolute accuracy ({:.1e}): their \
             rates are undefined (null), not rounding noise",
            schedule.below_resolution, schedule.resolution
        ));
    }
    match problem.end() {
        lossnav_problems::End::Fixed(_) => notes.push(
            "the end point is fixed: near the horizon the path is pulled to it, not decayed \
             (§4.1 assumes a free end without terminal cost)"
                .into(),
        ),
        lossnav_problems::End::Free {
            terminal_cost: Some(_),
        } => notes
            .push("a terminal cost: the rate ends at ηΦ''/(gh), not 0 (§4.1 assumes none)".into()),
        _ => {}
    }
    if spec.drift.is_some() {
        notes.push(
            "a drift moves θ too: the steps are not gradient steps, and `unexplained` measures \
             the drift's share"
                .into(),
        );
    }
    if !matches!(spec.metric, lossnav_problems::spec::MetricSpec::Identity) {
        notes.push(
            "a metric turns the path away from −∇L: `unexplained` includes that turn, and \
             `directions` are taken in the metric (rates of θ ← θ − lr·G⁻¹∇L)"
                .into(),
        );
    }
    if negative > 0 {
        notes.push(format!(
            "{negative} step(s) have a negative rate: the path moves uphill there"
        ));
    }
    if problem.dim() <= crate::rules::schedule::DIRECTIONS_MAX_DIM && schedule.directions.is_none()
    {
        notes.push(
            "no per-direction rates: the metric is not positive definite along the path".into(),
        );
    }
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
            "undefined_below_resolution": schedule.below_resolution,
        },
        "t": schedule.t,
        "lr": schedule.lr,
        "unexplained": schedule.unexplained,
        "max_curvature": schedule.max_curvature,
    });
    if !notes.is_empty() {
        doc["summary"]["notes"] = json!(notes);
    }
    if let (Some(first), Some((n, x))) = (first_unstable, stiff) {
        doc["summary"]["warning"] = json!(format!(
            "from step {first}, lr × the largest curvature is ≥ 2 (up to {x:.3} at step {n}): \
             plain gradient descent with the scalar rates is unstable along the stiffest direction; \
             cap the rate below 2/h (max_curvature), or step each direction with its own rate \
             (directions.lr, where D ≤ 32)"
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

/// The schedule as CSV: `step, t, lr, unexplained, max_curvature`, then `curvature_J, lr_J` per direction
/// when they were computed (empty cells where a rate is undefined).
pub fn schedule_csv(schedule: &Schedule) -> String {
    // `{:?}`: the shortest representation that reads back, with an exponent where it is
    // shorter (5e-63, not 63 zeros).
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:?}"));
    let d = schedule
        .directions
        .as_ref()
        .and_then(|d| d.first())
        .map_or(0, |d| d.curvature.len());
    let mut out = String::from("step,t,lr,unexplained,max_curvature");
    for j in 0..d {
        out.push_str(&format!(",curvature_{j},lr_{j}"));
    }
    out.push('\n');
    for n in 0..schedule.t.len() {
        out.push_str(&format!(
            "{n},{:?},{},{},{}",
            schedule.t[n],
            cell(schedule.lr[n]),
            cell(schedule.unexplained[n]),
            cell(schedule.max_curvature[n])
        ));
        if let Some(dirs) = &schedule.directions {
            for j in 0..d {
                out.push_str(&format!(
                    ",{:?},{}",
                    dirs[n].curvature[j],
                    cell(dirs[n].lr[j])
                ));
            }
        }
        out.push('\n');
    }
    out
}
