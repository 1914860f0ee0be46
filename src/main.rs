//! The `lossnav` command line.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lossnav::cli::Cli::parse();
    // Ctrl-C and SIGTERM remove the temporary files of writes in progress.
    lossnav::atomic::install_interrupt_cleanup();
    match lossnav::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
