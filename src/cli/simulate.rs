//! `lossnav simulate`: integrate a learning rule forward and report the objective it achieves.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use lossnav_problems::load_problem;
use lossnav_solvers::simulate::{simulate, Rule};

use super::output::{print, write_atomic};
use super::{CliError, RuleKind};
use crate::rules::{LqData, LqRule};

/// Arguments of `lossnav simulate`.
pub struct SimulateArgs<'a> {
    pub spec: &'a Path,
    pub rule: RuleKind,
    pub rate: Option<f64>,
    pub beta: f64,
    pub t_end: Option<f64>,
    pub at: &'a [f64],
    pub output: Option<&'a PathBuf>,
}

pub(super) fn run(args: SimulateArgs) -> Result<ExitCode, CliError> {
    let path = args.spec.display().to_string();
    let problem = load_problem(args.spec).map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    let lag = problem.lagrangian();
    // The gradient-flow limit of the optimal rule has learning rate ηk/γ.
    let rate = args.rate.unwrap_or(if lag.gamma() > 0.0 {
        lag.eta() * lag.k() / lag.gamma()
    } else {
        lag.eta() * lag.k()
    });
    if !(rate.is_finite() && rate > 0.0) {
        return Err(CliError::Usage(match args.rate {
            Some(_) => format!("--rate {rate} must be a finite number > 0"),
            None => format!(
                "the default rate ηk/γ (ηk when γ = 0) of this spec is {rate}; give --rate \
                 (a finite number > 0)"
            ),
        }));
    }
    if !(args.beta.is_finite() && args.beta >= 0.0) {
        return Err(CliError::Usage(format!(
            "--beta {} must be a finite number >= 0",
            args.beta
        )));
    }
    let rule = match args.rule {
        RuleKind::GradientFlow => Rule::gradient_flow(&problem, rate),
        RuleKind::NaturalGradient => Rule::natural_gradient(&problem, rate),
        RuleKind::HeavyBall => Rule::HeavyBall {
            friction: args.beta,
            rate,
        },
        RuleKind::OptimalPolicy => {
            let rule_err = |source| CliError::Rule {
                path: path.clone(),
                source,
            };
            let data = LqData::from_problem(&problem).map_err(rule_err)?;
            let lq = LqRule::new(&data, problem.theta0()).map_err(rule_err)?;
            Rule::FirstOrder(Box::new(move |_t, th: &[f64]| {
                let delta = nalgebra::DVector::from_iterator(
                    th.len(),
                    th.iter().zip(lq.equilibrium.iter()).map(|(a, b)| a - b),
                );
                (&lq.policy * delta).as_slice().to_vec()
            }))
        }
    };
    let end = args.t_end.or(match problem.horizon() {
        lossnav_problems::Horizon::Finite(t) => Some(t),
        lossnav_problems::Horizon::Infinite => None,
    });
    let Some(end) = end else {
        return Err(CliError::Usage(
            "an infinite-horizon spec needs --t-end".into(),
        ));
    };
    let grid: Vec<f64> = (0..=200)
        .map(|i| end * i as f64 / 200.0)
        .chain(args.at.iter().copied())
        .collect();
    let sim = simulate(&problem, &rule, Some(end), &grid, 1e-10)
        .map_err(|source| CliError::Solver { path, source })?;
    let pick = |t: f64| sim.t.iter().position(|&s| s == t);
    let at_idx: Vec<usize> = args.at.iter().filter_map(|&t| pick(t)).collect();
    if at_idx.len() != args.at.len() {
        return Err(CliError::Usage(format!(
            "--at times must lie in [0, {end}]"
        )));
    }
    let name = clap::ValueEnum::to_possible_value(&args.rule)
        .map_or_else(|| format!("{:?}", args.rule), |v| v.get_name().to_string());
    let doc = json!({
        "problem": problem.name(),
        "method": format!("simulate/{name}"),
        // A rule's trajectory solves no optimality conditions: there is nothing to converge.
        // What it achieves is its cost and, for a fixed end, how far it misses the end.
        "status": "integrated",
        "cost": sim.cost,
        "t": sim.t,
        "theta": sim.theta,
        "theta_dot": sim.theta_dot,
        "p": sim.p,
        "loss": sim.loss,
        "kinetic": sim.kinetic,
        "end_error": sim.end_error,
        "at": {
            "t": args.at,
            "theta": at_idx.iter().map(|&i| &sim.theta[i]).collect::<Vec<_>>(),
            "p": at_idx.iter().map(|&i| &sim.p[i]).collect::<Vec<_>>(),
        },
        "rule": {"name": name, "rate": rate, "beta": args.beta},
    });
    let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    match args.output {
        Some(file) => write_atomic(file, &(text + "\n"))?,
        None => print(&(text + "\n"))?,
    }
    Ok(ExitCode::SUCCESS)
}
