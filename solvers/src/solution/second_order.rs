//! What the second-order check found, as a solution carries it: the verdict, the certificate
//! behind it, or why the check did not run. The check itself is `crate::certify::certificate`.

/// What the second-order check concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The discretised second variation is positive definite: a strict local minimum.
    Minimum,
    /// It has negative eigenvalues: a saddle of `J` (a stationary path that is not a minimum).
    Saddle,
    /// It is singular to working precision (a conjugate point at a mesh time, or a flat
    /// direction): no strict conclusion.
    Degenerate,
}

impl Verdict {
    /// Lower-case name for output (`"minimum"`, `"saddle"`, `"degenerate"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Minimum => "minimum",
            Verdict::Saddle => "saddle",
            Verdict::Degenerate => "degenerate",
        }
    }
}

/// The second-order certificate of a solution.
#[derive(Debug, Clone, PartialEq)]
pub struct Certificate {
    /// Minimum, saddle or degenerate.
    pub verdict: Verdict,
    /// Number of eigenvalues of the discretised second variation clearly below zero (0 for a
    /// minimum): the directions in which `J` decreases.
    pub descent_directions: usize,
    /// Number of eigenvalues zero to the discretisation's accuracy (`|λ| < 10⁻¹⁰` of the
    /// spectrum's scale): directions the check cannot decide. A path with some is
    /// [`Verdict::Degenerate`] unless it is already a saddle.
    pub near_zero: usize,
    /// The first conjugate time in `(0, T)` (to `0`), if any: the midpoint of the element in
    /// which the fixed-end second variation first loses positive definiteness (within half an
    /// element width, plus the `O(h²)` discretisation error).
    pub first_conjugate_time: Option<f64>,
    /// Smallest eigenvalue of `δ²J` relative to `∫ e^{-γt} |δθ|² dt` (units of `J` per squared
    /// parameter per time), converged to about seven digits (a Ritz value, so never below the
    /// true one; within the spread of the lowest eigenvalues when many are clustered).
    pub smallest_eigenvalue: f64,
    /// Elements of the discretisation.
    pub elements: usize,
}

/// The second-order status of a solution: checked, or why not.
#[derive(Debug, Clone, PartialEq)]
pub enum SecondOrder {
    /// The check ran.
    Checked(Certificate),
    /// The check did not run, and why (a singular mobility, a size beyond its budget, ...).
    Unchecked(String),
}

impl SecondOrder {
    /// One line: `strict local minimum (discretised δ²J positive definite, smallest eigenvalue
    /// 0.12)`, `saddle with 1 descent direction`, `degenerate …`, or `not checked (why)`.
    pub fn describe(&self) -> String {
        match self {
            SecondOrder::Checked(c) => match c.verdict {
                Verdict::Minimum => format!(
                    "strict local minimum (discretised second variation positive definite, \
                     smallest eigenvalue {:.3e})",
                    c.smallest_eigenvalue
                ),
                Verdict::Saddle => format!(
                    "saddle of J, not a minimum ({} descent direction{})",
                    c.descent_directions,
                    if c.descent_directions == 1 { "" } else { "s" }
                ),
                Verdict::Degenerate => format!(
                    "degenerate ({} direction{} the check cannot decide): not certified",
                    c.near_zero,
                    if c.near_zero == 1 { "" } else { "s" }
                ),
            },
            SecondOrder::Unchecked(why) => format!("not checked ({why})"),
        }
    }

    /// As JSON: `checked`, and `verdict`, `descent_directions`, `near_zero`,
    /// `first_conjugate_time`, `smallest_eigenvalue`, `elements` when it ran, `reason` when not.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SecondOrder::Checked(c) => serde_json::json!({
                "checked": true,
                "verdict": c.verdict.as_str(),
                "descent_directions": c.descent_directions,
                "near_zero": c.near_zero,
                "first_conjugate_time": c.first_conjugate_time,
                "smallest_eigenvalue": c.smallest_eigenvalue,
                "elements": c.elements,
            }),
            SecondOrder::Unchecked(reason) => {
                serde_json::json!({"checked": false, "reason": reason})
            }
        }
    }

    /// The certificate, if the check ran.
    pub fn certificate(&self) -> Option<&Certificate> {
        match self {
            SecondOrder::Checked(c) => Some(c),
            SecondOrder::Unchecked(_) => None,
        }
    }

    /// Whether the check ran and found a strict local minimum.
    pub fn is_minimum(&self) -> bool {
        self.certificate()
            .is_some_and(|c| c.verdict == Verdict::Minimum)
    }

    /// Whether the check ran and found a saddle.
    pub fn is_saddle(&self) -> bool {
        self.certificate()
            .is_some_and(|c| c.verdict == Verdict::Saddle)
    }
}
