//! The time budget of a solve: `max_seconds` becomes a deadline on the thread that runs the
//! solve, nested solves (the search, the certificate, continuations) keep the earliest one,
//! and every long loop reads it. Shared by every solver; depends on nothing but the error
//! type.
//!
//! A caller that runs several solvers under one budget (a command, a sweep worker) opens a
//! [`Budget`] scope around them: every solve on that thread then ends by the scope's deadline,
//! whatever its own `max_seconds`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// A flag another thread may raise to end this thread's solves as if the deadline had
    /// passed (an interrupt from a host language, a cancelled job).
    static CANCEL: std::cell::RefCell<Option<Arc<AtomicBool>>> =
        const { std::cell::RefCell::new(None) };
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
pub struct Budget {
    previous: Option<(Instant, Option<Instant>)>,
    /// The enclosing cancel flag, when this scope replaced it.
    previous_cancel: Option<Option<Arc<AtomicBool>>>,
    /// A scope belongs to the thread whose state it changed.
    _not_send: std::marker::PhantomData<*const ()>,
}

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
        Self {
            previous,
            previous_cancel: None,
            _not_send: std::marker::PhantomData,
        }
    }

    /// Opens a scope (keeping the enclosing deadline) whose solves end as if their deadline
    /// had passed once `flag` is raised, from any thread: how a caller that waits elsewhere
    /// (a Python interpreter checking for Ctrl-C) stops a solve.
    ///
    /// ```
    /// use std::sync::{atomic::{AtomicBool, Ordering}, Arc};
    /// use lossnav_solvers::Budget;
    /// let flag = Arc::new(AtomicBool::new(false));
    /// let _scope = Budget::cancellable(flag.clone());
    /// assert!(!Budget::expired());
    /// flag.store(true, Ordering::Relaxed);
    /// assert!(Budget::expired());
    /// ```
    pub fn cancellable(flag: Arc<AtomicBool>) -> Self {
        let mut scope = Self::until(None);
        scope.previous_cancel = Some(CANCEL.with_borrow_mut(|c| c.replace(flag)));
        scope
    }

    /// What a worker thread needs to run under this thread's budget: its deadline and cancel
    /// flag. [`BudgetHandle::enter`] on the worker opens the scope.
    pub fn handle() -> BudgetHandle {
        BudgetHandle {
            budget: BUDGET.get(),
            cancel: CANCEL.with_borrow(Clone::clone),
        }
    }

    /// Whether this thread's cancel flag is raised: for loops that keep a copy of the
    /// deadline and compare the clock with it, and for callbacks into a host language that
    /// must stop once the caller has moved on.
    pub fn cancelled() -> bool {
        CANCEL.with_borrow(|c| c.as_ref().is_some_and(|f| f.load(Ordering::Relaxed)))
    }

    /// This thread's deadline, if it has one (one already past once a cancel flag is raised).
    pub fn deadline() -> Option<Instant> {
        let budget = BUDGET.get();
        if Self::cancelled() {
            return Some(budget.map_or_else(Instant::now, |(start, _)| start));
        }
        budget.and_then(|(_, d)| d)
    }

    pub(crate) fn elapsed() -> f64 {
        BUDGET.get().map_or(0.0, |(s, _)| s.elapsed().as_secs_f64())
    }
}

/// A thread's budget, to be taken on by worker threads (see [`Budget::handle`]).
#[derive(Debug, Clone, Default)]
pub struct BudgetHandle {
    budget: Option<(Instant, Option<Instant>)>,
    cancel: Option<Arc<AtomicBool>>,
}

impl BudgetHandle {
    /// Opens, on the calling thread, a scope with exactly the handle's start, deadline and
    /// cancel flag (not combined with the thread's own: a pool thread that picks up this
    /// work while waiting on other work must not mix the two), restored on drop.
    pub fn enter(&self) -> Budget {
        let previous = BUDGET.replace(self.budget);
        let previous_cancel = CANCEL.with_borrow_mut(|c| std::mem::replace(c, self.cancel.clone()));
        Budget {
            previous,
            previous_cancel: Some(previous_cancel),
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        BUDGET.set(self.previous);
        if let Some(previous) = self.previous_cancel.take() {
            CANCEL.set(previous);
        }
    }
}
