//! The catalogue of the paper's claims: each one a closed form put next to an independent
//! numerical solution of the same objective, with a measured error and a tolerance.
//!
//! `cargo test` runs every claim as its own test; `lossnav check` runs them and prints the
//! table. `docs/claims.md` carries the derivations and is checked against [`catalogue`].

mod claims;
mod support;

pub use claims::{
    belief_plasticity_with, certificate_classifier, fit_interval_coverage_with,
    gradient_filter_with, heavy_ball_with, noisy_quadratic_gaps, observed_expected_cost_with,
    rotation_claim, saddle_and_minimum_with, task_belief_moments_with, weight_decay_claim,
    Classifier,
};

/// What a check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The measured discrepancy (or violation margin) between claim and numerics.
    pub error: f64,
    /// The largest error that still supports the claim.
    pub tolerance: f64,
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
}

/// Every claim, in the order of the paper.
pub fn catalogue() -> Vec<Claim> {
    claims::all()
}

/// Runs the claims whose id contains `filter` (all when `None`).
pub fn run(filter: Option<&str>) -> Vec<Outcome> {
    catalogue()
        .into_iter()
        .filter(|c| filter.is_none_or(|f| c.id.contains(f)))
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
