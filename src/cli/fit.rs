//! `lossnav fit`: the assumptions under which observed trajectories are optimal
//! ([`crate::fit`]), as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::{check_writable, compact_pretty, print, write_atomic};
use super::CliError;
use crate::fit::{fit, FitOptions, Free, Observations};

pub(super) struct FitArgs<'a> {
    pub observations: &'a Path,
    pub spec: &'a Path,
    pub free: &'a [String],
    pub output: Option<&'a PathBuf>,
    pub starts: usize,
    pub seed: u64,
}

pub(super) fn run(args: FitArgs) -> Result<ExitCode, CliError> {
    if let Some(o) = args.output {
        check_writable(o)?;
    }
    let path = args.spec.display().to_string();
    let spec = lossnav_problems::Spec::from_file(args.spec).map_err(|source| CliError::Spec {
        path: path.clone(),
        source,
    })?;
    let free: Vec<Free> = args
        .free
        .iter()
        .map(|f| Free::parse(f))
        .collect::<Result<_, _>>()?;
    let obs = Observations::read(args.observations)?;
    let opts = FitOptions {
        starts: args.starts,
        seed: args.seed,
        ..FitOptions::default()
    };
    let report = fit(&path, &spec, &obs, &free, &opts)?;
    let text = compact_pretty(&report.doc);
    match args.output {
        Some(o) => write_atomic(o, &text)?,
        None => print(&text)?,
    }
    Ok(if report.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
