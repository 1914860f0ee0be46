//! `solve`: the optimal trajectory of a spec as the JSON document the command line prints —
//! the search for the cheapest certified minimum by default, one local solve by a chosen
//! method otherwise, the implied rule at the requested times, and the infinite-horizon
//! task-switching case.

use std::sync::Arc;

use serde_json::json;

use lossnav_problems::{Horizon, Problem, Spec, SpecPath};
use lossnav_solvers::observe::Observer;
use lossnav_solvers::sensitivity::{sensitivities, Parameter, SensitivityOptions};
use lossnav_solvers::{Accuracy, Bvp, Direct, Scheme, Search, Shooting, Solution};

use crate::cli::{implied_rule_json, lead, second_order_json, solution_json, CliError, Method};

/// How to solve: the command line's `solve` flags.
#[derive(Clone)]
pub struct SolveOptions {
    /// The solver.
    pub method: Method,
    /// Its tolerance (each method's default when `None`).
    pub tol: Option<f64>,
    /// Mesh intervals of the direct method.
    pub intervals: usize,
    /// Times at which to sample the continuous solution and its implied rule.
    pub at: Vec<f64>,
    /// One local solve instead of the search (bvp only).
    pub local: bool,
    /// Wall-clock budget in seconds.
    pub max_seconds: Option<f64>,
    /// Discretisation of bvp.
    pub scheme: Scheme,
    /// Where progress reports go.
    pub observer: Option<Arc<dyn Observer>>,
    /// Parameters to differentiate the solution by ([`parameters`]).
    pub sensitivities: Vec<String>,
}

impl Default for SolveOptions {
    fn default() -> Self {
        Self {
            method: Method::Bvp,
            tol: None,
            intervals: 200,
            at: Vec::new(),
            local: false,
            max_seconds: None,
            scheme: Scheme::Auto,
            observer: None,
            sensitivities: Vec::new(),
        }
    }
}

/// A solve's outcome: the document, the solution behind it (for evaluation between nodes),
/// and whether it missed its tolerance (only a fixed mesh can).
pub struct Solved {
    /// The JSON document (`lossnav solve`'s output).
    pub doc: serde_json::Value,
    /// The solution.
    pub solution: Solution,
    /// The accuracy was not met (exit status 1 on the command line).
    pub missed: bool,
}

/// Solves `problem` (built from `spec`; `label` names it in errors) as `lossnav solve` does,
/// with the sensitivities asked for in `"sensitivities"`.
pub fn solve(
    label: &str,
    spec: &Spec,
    problem: &Problem,
    opts: &SolveOptions,
) -> Result<Solved, CliError> {
    // Names are checked before the solve, so a typo costs nothing.
    let params = parameters(spec, problem, &opts.sensitivities)?;
    let mut solved = solve_only(label, spec, problem, opts).map_err(|e| explain(e, problem))?;
    if !params.is_empty() {
        if spec.task_switching.is_some() || spec.observation.is_some() {
            return Err(CliError::Usage(
                "--sensitivities: available for deterministic problems (not for specs with \
                 task_switching or observation)"
                    .into(),
            ));
        }
        let s = sensitivities(
            problem,
            &solved.solution,
            &params,
            &SensitivityOptions::default(),
        )
        .map_err(|source| CliError::Solver {
            path: label.to_string(),
            source,
        })?;
        solved.doc["sensitivities"] = s.to_json();
    }
    solved.doc = lead(std::mem::take(&mut solved.doc));
    Ok(solved)
}

/// A solver failure with the likely cause added when the problem itself is to blame: the
/// probe of [`lossnav_solvers::diagnose::ill_posed`] runs for failures a budget, a memory
/// limit or an option does not explain, and whose message does not already name the cause.
fn explain(e: CliError, problem: &Problem) -> CliError {
    use lossnav_solvers::SolverError as E;
    match e {
        CliError::Solver { path, source }
            if !matches!(
                source,
                E::TimeLimit { .. }
                    | E::MemoryLimit { .. }
                    | E::OutOfMemory { .. }
                    | E::InvalidOption { .. }
                    | E::Unsupported(_)
            ) && !names_its_cause(&source) =>
        {
            match lossnav_solvers::diagnose::ill_posed(problem) {
                Some(cause) => CliError::IllPosed {
                    path,
                    source: Box::new(source),
                    cause,
                },
                None => CliError::Solver { path, source },
            }
        }
        other => other,
    }
}

/// Whether a solver error already says what in the problem is undefined: a non-finite value
/// (with its culprit), or a Newton failure whose steps found one, also inside a continuation.
fn names_its_cause(e: &lossnav_solvers::SolverError) -> bool {
    use lossnav_solvers::SolverError as E;
    match e {
        // The culprit, when found, is named with its point.
        E::NonFinite { what, .. } if what.contains("θ = ") => true,
        E::NewtonFailed {
            undefined: Some(_), ..
        } => true,
        E::ContinuationFailed { cause, .. } => names_its_cause(cause),
        _ => false,
    }
}

/// The parameters named in `names`: `eta`, `k`, `gamma`, `horizon`, `theta0[i]` (or
/// `theta0.i`), `end[i]` (or `end.fixed[i]`) directly, anything else as a numeric field of the
/// spec ([`SpecPath`]: `params.NAME`, `metric.diag[0]`, `drift.linear[0][1]`, …), whose
/// perturbed problems are built from the spec.
pub fn parameters(
    spec: &Spec,
    problem: &Problem,
    names: &[String],
) -> Result<Vec<Parameter>, CliError> {
    let mut out = Vec::with_capacity(names.len());
    for (k, name) in names.iter().enumerate() {
        let name = name.trim();
        if names[..k].iter().any(|n| n.trim() == name) {
            return Err(CliError::Usage(format!(
                "--sensitivities: {name} is named twice"
            )));
        }
        let index = |prefixes: &[&str]| {
            prefixes.iter().find_map(|p| {
                name.strip_prefix(p).and_then(|rest| {
                    rest.strip_prefix('[')
                        .and_then(|r| r.strip_suffix(']'))
                        .or_else(|| rest.strip_prefix('.'))
                        .and_then(|i| i.parse::<usize>().ok())
                })
            })
        };
        let param = match name {
            "eta" => Parameter::Eta,
            "k" => Parameter::K,
            "gamma" => Parameter::Gamma,
            "horizon" => Parameter::Horizon,
            _ => {
                if let Some(i) = index(&["theta0"]) {
                    Parameter::Theta0(i)
                } else if let Some(i) = index(&["end.fixed", "end"]) {
                    Parameter::End(i)
                } else {
                    let path = SpecPath::parse(name, spec)
                        .map_err(|e| CliError::Usage(format!("--sensitivities: {e}")))?;
                    let value = path
                        .get(spec)
                        .map_err(|e| CliError::Usage(format!("--sensitivities: {e}")))?;
                    let spec = spec.clone();
                    Parameter::Other {
                        name: name.to_string(),
                        value,
                        build: Arc::new(move |v| path.set(&spec, v)?.to_problem()),
                    }
                }
            }
        };
        param
            .value(problem)
            .map_err(|e| CliError::Usage(format!("--sensitivities: {e}")))?;
        out.push(param);
    }
    Ok(out)
}

fn solve_only(
    label: &str,
    spec: &Spec,
    problem: &Problem,
    opts: &SolveOptions,
) -> Result<Solved, CliError> {
    let path = label.to_string();
    for &t in &opts.at {
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
    if opts.scheme != Scheme::Auto && !matches!(opts.method, Method::Bvp) {
        return Err(CliError::Usage(
            "--scheme chooses the discretisation of --method bvp".into(),
        ));
    }
    let mut bvp = Bvp::default().with_tol(opts.tol.unwrap_or(1e-8));
    if let Some(o) = &opts.observer {
        bvp = bvp.with_observer(o.clone());
    }
    bvp.max_seconds = opts.max_seconds;
    bvp.scheme = opts.scheme;
    if let Some((doc, solution)) = task_switching_infinite(label, spec, problem, &bvp, &opts.at)? {
        return Ok(Solved {
            doc,
            solution,
            missed: false,
        });
    }
    let solver_err = |source| CliError::Solver {
        path: path.clone(),
        source,
    };
    if matches!(opts.method, Method::Bvp) && !opts.local {
        bvp.validate().map_err(solver_err)?;
        let search = Search {
            bvp,
            ..Search::default()
        };
        let result = search.solve(problem).map_err(solver_err)?;
        let solution = result.solution().clone();
        let mut doc = solution_json(problem.name(), &solution, &opts.at);
        doc["at"]["rule"] = implied_rule_json(problem, &solution, &opts.at);
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
        return Ok(Solved {
            doc,
            solution,
            missed,
        });
    }
    let solution = match opts.method {
        Method::Bvp => bvp.solve(problem),
        Method::Direct => {
            let mut direct = Direct::default().with_intervals(opts.intervals);
            if let Some(o) = &opts.observer {
                direct = direct.with_observer(o.clone());
            }
            direct.max_seconds = opts.max_seconds;
            if let Some(tol) = opts.tol {
                direct.tol = tol;
            }
            direct.solve(problem)
        }
        Method::Shooting => {
            let mut shooting = Shooting::default();
            if let Some(tol) = opts.tol {
                shooting.tol = tol;
            }
            // The budget binds every method (shooting has its own 20 s default otherwise).
            if let Some(seconds) = opts.max_seconds {
                shooting.max_seconds = seconds;
            }
            shooting.solve(problem)
        }
    }
    .map_err(solver_err)?;
    let mut doc = solution_json(problem.name(), &solution, &opts.at);
    doc["at"]["rule"] = implied_rule_json(problem, &solution, &opts.at);
    let missed = matches!(solution.accuracy, Accuracy::FixedMeshAbove { .. });
    Ok(Solved {
        doc,
        solution,
        missed,
    })
}

/// An infinite-horizon task-switching spec: its expected problem has a moving target, so it is
/// solved on the horizon [`TaskRule::truncated_problem`] chooses (where the target has reached
/// the prior mean to e^{-30}) with the limit problem's value as terminal cost, and the cost
/// completed with the variance still to come. `None` for every other spec.
///
/// [`TaskRule::truncated_problem`]: crate::rules::task_switching::TaskRule::truncated_problem
fn task_switching_infinite(
    label: &str,
    spec: &Spec,
    problem: &Problem,
    bvp: &Bvp,
    at: &[f64],
) -> Result<Option<(serde_json::Value, Solution)>, CliError> {
    if problem.horizon() != Horizon::Infinite || spec.task_switching.is_none() {
        return Ok(None);
    }
    let rule_err = |source| CliError::Rule {
        path: label.to_string(),
        source,
    };
    let rule = crate::rules::task_switching::TaskRule::from_spec(spec).map_err(rule_err)?;
    let (truncated, t_end, rest) = rule.truncated_problem().map_err(rule_err)?;
    if let Some(&t) = at.iter().find(|&&t| t > t_end) {
        return Err(CliError::Usage(format!(
            "--at {t} is beyond the solved span [0, {t_end}] of this task-switching problem"
        )));
    }
    let mut sol = bvp.solve(&truncated).map_err(|source| CliError::Solver {
        path: label.to_string(),
        source,
    })?;
    sol.cost += (-spec.gamma * t_end).exp() * rest;
    let mut doc = solution_json(problem.name(), &sol, at);
    doc["horizon"] = json!({
        "infinite": true,
        "solved_to": t_end,
        "note": "the expected problem's target reaches the prior mean to e^-30 by then; the \
                 rest is the limit problem's value and the variance cost still to come",
    });
    Ok(Some((doc, sol)))
}
