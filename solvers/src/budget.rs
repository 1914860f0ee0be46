//! The time budget of a solve: `max_seconds` becomes a deadline on the thread that runs the
//! solve, nested solves (the search, the certificate, continuations) keep the earliest one,
//! and every long loop reads it. Shared by every solver; depends on nothing but the error
//! type.

use std::time::Instant;

use crate::error::SolverError;

/// A wall-clock budget, if given, is a finite number of seconds above zero.
pub(crate) fn check_max_seconds(max_seconds: Option<f64>) -> Result<(), SolverError> {
    match max_seconds {
        Some(seconds) if !(seconds.is_finite() && seconds > 0.0) => {
            Err(SolverError::InvalidOption {
                name: "max_seconds",
                value: seconds,
                requirement: "must be a finite number > 0",
            })
        }
        _ => Ok(()),
    }
}

thread_local! {
    /// The start and deadline of the solve running on this thread: solves nest (the search
    /// and the certificate call the solver again), and every level keeps the earliest deadline.
    static BUDGET: std::cell::Cell<Option<(Instant, Option<Instant>)>> =
        const { std::cell::Cell::new(None) };
}

/// Sets this thread's budget for one solve, restoring the enclosing one on drop.
pub(crate) struct Budget(Option<(Instant, Option<Instant>)>);

impl Budget {
    pub(crate) fn start(max_seconds: Option<f64>) -> Self {
        let previous = BUDGET.get();
        let now = Instant::now();
        // A budget too long to represent (or not a duration) is no deadline; options are
        // validated before a solve starts.
        let own = max_seconds.and_then(|s| {
            std::time::Duration::try_from_secs_f64(s)
                .ok()
                .and_then(|d| now.checked_add(d))
        });
        let current = match previous {
            Some((start, outer)) => (
                start,
                match (outer, own) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            ),
            None => (now, own),
        };
        BUDGET.set(Some(current));
        Self(previous)
    }

    /// Whether this thread's budget has run out (false without one).
    pub(crate) fn expired() -> bool {
        Self::deadline().is_some_and(|d| Instant::now() > d)
    }

    pub(crate) fn deadline() -> Option<Instant> {
        BUDGET.get().and_then(|(_, d)| d)
    }

    pub(crate) fn elapsed() -> f64 {
        BUDGET.get().map_or(0.0, |(s, _)| s.elapsed().as_secs_f64())
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        BUDGET.set(self.0);
    }
}
