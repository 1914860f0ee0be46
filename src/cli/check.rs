//! `lossnav check`: run the catalogue of claims and print the table.

use std::fmt::Write as _;
use std::process::ExitCode;

use serde_json::json;

use super::output::print;
use super::CliError;
use crate::verify;

/// The claims whose id contains `filter` (all without one), run: the rows `lossnav check
/// --json` prints (id, paper, statement, closed_form, procedure, error, tolerance, unit,
/// pass, verdict — "pass", "fail" or "not run" when data it needs is not installed — and
/// detail). An error when no id matches.
pub fn check_rows(filter: Option<&str>) -> Result<serde_json::Value, CliError> {
    let outcomes = outcomes(filter)?;
    Ok(serde_json::Value::Array(json_rows(&outcomes)))
}

fn json_rows(outcomes: &[verify::Outcome]) -> Vec<serde_json::Value> {
    outcomes
        .iter()
        .map(|o| {
            let (error, tolerance, unit, detail) = match &o.result {
                Ok(m) => (
                    json!(m.error),
                    json!(m.tolerance),
                    json!(m.unit.describe()),
                    m.detail.clone(),
                ),
                Err(e) if o.not_installed() => (json!(null), json!(null), json!(null), e.clone()),
                Err(e) => (
                    json!(null),
                    json!(null),
                    json!(null),
                    format!("failed to run: {e}"),
                ),
            };
            json!({
                "id": o.claim.id,
                "paper": o.claim.paper,
                "statement": o.claim.statement,
                "closed_form": o.claim.closed_form,
                "procedure": o.claim.procedure,
                "error": error,
                "tolerance": tolerance,
                "unit": unit,
                "pass": o.passed(),
                "verdict": verdict(o),
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

/// "pass", "fail", or "not run" for a claim whose data is not installed.
fn verdict(o: &verify::Outcome) -> &'static str {
    if o.passed() {
        "pass"
    } else if o.not_installed() {
        "not run"
    } else {
        "fail"
    }
}

/// Exit status 0 when no claim failed. A claim not run for want of installed data (the table
/// says which and how to install it) does not fail the check; every other error does.
pub(super) fn run(filter: Option<&str>, as_json: bool) -> Result<ExitCode, CliError> {
    let outcomes = outcomes(filter)?;
    let all_passed = outcomes.iter().all(|o| o.passed() || o.not_installed());
    if as_json {
        let rows = json_rows(&outcomes);
        print(&(serde_json::to_string_pretty(&rows).expect("JSON values serialise") + "\n"))?;
    } else {
        print(&table(&outcomes))?;
    }
    Ok(if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The table `lossnav check` prints: one aligned line per claim (verdict, id, measured error
/// and tolerance in the claim's unit, the unit named, where in the paper), its statement and
/// what was compared indented below, and a count at the end.
fn table(outcomes: &[verify::Outcome]) -> String {
    let cells: Vec<(String, String, String)> = outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(m) => (
                m.unit.format(m.error),
                m.unit.format(m.tolerance),
                m.unit.describe(),
            ),
            Err(_) if o.not_installed() => ("-".into(), "-".into(), "not run".into()),
            Err(_) => ("-".into(), "-".into(), "did not run".into()),
        })
        .collect();
    let width = |f: &dyn Fn(usize) -> usize, title: &str| {
        (0..outcomes.len())
            .map(f)
            .max()
            .unwrap_or(0)
            .max(title.chars().count())
    };
    let w_id = width(&|i| outcomes[i].claim.id.chars().count(), "claim");
    let w_err = width(&|i| cells[i].0.chars().count(), "measured");
    let w_tol = width(&|i| cells[i].1.chars().count(), "allowed");
    let w_unit = width(&|i| cells[i].2.chars().count(), "unit");
    // Padding by characters (the units hold non-ASCII symbols; `{:<w}` counts them right).
    let mut out = format!(
        "{:<4}  {:<w_id$}  {:>w_err$}  {:>w_tol$}  {:<w_unit$}  paper\n",
        "", "claim", "measured", "allowed", "unit"
    );
    for (o, (err, tol, unit)) in outcomes.iter().zip(&cells) {
        let _ = writeln!(
            out,
            "{:<4}  {:<w_id$}  {:>w_err$}  {:>w_tol$}  {:<w_unit$}  {}",
            match verdict(o) {
                "pass" => "ok",
                "not run" => "skip",
                _ => "FAIL",
            },
            o.claim.id,
            err,
            tol,
            unit,
            o.claim.paper,
        );
        let _ = writeln!(out, "      {}", o.claim.statement);
        let _ = match &o.result {
            Ok(m) => writeln!(out, "      {}", m.detail),
            Err(e) if o.not_installed() => writeln!(out, "      {e}"),
            Err(e) => writeln!(out, "      failed to run: {e}"),
        };
    }
    let passed = outcomes.iter().filter(|o| o.passed()).count();
    let not_run = outcomes.iter().filter(|o| o.not_installed()).count();
    let _ = write!(
        out,
        "{passed} of {} claims passed, {} failed",
        outcomes.len(),
        outcomes.len() - passed - not_run
    );
    let _ = writeln!(
        out,
        "{}",
        if not_run > 0 {
            format!(", {not_run} not run (data not installed)")
        } else {
            String::new()
        }
    );
    out
}
