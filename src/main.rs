//! The `lossnav` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lossnav::cli::Cli::parse();
    match lossnav::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
