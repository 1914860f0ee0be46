//! `lossnav solve`: the optimal trajectory of a spec, as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lossnav_problems::{load_problem, Horizon};
use lossnav_solvers::{Bvp, Direct, Shooting};

use super::output::{print, solution_json, write_atomic};
use super::{CliError, Method};

/// Arguments of `lossnav solve`.
pub struct SolveArgs<'a> {
    pub spec: &'a Path,
    pub method: Method,
    pub tol: Option<f64>,
    pub intervals: usize,
    pub at: &'a [f64],
    pub output: Option<&'a PathBuf>,
}

pub(super) fn run(args: SolveArgs) -> Result<ExitCode, CliError> {
    let path = args.spec.display().to_string();
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
    let solution = match args.method {
        Method::Bvp => Bvp::default()
            .with_tol(args.tol.unwrap_or(1e-8))
            .solve(&problem),
        Method::Direct => {
            if let Some(tol) = args.tol {
                return Err(CliError::Usage(format!(
                    "--tol {tol}: the direct method has no error tolerance; its accuracy is set \
                     by --intervals"
                )));
            }
            Direct::default()
                .with_intervals(args.intervals)
                .solve(&problem)
        }
        Method::Shooting => {
            let mut shooting = Shooting::default();
            if let Some(tol) = args.tol {
                shooting.tol = tol;
            }
            shooting.solve(&problem)
        }
    }
    .map_err(|source| CliError::Solver { path, source })?;
    let doc = solution_json(problem.name(), &solution, args.at);
    let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    match args.output {
        Some(file) => write_atomic(file, &(text + "\n"))?,
        None => print(&(text + "\n"))?,
    }
    Ok(if solution.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
