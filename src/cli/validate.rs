//! `lossnav validate`: check specs and summarise the problems they state.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use lossnav_problems::{gradient_vec, Horizon, Problem};

use super::output::print;
use super::CliError;

pub(super) fn run(specs: &[PathBuf]) -> Result<ExitCode, CliError> {
    let mut failed = 0;
    for path in specs {
        match super::input::load(path) {
            Ok((_, problem)) => print(&summary(&super::input::label(path), &problem))?,
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A human-readable summary of a problem.
pub fn summary(label: &str, problem: &Problem) -> String {
    let lag = problem.lagrangian();
    let th = problem.theta0().as_slice();
    let grad = gradient_vec(lag.loss(), th, 0.0);
    let mut s = String::new();
    // The spec is valid as written; the probe says whether the problem is defined where its
    // paths will go (the metric is checked only at θ0 when the spec is read).
    match lossnav_solvers::diagnose::ill_posed(problem) {
        None => {
            let _ = writeln!(s, "{label}: ok");
        }
        Some(why) => {
            let _ = writeln!(s, "{label}: ok as written, but warning: {why}");
        }
    }
    if !problem.name().is_empty() {
        let _ = writeln!(s, "  name:        {}", problem.name());
    }
    let _ = writeln!(s, "  dimension:   {}", problem.dim());
    let _ = writeln!(
        s,
        "  parameters:  eta = {}, k = {}, gamma = {}",
        lag.eta(),
        lag.k(),
        lag.gamma()
    );
    let _ = writeln!(s, "  loss:        {}", lag.loss().describe());
    let _ = writeln!(s, "  metric:      {}", lag.metric().describe());
    let _ = writeln!(s, "  drift:       {}", lag.drift().describe());
    let _ = writeln!(
        s,
        "  theta0:      {}",
        lossnav_problems::problem::short_list(th)
    );
    let _ = writeln!(
        s,
        "  loss(theta0) = {:.6e}, |grad| = {:.6e}",
        lag.loss().value(th, 0.0),
        grad.norm()
    );
    let horizon = match problem.horizon() {
        Horizon::Finite(t) => format!("T = {t}"),
        Horizon::Infinite => "infinite".to_string(),
    };
    let _ = writeln!(s, "  horizon:     {horizon}");
    let _ = writeln!(s, "  start:       theta(0) = theta0");
    let _ = writeln!(s, "  end:         {}", problem.end().describe());
    s
}
