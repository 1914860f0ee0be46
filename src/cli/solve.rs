//! `lossnav solve`: the optimal trajectory of a spec, as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use lossnav_problems::{load_problem, Horizon};
use lossnav_solvers::{Accuracy, Bvp, Direct, Search, Shooting};

use super::progress::StatusLine;

use serde_json::json;

use super::output::{
    compact_pretty, implied_rule_json, print, second_order_json, solution_json, write_atomic,
};
use super::{CliError, Format, Method, SchemeArg};

/// Arguments of `lossnav solve`.
pub struct SolveArgs<'a> {
    pub spec: &'a Path,
    pub method: Method,
    pub tol: Option<f64>,
    pub intervals: usize,
    pub at: &'a [f64],
    pub output: Option<&'a PathBuf>,
    pub local: bool,
    pub summary: bool,
    pub format: Option<Format>,
    pub max_seconds: Option<f64>,
    pub scheme: SchemeArg,
}

pub(super) fn run(args: SolveArgs) -> Result<ExitCode, CliError> {
    let path = args.spec.display().to_string();
    let csv = match args.format {
        Some(f) => f == Format::Csv,
        None => args
            .output
            .is_some_and(|o| o.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))),
    };
    if csv && args.summary {
        return Err(CliError::Usage(
            "--summary leaves out the per-node arrays that CSV holds: use one or the other".into(),
        ));
    }
    let emit = |doc: &serde_json::Value, output: Option<&PathBuf>| {
        if csv {
            emit_csv(doc, output)
        } else {
            emit(doc, output)
        }
    };
    let problem = load_problem(args.spec).map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    for &t in args.at {
        let horizon_ok = match problem.horizon() {
            Horizon::Finite(end) => (0.0..=end).contains(&t),
            Horizon::Infinite => t >= 0.0 && t.is_finite(),
        };
        if !horizon_ok {
            return Err(CliError::Usage(format!(
                "--at {t} is outside the horizon [0, {}]",
                match problem.horizon() {
                    Horizon::Finite(end) => end.to_string(),
                    Horizon::Infinite => "infinity".into(),
                }
            )));
        }
    }
    let status = Arc::new(StatusLine::new());
    let mut bvp = Bvp::default()
        .with_tol(args.tol.unwrap_or(1e-8))
        .with_observer(status.clone());
    bvp.max_seconds = args.max_seconds;
    bvp.scheme = args.scheme.into();
    if args.scheme != SchemeArg::Auto && !matches!(args.method, Method::Bvp) {
        return Err(CliError::Usage(
            "--scheme chooses the discretisation of --method bvp".into(),
        ));
    }
    if let Some(mut doc) = task_switching_infinite(args.spec, &problem, &bvp, args.at)? {
        if args.summary {
            summarise(&mut doc);
        }
        emit(&doc, args.output)?;
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(args.method, Method::Bvp) && !args.local {
        bvp.validate().map_err(|source| CliError::Solver {
            path: path.clone(),
            source,
        })?;
        let search = Search {
            bvp,
            ..Search::default()
        };
        let result = search
            .solve(&problem)
            .map_err(|source| CliError::Solver { path, source })?;
        let solution = result.solution();
        let mut doc = solution_json(problem.name(), solution, args.at);
        doc["at"]["rule"] = implied_rule_json(&problem, solution, args.at);
        doc["optimality"] = json!(result.optimality.describe());
        doc["extremals"] = json!(result
            .found
            .iter()
            .map(|f| {
                let s = &f.solution;
                json!({
                    "cost": s.cost,
                    "end": s.tail.as_ref().map_or_else(
                        || s.theta.last().map(<[f64]>::to_vec).unwrap_or_default(),
                        |t| t.theta_star.as_slice().to_vec()
                    ),
                    "second_order": second_order_json(&s.second_order),
                    "found_by": f.origin,
                })
            })
            .collect::<Vec<_>>());
        let missed = matches!(solution.accuracy, Accuracy::FixedMeshAbove { .. });
        if args.summary {
            summarise(&mut doc);
        }
        emit(&doc, args.output)?;
        return Ok(if missed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        });
    }
    let solution = match args.method {
        Method::Bvp => bvp.solve(&problem),
        Method::Direct => {
            let mut direct = Direct::default()
                .with_intervals(args.intervals)
                .with_observer(status.clone());
            direct.max_seconds = args.max_seconds;
            if let Some(tol) = args.tol {
                direct.tol = tol;
            }
            direct.solve(&problem)
        }
        Method::Shooting => {
            let mut shooting = Shooting::default();
            if let Some(tol) = args.tol {
                shooting.tol = tol;
            }
            // --max-seconds binds every method (shooting has its own 20 s default otherwise).
            if let Some(seconds) = args.max_seconds {
                shooting.max_seconds = seconds;
            }
            shooting.solve(&problem)
        }
    }
    .map_err(|source| CliError::Solver { path, source })?;
    let mut doc = solution_json(problem.name(), &solution, args.at);
    doc["at"]["rule"] = implied_rule_json(&problem, &solution, args.at);
    if args.summary {
        summarise(&mut doc);
    }
    emit(&doc, args.output)?;
    Ok(
        if matches!(solution.accuracy, Accuracy::FixedMeshAbove { .. }) {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// Writes the per-node arrays of a solution document as CSV to `output` (atomically) or
/// standard output.
fn emit_csv(doc: &serde_json::Value, output: Option<&PathBuf>) -> Result<(), CliError> {
    let text = csv_from_doc(doc);
    match output {
        Some(file) => write_atomic(file, &text),
        None => print(&text),
    }
}

/// `#` lines with the scalars, a header, and one row per node: `t, θ_0…, p_0…, loss, kinetic,
/// hamiltonian`. Numbers are written in Rust's shortest round-trip form.
pub(crate) fn csv_from_doc(doc: &serde_json::Value) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for key in [
        "problem",
        "method",
        "status",
        "cost",
        "cost_is_relative",
        "optimality",
    ] {
        if let Some(v) = doc.get(key) {
            let _ = writeln!(out, "# {key}: {v}");
        }
    }
    if let Some(v) = doc.pointer("/second_order/verdict") {
        let _ = writeln!(out, "# second_order: {v}");
    }
    let rows = |key: &str| -> Vec<Vec<f64>> {
        doc.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|r| match r {
                        serde_json::Value::Array(x) => {
                            x.iter().filter_map(|v| v.as_f64()).collect()
                        }
                        v => v.as_f64().into_iter().collect(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (t, theta, p) = (rows("t"), rows("theta"), rows("p"));
    let (loss, kinetic, ham) = (rows("loss"), rows("kinetic"), rows("hamiltonian"));
    let d = theta.first().map_or(0, Vec::len);
    let mut header = vec!["t".to_string()];
    header.extend((0..d).map(|i| format!("theta_{i}")));
    header.extend((0..d).map(|i| format!("p_{i}")));
    header.extend(["loss", "kinetic", "hamiltonian"].map(String::from));
    let _ = writeln!(out, "{}", header.join(","));
    let cell = |v: Option<&Vec<f64>>, i: usize| {
        // `+ 0.0` turns −0 into 0.
        v.and_then(|r| r.get(i))
            .map_or(String::from("nan"), |x| (x + 0.0).to_string())
    };
    for (n, tn) in t.iter().enumerate() {
        let mut row = vec![cell(Some(tn), 0)];
        row.extend((0..d).map(|i| cell(theta.get(n), i)));
        row.extend((0..d).map(|i| cell(p.get(n), i)));
        row.extend([
            cell(loss.get(n), 0),
            cell(kinetic.get(n), 0),
            cell(ham.get(n), 0),
        ]);
        let _ = writeln!(out, "{}", row.join(","));
    }
    out
}

/// Writes the document to `output` (atomically) or standard output: a summary (no `t` key)
/// compactly, a full solution as before.
fn emit(doc: &serde_json::Value, output: Option<&PathBuf>) -> Result<(), CliError> {
    let text = if doc.get("t").is_none() {
        compact_pretty(doc)
    } else {
        serde_json::to_string_pretty(doc).expect("JSON values serialise")
    };
    match output {
        Some(file) => write_atomic(file, &(text + "\n")),
        None => print(&(text + "\n")),
    }
}

/// An infinite-horizon task-switching spec: its expected problem has a moving target, so it is
/// solved on the horizon [`TaskRule::truncated_problem`] chooses (where the target has reached the prior
/// mean to e^{-30}) with the limit problem's value as terminal cost, and the cost completed
/// with the variance still to come. `None` for every other spec.
///
/// [`TaskRule::truncated_problem`]: crate::rules::task_switching::TaskRule::truncated_problem
fn task_switching_infinite(
    path: &Path,
    problem: &lossnav_problems::Problem,
    bvp: &Bvp,
    at: &[f64],
) -> Result<Option<serde_json::Value>, CliError> {
    if problem.horizon() != Horizon::Infinite {
        return Ok(None);
    }
    let name = path.display().to_string();
    let spec = lossnav_problems::Spec::from_file(path).map_err(|source| CliError::Spec {
        path: name.clone(),
        source,
    })?;
    if spec.task_switching.is_none() {
        return Ok(None);
    }
    let rule_err = |source| CliError::Rule {
        path: name.clone(),
        source,
    };
    let rule = crate::rules::task_switching::TaskRule::from_spec(&spec).map_err(rule_err)?;
    let (truncated, t_end, rest) = rule.truncated_problem().map_err(rule_err)?;
    if let Some(&t) = at.iter().find(|&&t| t > t_end) {
        return Err(CliError::Usage(format!(
            "--at {t} is beyond the solved span [0, {t_end}] of this task-switching problem"
        )));
    }
    let mut sol = bvp
        .solve(&truncated)
        .map_err(|source| CliError::Solver { path: name, source })?;
    sol.cost += (-spec.gamma * t_end).exp() * rest;
    let mut doc = solution_json(problem.name(), &sol, at);
    doc["horizon"] = json!({
        "infinite": true,
        "solved_to": t_end,
        "note": "the expected problem's target reaches the prior mean to e^-30 by then; the \
                 rest is the limit problem's value and the variance cost still to come",
    });
    Ok(Some(doc))
}

/// Drops the per-node arrays (a summary stays a screenful whatever the mesh).
fn summarise(doc: &mut serde_json::Value) {
    if let Some(map) = doc.as_object_mut() {
        for key in ["t", "theta", "p", "loss", "kinetic", "hamiltonian"] {
            map.remove(key);
        }
    }
}
