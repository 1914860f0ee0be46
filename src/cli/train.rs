//! `lossnav train`: train a network with several optimisers and seeds (the computation is
//! [`crate::commands::train`]); one JSON line per (optimiser, seed, epoch) and the two panels
//! of Figure 2e,f.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::CliError;
pub use crate::commands::train::TrainArgs;

pub(super) fn run(args: TrainArgs, out: Option<PathBuf>) -> Result<ExitCode, CliError> {
    if let Some(dir) = &out {
        std::fs::create_dir_all(dir).map_err(|source| CliError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        super::output::check_writable(&dir.join("train.jsonl"))?;
    }
    let trained = crate::commands::train::train(&args, |total| {
        super::progress::CountBar::new(total, "steps")
    })?;
    let (records, lines, summary, setting) = (
        &trained.records,
        &trained.lines,
        &trained.summary,
        &trained.setting,
    );
    match &out {
        Some(dir) => {
            let path = dir.join("train.jsonl");
            super::output::write_atomic(&path, &(lines.join("\n") + "\n"))?;
            let summary_path = dir.join("train-summary.json");
            super::output::write_atomic(
                &summary_path,
                &serde_json::to_string_pretty(&summary).unwrap_or_default(),
            )?;
            let id = format!("train-{}-{}", trained.data, args.model);
            crate::figures::render_grid(
                &crate::figures::training_panels(records, setting),
                2,
                &id,
                dir,
                &crate::figures::ImageSize::default(),
            )
            .map_err(CliError::Figure)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&summary).unwrap_or_default()
            );
            eprintln!(
                "wrote {}, {} and {id}.svg/.png/.json in {}",
                path.display(),
                summary_path.display(),
                dir.display()
            );
        }
        None => {
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&summary).unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
