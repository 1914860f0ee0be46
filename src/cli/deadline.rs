//! The command's wall-clock budget, `--max-seconds` (every command).
//!
//! Two layers. A [`Budget`] scope on the main thread, which every solver the command runs
//! reads (worker threads of sweeps and diagrams take its deadline with [`Budget::until`]), so
//! a solve past the deadline ends with a typed error and whatever finished is kept. And a
//! watchdog that ends the process [`GRACE`] past the deadline if the command has not ended
//! by itself: the guarantee for work that reads no clock (closed-form rules, Monte Carlo,
//! figures, training), with the same clean-up of temporary files as Ctrl-C.

use std::time::{Duration, Instant};

use lossnav_solvers::{check_max_seconds, Budget};

use super::CliError;

/// How long past the deadline the watchdog waits for the command to end by itself (writing
/// what finished) before ending the process: under the one second the budget promises.
pub const GRACE: Duration = Duration::from_millis(800);

/// Opens the command's budget: the scope for the solvers (keep it alive for the whole
/// command) and the watchdog thread. Nothing without `max_seconds`.
pub(super) fn start(max_seconds: Option<f64>, command: &'static str) -> Result<Budget, CliError> {
    check_max_seconds(max_seconds).map_err(|_| {
        CliError::Usage(format!(
            "--max-seconds {}: must be a finite number of seconds > 0",
            max_seconds.unwrap_or(f64::NAN)
        ))
    })?;
    let scope = Budget::start(max_seconds);
    if let (Some(seconds), Some(deadline)) = (max_seconds, Budget::deadline()) {
        let end = deadline.checked_add(GRACE).unwrap_or(deadline);
        std::thread::Builder::new()
            .name("lossnav-budget".into())
            .spawn(move || {
                // Sleeps can end early (signals): wait until the instant has passed.
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    std::thread::sleep(end - now);
                }
                crate::atomic::remove_pending();
                eprintln!(
                    "error: the time budget (--max-seconds {seconds}) ran out before \
                     `lossnav {command}` finished; nothing more was written"
                );
                std::process::exit(2);
            })
            .map_err(|e| {
                CliError::Usage(format!(
                    "--max-seconds: cannot start the thread that enforces it: {e}"
                ))
            })?;
    }
    Ok(scope)
}
