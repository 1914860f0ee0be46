//! `lossnav fit`: the assumptions under which observed trajectories are optimal
//! ([`crate::fit`]), as JSON.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::output::{check_writable, compact_pretty, print, write_atomic};
use super::CliError;
use crate::fit::{fit, rule_observations, FitOptions, Free, Generator, Observations};

pub(super) struct FitArgs<'a> {
    pub observations: Option<&'a Path>,
    /// The rule, its learning rate and momentum, steps observed and steps skipped.
    pub rule: Option<(super::FitRule, f64, f64, Option<usize>, usize)>,
    pub spec: &'a Path,
    pub free: &'a [String],
    pub output: Option<&'a PathBuf>,
    pub out: Option<&'a PathBuf>,
    pub image: super::ImageArgs,
    pub sigma: Option<f64>,
    pub starts: usize,
    pub seed: u64,
}

pub(super) fn run(args: FitArgs) -> Result<ExitCode, CliError> {
    if let Some(o) = args.output {
        check_writable(o)?;
    }
    if args.observations.is_some_and(super::input::is_stdin) && super::input::is_stdin(args.spec) {
        return Err(CliError::Usage(
            "fit: the spec and the observations cannot both come from standard input".into(),
        ));
    }
    let path = super::input::label(args.spec);
    let mut spec = super::input::read_spec(args.spec)?;
    let free: Vec<Free> = args
        .free
        .iter()
        .map(|f| Free::parse(f))
        .collect::<Result<_, _>>()?;
    let obs = match (args.rule, args.observations) {
        (Some((rule, lr, beta, steps, skip)), _) => {
            let generator = match rule {
                super::FitRule::HeavyBall => Generator::HeavyBall,
                super::FitRule::Adam => Generator::Adam,
            };
            if rule == super::FitRule::HeavyBall && beta.is_nan() {
                return Err(CliError::Usage(
                    "--rule heavy-ball needs --beta (the momentum)".into(),
                ));
            }
            rule_observations(&path, &mut spec, generator, lr, beta, steps, skip)?
        }
        (None, Some(o)) if super::input::is_stdin(o) => {
            let text = super::input::stdin_text(Observations::MAX_FILE_BYTES, "observations")?;
            Observations::from_text("standard input", text, false)?
        }
        (None, Some(o)) => Observations::read(o)?,
        (None, None) => {
            return Err(CliError::Usage(
                "fit: give observations, or --rule to generate them".into(),
            ))
        }
    };
    let mut obs = obs;
    if let Some(s) = args.sigma {
        if !(s.is_finite() && s > 0.0) {
            return Err(CliError::Usage(format!("--sigma {s}: a number > 0")));
        }
        obs.sigma = Some(s);
    }
    let opts = FitOptions {
        starts: args.starts,
        seed: args.seed,
        ..FitOptions::default()
    };
    let size = args.image.size()?;
    let report = fit(&path, &spec, &obs, &free, &opts)?;
    if let Some(out) = args.out {
        crate::figures::fit_figures(&spec, &obs, &report.doc, out, &size)
            .map_err(CliError::Figure)?;
    }
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
