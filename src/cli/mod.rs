//! Command-line interface: argument parsing and the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod validate;

/// Why a command failed; printed as one line by the binary.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A spec was rejected.
    #[error("{path}: {source}")]
    Spec {
        /// The spec file.
        path: String,
        /// Why.
        source: lossnav_problems::ProblemError,
    },
    /// The subcommand exists but has no implementation in this version.
    #[error("`lossnav {0}` is not implemented yet")]
    NotImplemented(&'static str),
}

/// Derive learning rules as solutions of an optimal-control problem.
#[derive(Debug, Parser)]
#[command(
    name = "lossnav",
    version,
    about,
    long_about = "Derive learning rules as solutions of an optimal-control problem: a loss \
                  landscape, a metric, a drift and a discount define an objective whose \
                  optimal trajectories are learning rules.",
    after_help = "Examples:\n  lossnav validate problems/specs/figure1-double-well.json\n  \
                  lossnav validate problems/specs/*.json"
)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files and print a summary of each problem.
    #[command(
        after_help = "Examples:\n  lossnav validate problems/specs/figure1-double-well.json\n  \
                            lossnav validate problems/specs/*.json"
    )]
    Validate {
        /// Spec files (JSON; see docs/spec.md).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Solve a problem: the optimal trajectory as JSON.
    #[command(after_help = "Example:\n  lossnav solve problems/specs/figure1-double-well.json")]
    Solve {
        /// Spec file.
        spec: PathBuf,
    },
    /// Closed-form learning rule of a linear–quadratic problem.
    #[command(after_help = "Example:\n  lossnav rule problems/specs/figure2-quadratic-2d.json")]
    Rule {
        /// Spec file.
        spec: PathBuf,
    },
    /// Run the catalogue of the paper's claims.
    #[command(after_help = "Example:\n  lossnav check")]
    Check,
    /// Regenerate the paper's figures.
    #[command(after_help = "Example:\n  lossnav figures --out figures")]
    Figures {
        /// Output directory.
        #[arg(long, default_value = "figures")]
        out: PathBuf,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Validate { specs } => validate::run(&specs),
        Command::Solve { .. } => Err(CliError::NotImplemented("solve")),
        Command::Rule { .. } => Err(CliError::NotImplemented("rule")),
        Command::Check => Err(CliError::NotImplemented("check")),
        Command::Figures { .. } => Err(CliError::NotImplemented("figures")),
    }
}
