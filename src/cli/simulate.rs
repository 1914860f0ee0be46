//! `lossnav simulate`: integrate a learning rule forward and report the objective it achieves
//! (the computation is [`crate::commands::simulate`]; here, arguments and output).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::json;

use super::output::{print, write_atomic};
use super::{CliError, RuleKind};
pub use crate::commands::simulate::Observed;
use crate::commands::simulate::{simulate_observed, simulate_rule, RuleSimulation};

/// Arguments of `lossnav simulate`.
pub struct SimulateArgs<'a> {
    pub spec: &'a Path,
    pub rule: RuleKind,
    pub rate: Option<f64>,
    pub beta: f64,
    pub t_end: Option<f64>,
    pub at: &'a [f64],
    pub output: Option<&'a PathBuf>,
    pub summary: bool,
}

pub(super) fn run(args: SimulateArgs) -> Result<ExitCode, CliError> {
    let path = super::input::label(args.spec);
    let (_, problem) = super::input::load(args.spec)?;
    let doc = simulate_rule(
        &path,
        &problem,
        &RuleSimulation {
            rule: args.rule,
            rate: args.rate,
            beta: args.beta,
            t_end: args.t_end,
            at: args.at.to_vec(),
        },
    )?;
    let theta_end = doc["theta"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    let mut doc = super::lead(doc);
    let text = if args.summary {
        if let Some(map) = doc.as_object_mut() {
            for key in ["t", "theta", "theta_dot", "p", "loss", "kinetic"] {
                map.shift_remove(key);
            }
            map.insert("theta_end".into(), json!(theta_end));
        }
        super::compact_pretty(&doc)
    } else {
        serde_json::to_string_pretty(&doc).expect("JSON values serialise")
    };
    match args.output {
        Some(file) => write_atomic(file, &(text + "\n"))?,
        None => print(&(text + "\n"))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `lossnav simulate` on a spec with an observation block.
pub(super) fn run_observed(
    spec: &Path,
    opts: Observed,
    output: Option<&PathBuf>,
) -> Result<ExitCode, CliError> {
    let path = super::input::label(spec);
    let s = super::input::read_spec(spec)?;
    let doc = simulate_observed(&path, &s, &opts)?;
    let text = serde_json::to_string_pretty(&doc).expect("JSON values serialise");
    match output {
        Some(file) => write_atomic(file, &(text + "\n"))?,
        None => print(&(text + "\n"))?,
    }
    Ok(ExitCode::SUCCESS)
}
