//! The time budget of a solve: `max_seconds` becomes a deadline on the thread that runs the
//! solve, nested solves (the search, the certificate, continuations) keep the earliest one,
//! and every long loop reads it. Shared by every solver; depends on nothing but the error
//! type.
//!
//! A caller that runs several solvers under one budget (a command, a sweep worker) opens a
//! [`Budget`] scope around them: every solve on that thread then ends by the scope's deadline,
//! whatever its own `max_seconds`.

use std::time::Instant;

use crate::error::SolverError;

/// A wall-clock budget, if given, is a finite number of seconds above zero.
pub fn check_max_seconds(max_seconds: Option<f64>) -> Result<(), SolverError> {
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

/// This thread's wall-clock budget while the value lives; the enclosing one comes back on
/// drop. Scopes nest, and the earliest deadline wins.
///
/// ```
/// use lossnav_solvers::Budget;
/// let _scope = Budget::start(Some(30.0));
/// assert!(!Budget::expired());
/// assert!(Budget::remaining().is_some_and(|s| s <= 30.0));
/// ```
#[must_use = "the budget lasts as long as the value"]
pub struct Budget(Option<(Instant, Option<Instant>)>);

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget")
            .field("remaining", &Self::remaining())
            .finish()
    }
}

impl Budget {
    /// Opens a scope of `max_seconds` (none: only the enclosing scope's deadline, if any).
    /// Check the value with [`check_max_seconds`] first: one that is not a finite positive
    /// number of seconds gives no deadline of its own.
    pub fn start(max_seconds: Option<f64>) -> Self {
        // A budget too long to represent (or not a duration) is no deadline; options are
        // validated before a solve starts.
        let now = Instant::now();
        Self::until(max_seconds.and_then(|s| {
            std::time::Duration::try_from_secs_f64(s)
                .ok()
                .and_then(|d| now.checked_add(d))
        }))
    }

    /// Whether this thread's budget has run out (false without one).
    pub fn expired() -> bool {
        Self::deadline().is_some_and(|d| Instant::now() > d)
    }

    /// Seconds left in this thread's budget (none without one; zero once it ran out).
    pub fn remaining() -> Option<f64> {
        Self::deadline().map(|d| d.saturating_duration_since(Instant::now()).as_secs_f64())
    }

    /// Opens a scope that ends at `deadline` (none: only the enclosing scope's): how a
    /// worker thread takes on the deadline of the thread that spawned it.
    pub fn until(deadline: Option<Instant>) -> Self {
        let previous = BUDGET.get();
        let now = Instant::now();
        let current = match previous {
            Some((start, outer)) => (
                start,
                match (outer, deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                },
            ),
            None => (now, deadline),
        };
        BUDGET.set(Some(current));
        Self(previous)
    }

    /// This thread's deadline, if it has one.
    pub fn deadline() -> Option<Instant> {
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
