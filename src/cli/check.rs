//! `lossnav check`: run the catalogue of claims and print the table.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;

use super::output::print;
use super::CliError;
use crate::verify;

/// The claims whose id contains `filter` (all without one), run: the rows `lossnav check
/// --json` prints (id, paper, statement, closed_form, procedure, error, tolerance, pass,
/// detail). An error when no id matches.
pub fn check_rows(filter: Option<&str>) -> Result<serde_json::Value, CliError> {
    let outcomes = outcomes(filter)?;
    Ok(serde_json::Value::Array(json_rows(&outcomes)))
}

fn json_rows(outcomes: &[verify::Outcome]) -> Vec<serde_json::Value> {
    outcomes
        .iter()
        .map(|o| {
            let (error, tolerance, detail) = match &o.result {
                Ok(m) => (json!(m.error), json!(m.tolerance), m.detail.clone()),
                Err(e) => (json!(null), json!(null), format!("failed to run: {e}")),
            };
            json!({
                "id": o.claim.id,
                "paper": o.claim.paper,
                "statement": o.claim.statement,
                "closed_form": o.claim.closed_form,
                "procedure": o.claim.procedure,
                "error": error,
                "tolerance": tolerance,
                "pass": o.passed(),
                "detail": detail,
            })
        })
        .collect()
}

fn outcomes(filter: Option<&str>) -> Result<Vec<verify::Outcome>, CliError> {
    let outcomes = verify::run(filter);
    if outcomes.is_empty() {
        return Err(CliError::Usage(format!(
            "no claim id contains {:?}; ids: {}",
            filter.unwrap_or(""),
            verify::catalogue()
                .iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(outcomes)
}

pub(super) fn run(filter: Option<&str>, as_json: bool) -> Result<ExitCode, CliError> {
    let outcomes = outcomes(filter)?;
    let all_passed = outcomes.iter().all(verify::Outcome::passed);
    if as_json {
        let rows = json_rows(&outcomes);
        print(&(serde_json::to_string_pretty(&rows).expect("JSON values serialise") + "\n"))?;
    } else {
        let mut table = format!(
            "{:<24} {:<24} {:>10} {:>10}  {:<4}  statement\n",
            "id", "paper", "error", "tolerance", "pass"
        );
        for o in &outcomes {
            let (error, tol) = match &o.result {
                Ok(m) => (format!("{:.2e}", m.error), format!("{:.1e}", m.tolerance)),
                Err(_) => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                table,
                "{:<24} {:<24} {:>10} {:>10}  {:<4}  {}",
                o.claim.id,
                o.claim.paper,
                error,
                tol,
                if o.passed() { "ok" } else { "FAIL" },
                o.claim.statement
            );
            // Writing to a String cannot fail.
            let _ = match &o.result {
                Ok(m) => writeln!(table, "{:<24} {}", "", m.detail),
                Err(e) => writeln!(table, "{:<24} failed to run: {e}", ""),
            };
        }
        let passed = outcomes.iter().filter(|o| o.passed()).count();
        let _ = writeln!(table, "{passed} passed, {} failed", outcomes.len() - passed);
        print(&table)?;
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
