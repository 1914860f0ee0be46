//! `rule`: the closed-form learning rule of a linear–quadratic (or task-switching) spec as
//! the JSON document `lossnav rule` prints.

use serde_json::json;

use lossnav_problems::Spec;

use crate::cli::CliError;
use crate::rules::{LqData, LqRule};

fn rows(m: &nalgebra::DMatrix<f64>) -> Vec<Vec<f64>> {
    (0..m.nrows())
        .map(|i| m.row(i).iter().copied().collect())
        .collect()
}

/// The rule of `spec` (`label` names it in errors): equilibrium, Riccati matrix, policy, rates,
/// cost and the rest, as `lossnav rule` prints them.
pub fn rule(label: &str, spec_text: &Spec) -> Result<serde_json::Value, CliError> {
    let path = label.to_string();
    let problem = spec_text.to_problem().map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    let rule_err = |source| CliError::Rule {
        path: path.clone(),
        source,
    };
    if spec_text.task_switching.is_some() {
        let rule =
            crate::rules::task_switching::TaskRule::from_spec(spec_text).map_err(rule_err)?;
        let theta0 = problem.theta0();
        let m = &rule.prior_mean + &rule.delta;
        let times = [0.0, 0.5, 1.0, 2.0, 5.0, 10.0];
        let path_theta: Vec<Vec<f64>> = times
            .iter()
            .map(|&t| rule.theta(t).as_slice().to_vec())
            .collect();
        let doc = json!({
            "status": "closed form (task switching: the expected problem's linear–quadratic rule)",
            "problem": problem.name(),
            "rate_matrix": rows(&rule.rate_matrix),
            "rho": rows(&rule.rho),
            "riccati": rows(&rule.riccati),
            "a": rule.a.as_slice(),
            "theta_dot0": rule.velocity(theta0, &m).as_slice(),
            "expected_cost": rule.expected_cost,
            "trajectory": {"t": times, "theta": path_theta},
        });
        return Ok(doc);
    }
    let data = LqData::from_problem(&problem).map_err(rule_err)?;
    let rule = LqRule::new(&data, problem.theta0()).map_err(rule_err)?;
    let mut doc = json!({
        "status": format!(
            "closed form (linear–quadratic); relative Riccati residual {:.1e}",
            rule.residual
        ),
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
    if spec_text.observation.is_some() {
        // Partial observability: the cost of the certainty-equivalent rule with the filter, and
        // that of a learner who knows the minimum.
        let lq = crate::rules::observation::ObservedLq::from_spec(spec_text).map_err(rule_err)?;
        let (cost, error) = lq.expected_cost(1.0);
        doc["expected_cost"] = json!(cost);
        doc["expected_cost_error_estimate"] = json!(error);
        doc["full_information_cost"] = json!(lq.full_information_cost());
    }
    Ok(crate::cli::lead(doc))
}
