//! `lossnav schedule`: the learning-rate schedule of a finite-horizon optimal path (the
//! computation is [`crate::commands::schedule`]; here, arguments and output).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::{print, write_atomic};
use super::{CliError, Format};
use crate::commands::schedule::{schedule, schedule_csv};
use crate::commands::SolveOptions;

/// Arguments of `lossnav schedule`.
pub struct ScheduleArgs<'a> {
    pub spec: &'a Path,
    pub steps: usize,
    pub format: Format,
    pub output: Option<&'a PathBuf>,
    pub summary: bool,
    pub max_seconds: Option<f64>,
}

pub(super) fn run(args: ScheduleArgs) -> Result<ExitCode, CliError> {
    if args.summary && args.format == Format::Csv {
        return Err(CliError::Usage(
            "--summary is for JSON: the CSV's rows are the per-step arrays it leaves out".into(),
        ));
    }
    let path = super::input::label(args.spec);
    let (spec, problem) = super::input::load(args.spec)?;
    let opts = SolveOptions {
        max_seconds: args.max_seconds,
        ..SolveOptions::default()
    };
    let mut scheduled = schedule(&path, &spec, &problem, args.steps, &opts)?;
    let text = match args.format {
        Format::Csv => schedule_csv(&scheduled.schedule),
        Format::Json => {
            if args.summary {
                if let Some(map) = scheduled.doc.as_object_mut() {
                    for key in ["t", "lr", "unexplained", "max_curvature", "directions"] {
                        map.shift_remove(key);
                    }
                }
                super::compact_pretty(&scheduled.doc) + "\n"
            } else {
                serde_json::to_string_pretty(&scheduled.doc).expect("JSON values serialise") + "\n"
            }
        }
    };
    match args.output {
        Some(file) => write_atomic(file, &text)?,
        None => print(&text)?,
    }
    if scheduled.missed {
        eprintln!(
            "{path}: the solve missed its accuracy ({}); the schedule follows an unverified path",
            scheduled.doc["status"]
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
