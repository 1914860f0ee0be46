//! `lossnav rule`: the closed-form learning rule of a linear–quadratic spec, as JSON.

use std::path::Path;
use std::process::ExitCode;

use super::output::print;
use super::CliError;

pub(super) fn run(spec: &Path) -> Result<ExitCode, CliError> {
    let path = super::input::label(spec);
    let spec = super::input::read_spec(spec)?;
    let doc = crate::commands::rule(&path, &spec)?;
    print(&(serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n"))?;
    Ok(ExitCode::SUCCESS)
}
