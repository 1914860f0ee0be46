//! Typed errors for everything a user can get wrong when stating a problem.

use std::path::PathBuf;

/// Why a problem, a spec or one of its parts was rejected.
///
/// Every variant names the offending field (a dotted path into the JSON spec, such as
/// `metric.diag` or `loss.quadratic.minimum`, or the Rust argument it came from) so the
/// message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ProblemError {
    /// The spec is not valid JSON or does not have the spec's shape.
    #[error("invalid spec at line {line}, column {column}: {message}")]
    Json {
        /// 1-based line of the offending character.
        line: usize,
        /// 1-based column of the offending character.
        column: usize,
        /// What serde_json reported.
        message: String,
    },
    /// The spec file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A field has a value of the wrong form.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A vector or matrix has the wrong size.
    #[error("{field}: expected {expected}, got {got}")]
    Dimension {
        /// Dotted path of the field.
        field: String,
        /// The size it must have, in words (for example "2 entries (the length of theta0)").
        expected: String,
        /// The size it has.
        got: String,
    },
    /// A number is NaN or infinite.
    #[error("{field}: {value} is not a finite number")]
    NotFinite {
        /// Dotted path of the field.
        field: String,
        /// The offending value.
        value: f64,
    },
    /// A scalar parameter is outside its allowed range.
    #[error("{name} = {} is not allowed: {name} must be {requirement}", number(*value))]
    Parameter {
        /// Parameter name (`eta`, `k`, `gamma`, `horizon`, ...).
        name: String,
        /// The offending value.
        value: f64,
        /// The rule it breaks, in words ("> 0", ">= 0").
        requirement: String,
    },
    /// A metric is not symmetric positive definite, or a mobility not positive semi-definite.
    #[error("{field}: {message}")]
    NotPositiveDefinite {
        /// Dotted path of the field.
        field: String,
        /// Which property fails, with the measured number.
        message: String,
    },
    /// An expression does not parse or cannot be differentiated.
    #[error(
        "{field}: cannot use expression \"{}\": {message}",
        excerpt(expression)
    )]
    Expression {
        /// Dotted path of the field.
        field: String,
        /// The expression text.
        expression: String,
        /// The parser's or differentiator's complaint.
        message: String,
    },
    /// An expression uses names that are neither variables, parameters, constants nor `t`.
    #[error(
        "{field}: expression \"{}\" uses unknown variable{} {} (known: {})",
        excerpt(expression),
        if names.len() == 1 { "" } else { "s" },
        excerpt(&names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")),
        excerpt(known)
    )]
    UnknownVariable {
        /// Dotted path of the field.
        field: String,
        /// The expression text.
        expression: String,
        /// The unknown names, in order of appearance.
        names: Vec<String>,
        /// The names that are allowed, comma separated.
        known: String,
    },
    /// Something evaluates to NaN or infinity at the start point.
    #[error("{what} is not finite at theta0 = {theta0:?} (got {value})")]
    NotFiniteAtStart {
        /// What was evaluated ("loss", "gradient of the loss", "metric", "drift", ...).
        what: String,
        /// The start point.
        theta0: Vec<f64>,
        /// The offending value.
        value: f64,
    },
    /// The horizon and the end condition do not go together.
    #[error("end: {0}")]
    EndCondition(String),
}

impl ProblemError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub(crate) fn dimension(
        field: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Self::Dimension {
            field: field.into(),
            expected: expected.into(),
            got: got.into(),
        }
    }
}

/// Result type of this crate.
pub type Result<T, E = ProblemError> = std::result::Result<T, E>;

/// Checks that every entry of `values` is finite, naming the field and the index otherwise.
pub(crate) fn check_finite(field: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(ProblemError::NotFinite {
            field: format!("{field}[{i}]"),
            value: values[i],
        }),
    }
}

/// Formats a measured number for a message: fixed-point in the everyday range, scientific
/// otherwise.
pub(crate) fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || (1e-3..1e5).contains(&a) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// A number as a user would write it: plain between 10⁻⁴ and 10⁹, scientific otherwise (`{}`
/// prints 1e-300 with 300 digits).
fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e9).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// `text` whole when short, else its first 60 characters, `…` and its length: an error about a
/// megabyte of expression must not repeat it.
fn excerpt(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= 120 {
        text.to_string()
    } else {
        let head: String = text.chars().take(60).collect();
        format!("{head}… ({chars} characters)")
    }
}
