//! `lossnav rule`: the closed-form learning rule of a linear–quadratic spec, as JSON (vectors
//! on one line, matrices one row per line: a screenful for small D).

use std::path::Path;
use std::process::ExitCode;

use super::output::{matrix_pretty, print};
use super::CliError;

pub(super) fn run(spec: &Path) -> Result<ExitCode, CliError> {
    let path = super::input::label(spec);
    let spec = super::input::read_spec(spec)?;
    let doc = crate::commands::rule(&path, &spec)?;
    print(&(matrix_pretty(&doc) + "\n"))?;
    Ok(ExitCode::SUCCESS)
}
