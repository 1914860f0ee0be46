//! `lossnav rule`: the closed-form learning rule of a linear–quadratic spec, as JSON.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use lossnav_problems::load_problem;

use super::output::print;
use super::CliError;
use crate::rules::{LqData, LqRule};

fn rows(m: &nalgebra::DMatrix<f64>) -> Vec<Vec<f64>> {
    (0..m.nrows())
        .map(|i| m.row(i).iter().copied().collect())
        .collect()
}

pub(super) fn run(spec: &Path) -> Result<ExitCode, CliError> {
    let path = spec.display().to_string();
    let problem = load_problem(spec).map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    let rule_err = |source| CliError::Rule {
        path: path.clone(),
        source,
    };
    let data = LqData::from_problem(&problem).map_err(rule_err)?;
    let rule = LqRule::new(&data, problem.theta0()).map_err(rule_err)?;
    let doc = json!({
        "problem": problem.name(),
        "equilibrium": rule.equilibrium.as_slice(),
        "p_equilibrium": rule.p_equilibrium.as_slice(),
        "riccati": rows(&rule.riccati),
        "policy": rows(&rule.policy),
        "rates": rule.rates.iter().map(|(re, im)| [*re, *im]).collect::<Vec<_>>(),
        "cost": rule.cost(problem.theta0()),
        "cost_is_relative": data.gamma == 0.0,
        "p0": rule.momentum(problem.theta0()).as_slice(),
        "riccati_residual": rule.residual,
    });
    print(&(serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n"))?;
    Ok(ExitCode::SUCCESS)
}
