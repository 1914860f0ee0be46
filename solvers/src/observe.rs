//! Progress of long solves, reported to an observer (in the spirit of argmin's observers and
//! SciML's callbacks): a command line shows it as a status line, a notebook logs it, a test
//! counts it.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use lossnav_problems::load_problem;
//! use lossnav_solvers::observe::{Observer, Progress};
//! use lossnav_solvers::Direct;
//!
//! #[derive(Default)]
//! struct Log(Mutex<Vec<(usize, f64)>>);
//! impl Observer for Log {
//!     fn progress(&self, p: &Progress) {
//!         self.0.lock().unwrap().push((p.iteration, p.value));
//!     }
//! }
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well.json");
//! let log = Arc::new(Log::default());
//! let direct = Direct::default().with_intervals(64).with_observer(log.clone());
//! direct.solve(&load_problem(path).unwrap()).unwrap();
//! assert!(!log.0.lock().unwrap().is_empty());
//! ```

use std::sync::Arc;

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The solver (`"bvp"`, `"direct"`).
    pub solver: &'static str,
    /// What is running: `"L-BFGS"`, `"Newton, mesh of 215 nodes"`, `"continuation in k"`.
    pub stage: String,
    /// Iterations so far in this solve.
    pub iteration: usize,
    /// What [`Progress::value`] measures (`"gradient norm"`, `"scaled Newton step"`).
    pub measure: &'static str,
    /// Its current value.
    pub value: f64,
    /// Seconds since the solve started.
    pub elapsed: f64,
    /// The iteration count at which the work is done, when it is known in advance (the grid
    /// points of an escape diagram, the steps of a training run); `None` for solvers, which
    /// stop on a tolerance.
    pub total: Option<usize>,
}

/// Receives progress reports. Called from the solving thread; a sweep calls it from several
/// threads at once, hence `Send + Sync`. Reports should be cheap to handle: they come every
/// few iterations.
pub trait Observer: Send + Sync {
    /// One report.
    fn progress(&self, report: &Progress);
}

/// No observer: `&()` where an observer is asked for and nothing should be reported.
impl Observer for () {
    fn progress(&self, _: &Progress) {}
}

/// An optional shared observer, as solvers hold it (options stay `Clone` and comparable:
/// two option sets are equal whatever observes them).
#[derive(Clone, Default)]
pub struct Observers(pub(crate) Option<Arc<dyn Observer>>);

impl Observers {
    pub(crate) fn report(&self, make: impl FnOnce() -> Progress) {
        if let Some(o) = &self.0 {
            o.progress(&make());
        }
    }
}

impl std::fmt::Debug for Observers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Observers(Some(..))"
        } else {
            "Observers(None)"
        })
    }
}

impl PartialEq for Observers {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
