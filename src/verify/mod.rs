//! The catalogue of the paper's claims: each one a closed form put next to an independent
//! numerical solution of the same objective, with a measured error and a tolerance.
//!
//! `cargo test` runs every claim as its own test; `lossnav check` runs them and prints the
//! table. `docs/claims.md` carries the derivations and is checked against [`catalogue`].

mod claims;
mod support;

#[cfg(feature = "train")]
pub use claims::ballistic_vs_sgd_mnist_with;
pub use claims::{
    belief_plasticity_with, certificate_classifier, fit_interval_coverage_with,
    gradient_filter_with, heavy_ball_with, kinetic_transient_with, natural_gradient_fisher_with,
    noisy_quadratic_gaps, observed_expected_cost_with, optimal_schedule_decay_with,
    paper_adam_with, rotation_claim, rotation_end_corrected, rotation_end_published,
    rotation_endpoint_erratum_with, saddle_and_minimum_with, task_belief_moments_with,
    weight_decay_claim, weight_decay_corrected, weight_decay_erratum_with, weight_decay_published,
    weight_resetting_limit_with, window_rule_limits_with, Classifier, PullOf,
};

/// What a measured error counts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// An absolute difference (largest over what was compared) of the quantities compared.
    Absolute,
    /// A relative difference.
    Relative,
    /// Standard errors of a Monte Carlo estimate.
    StandardErrors,
    /// Conditions that failed, of this many checked (the tolerance is 0).
    Failures(usize),
    /// A score the claim's tolerance text defines (e.g. an observed order's distance from the
    /// predicted one).
    Other(&'static str),
}

impl Unit {
    /// The unit's name, for the table's last column.
    pub fn describe(&self) -> String {
        match self {
            Unit::Absolute => "absolute".into(),
            Unit::Relative => "relative".into(),
            Unit::StandardErrors => "standard errors".into(),
            Unit::Failures(_) => "conditions failed".into(),
            Unit::Other(what) => (*what).into(),
        }
    }

    /// A value in this unit, as the table prints it.
    pub fn format(&self, value: f64) -> String {
        match self {
            Unit::Failures(of) if value.is_finite() && value >= 0.0 => {
                format!("{}/{of}", value.round() as u64)
            }
            Unit::StandardErrors => format!("{value:.2}"),
            _ if value == 0.0 => "0".into(),
            _ if value.is_infinite() => "∞".into(),
            _ => format!("{value:.1e}"),
        }
    }
}

/// What a check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The measured discrepancy (or violation margin) between claim and numerics.
    pub error: f64,
    /// The largest error that still supports the claim.
    pub tolerance: f64,
    /// What `error` and `tolerance` count.
    pub unit: Unit,
    /// What was compared, with the numbers.
    pub detail: String,
}

impl Measurement {
    /// Whether the claim is supported (a NaN error fails).
    pub fn passed(&self) -> bool {
        self.error <= self.tolerance
    }
}

/// One claim of the paper.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// Stable identifier (`lossnav check --filter ID`).
    pub id: &'static str,
    /// Where in the paper the claim is made.
    pub paper: &'static str,
    /// The claim in one line.
    pub statement: &'static str,
    /// The closed form or property used.
    pub closed_form: &'static str,
    /// The independent numerical procedure.
    pub procedure: &'static str,
    /// The tolerance and why it is justified, in one sentence.
    pub tolerance: &'static str,
    /// Runs the comparison; `Err` when a solver failed (the claim then fails).
    pub check: fn() -> Result<Measurement, String>,
}

/// The outcome of running one claim.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The claim.
    pub claim: Claim,
    /// Its measurement, or why it could not be measured.
    pub result: Result<Measurement, String>,
}

impl Outcome {
    /// Whether the claim passed.
    pub fn passed(&self) -> bool {
        self.result.as_ref().is_ok_and(Measurement::passed)
    }

    /// Whether the claim could not run because data it needs is not installed (its error
    /// begins with [`NOT_INSTALLED`]): not run, which is neither a pass nor a failure of the
    /// claim. Every other error is a failure.
    pub fn not_installed(&self) -> bool {
        self.result
            .as_ref()
            .is_err_and(|e| e.starts_with(NOT_INSTALLED))
    }
}

/// How a claim's error begins when data it needs is absent from this machine (the MNIST
/// digits of `ballistic-vs-sgd-mnist`); the rest says how to install it.
pub const NOT_INSTALLED: &str = "not installed: ";

/// Every claim, in the order of the paper.
pub fn catalogue() -> Vec<Claim> {
    claims::all()
}

/// Runs the claims whose id contains `filter` (all when `None`), in parallel (each claim is
/// independent of the others, and its stochastic parts are seeded per claim, so the results do
/// not depend on the thread count), returned in catalogue order.
pub fn run(filter: Option<&str>) -> Vec<Outcome> {
    use rayon::prelude::*;
    let claims: Vec<Claim> = catalogue()
        .into_iter()
        .filter(|c| filter.is_none_or(|f| c.id.contains(f)))
        .collect();
    claims
        .into_par_iter()
        // One claim per task: the slow ones (Monte Carlo, coverage) start first in order.
        .with_max_len(1)
        .map(|claim| Outcome {
            claim,
            result: (claim.check)(),
        })
        .collect()
}

/// Runs one claim by exact id.
pub fn run_one(id: &str) -> Option<Outcome> {
    catalogue()
        .into_iter()
        .find(|c| c.id == id)
        .map(|claim| Outcome {
            claim,
            result: (claim.check)(),
        })
}

/// The claims table of `docs/claims.md` (a test keeps the two identical).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| id | paper | claim | closed form | numerical procedure | tolerance (why) |\n\
         |---|---|---|---|---|---|\n",
    );
    // A `|` inside a cell (as in `|θ|`) would end it: escape it.
    let cell = |text: &str| text.replace('|', "\\|");
    for c in catalogue() {
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            c.id,
            cell(c.paper),
            cell(c.statement),
            cell(c.closed_form),
            cell(c.procedure),
            cell(c.tolerance)
        ));
    }
    s
}
