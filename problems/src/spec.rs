//! JSON problem specs: the file format of `lossnav` (documented in `docs/spec.md`).
//!
//! A [`Spec`] is plain data (serde); [`Spec::to_problem`] validates it and builds the
//! [`Problem`]. Errors name the field (`metric.diag`, `loss.quadratic.minimum`, ...) and,
//! for malformed JSON, the line and column.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::drift::{Affine, Drift, ExprDrift, NoDrift};
use crate::error::{check_finite, ProblemError, Result};
use crate::expr::Scope;
use crate::lagrangian::Lagrangian;
use crate::landscape::Landscape;
use crate::landscapes::autodiff::AutoDiff;
use crate::landscapes::double_well::DoubleWell;
use crate::landscapes::expression::ExprLoss;
use crate::landscapes::quadratic::Quadratic;
use crate::landscapes::rosenbrock::Rosenbrock;
use crate::metric::{Constant, Diagonal, ExprMetric, Identity, Metric};
use crate::problem::{End, Horizon, Problem};

/// A problem as written in a JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// A label for summaries and results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The loss landscape.
    pub loss: LossSpec,
    /// The metric (default: identity).
    #[serde(default)]
    pub metric: MetricSpec,
    /// The drift (default: none).
    #[serde(default)]
    pub drift: Option<DriftSpec>,
    /// η > 0 (default 1).
    #[serde(default = "one")]
    pub eta: f64,
    /// k ≥ 0 (default 1).
    #[serde(default = "one")]
    pub k: f64,
    /// γ ≥ 0 (default 0).
    #[serde(default)]
    pub gamma: f64,
    /// The start point; its length is the dimension `D`.
    pub theta0: Vec<f64>,
    /// A positive number or `"infinite"`.
    pub horizon: HorizonSpec,
    /// The end condition (default: `"free"` for a finite horizon, `"equilibrium"` for an
    /// infinite one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<EndSpec>,
    /// Named constants visible to every expression (besides the loss's own `params`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, f64>,
    /// Task uncertainty (docs/theory.md §6): the quadratic loss's minimum is the current task's,
    /// and tasks switch at `hazard` to fresh minima from `N(prior_mean, prior_cov)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_switching: Option<TaskSwitchingSpec>,
    /// Partial observability (docs/theory.md §5.1): the quadratic loss's minimum is the prior mean
    /// of the unknown minimum, seen through noisy gradients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<ObservationSpec>,
}

/// `{"gradient_noise": R, "minimum_cov": S0}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationSpec {
    /// Covariance rate `R` of the gradient noise (symmetric positive definite).
    pub gradient_noise: Vec<Vec<f64>>,
    /// Prior covariance `S0` of the minimum (symmetric positive semi-definite).
    pub minimum_cov: Vec<Vec<f64>>,
}

/// `{"hazard": λ, "prior_mean": [...], "prior_cov": [[...], ...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSwitchingSpec {
    /// Switches per unit time, `λ > 0`.
    pub hazard: f64,
    /// Mean `μ0` of a fresh task's minimum.
    pub prior_mean: Vec<f64>,
    /// Covariance `S0` (symmetric positive semi-definite).
    pub prior_cov: Vec<Vec<f64>>,
}

fn one() -> f64 {
    1.0
}

/// The loss: exactly one of `quadratic`, `expr`, `double_well`, `rosenbrock`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossSpec {
    /// `½(θ-μ)ᵀH(θ-μ)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quadratic: Option<QuadraticSpec>,
    /// An expression in `vars`, `params` and `t`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// Names of the coordinates of θ, in order (default `x1..xD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vars: Option<Vec<String>>,
    /// Named constants of the expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<BTreeMap<String, f64>>,
    /// The built-in double well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub double_well: Option<DoubleWellSpec>,
    /// The built-in Rosenbrock valley.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rosenbrock: Option<RosenbrockSpec>,
}

/// A quadratic loss: `hessian` or `curvatures`, and `minimum`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuadraticSpec {
    /// Full symmetric Hessian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian: Option<Vec<Vec<f64>>>,
    /// Diagonal of the Hessian.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curvatures: Option<Vec<f64>>,
    /// The minimum μ.
    pub minimum: Vec<f64>,
}

/// `a(x²-b)² + c|y|² + dx` (defaults: the Figure 1 landscape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoubleWellSpec {
    /// Barrier scale.
    #[serde(default = "one")]
    pub a: f64,
    /// Squared well position.
    #[serde(default = "one")]
    pub b: f64,
    /// Transverse curvature.
    #[serde(default = "one")]
    pub c: f64,
    /// Tilt.
    #[serde(default = "minus_half")]
    pub d: f64,
}

fn minus_half() -> f64 {
    -0.5
}

/// `Σ b(θᵢ₊₁-θᵢ²)² + (a-θᵢ)²` (defaults `a = 1`, `b = 100`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosenbrockSpec {
    /// Position of the minimum.
    #[serde(default = "one")]
    pub a: f64,
    /// Steepness.
    #[serde(default = "hundred")]
    pub b: f64,
}

fn hundred() -> f64 {
    100.0
}

/// The metric `G` or mobility `M = G⁻¹`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricSpec {
    /// `G = I`.
    #[default]
    Identity,
    /// `G = diag(g)`.
    Diag(Vec<f64>),
    /// Constant symmetric positive definite `G`.
    Matrix(Vec<Vec<f64>>),
    /// θ-dependent `G(θ)`, one expression per entry.
    Expr(Vec<Vec<String>>),
    /// Constant positive semi-definite mobility `M` (may be singular).
    Mobility(Vec<Vec<f64>>),
}

/// The drift: `linear` (+ optional `offset`) or `expr`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSpec {
    /// `A` in `f = Aθ + b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<Vec<Vec<f64>>>,
    /// `b` in `f = Aθ + b` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<Vec<f64>>,
    /// One expression per coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<Vec<String>>,
}

/// A positive number or `"infinite"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HorizonSpec {
    /// `T`.
    Finite(f64),
    /// `"infinite"`.
    Infinite,
}

impl Serialize for HorizonSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            HorizonSpec::Finite(t) => s.serialize_f64(*t),
            HorizonSpec::Infinite => s.serialize_str("infinite"),
        }
    }
}

impl<'de> Deserialize<'de> for HorizonSpec {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(de)? {
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(HorizonSpec::Finite)
                .ok_or_else(|| D::Error::custom("horizon: number out of range")),
            serde_json::Value::String(s) if s == "infinite" => Ok(HorizonSpec::Infinite),
            other => Err(D::Error::custom(format!(
                "expected a positive number or \"infinite\", got {other}"
            ))),
        }
    }
}

/// The end condition.
#[derive(Debug, Clone, PartialEq)]
pub enum EndSpec {
    /// `{"fixed": [..]}`.
    Fixed(Vec<f64>),
    /// `"free"`.
    Free,
    /// `{"cost": <loss>}`: free end with a terminal cost.
    Cost(LossSpec),
    /// `"equilibrium"` or `{"equilibrium": [guess..]}`.
    Equilibrium(Option<Vec<f64>>),
}

impl Serialize for EndSpec {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let single =
            |s: S, key: &str, value: &dyn erased::Value| -> std::result::Result<S::Ok, S::Error> {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(key, &erased::Wrap(value))?;
                m.end()
            };
        match self {
            EndSpec::Fixed(v) => single(s, "fixed", v),
            EndSpec::Free => s.serialize_str("free"),
            EndSpec::Cost(l) => single(s, "cost", l),
            EndSpec::Equilibrium(None) => s.serialize_str("equilibrium"),
            EndSpec::Equilibrium(Some(g)) => single(s, "equilibrium", g),
        }
    }
}

/// Serialising one of several value types through one map-entry helper.
mod erased {
    pub trait Value {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Value for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
    pub struct Wrap<'a>(pub &'a dyn Value);
    impl serde::Serialize for Wrap<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.0.json().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for EndSpec {
    fn deserialize<D: Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        use serde_json::Value;
        let expected = "expected \"free\", \"equilibrium\", {\"fixed\": [...]}, \
                        {\"cost\": <loss>} or {\"equilibrium\": [...]}";
        let value = Value::deserialize(de)?;
        match &value {
            Value::String(s) if s == "free" => Ok(EndSpec::Free),
            Value::String(s) if s == "equilibrium" => Ok(EndSpec::Equilibrium(None)),
            Value::Object(map) if map.len() == 1 => {
                let (key, inner) = map.iter().next().expect("one entry");
                let field = |e: serde_json::Error| D::Error::custom(format!("end.{key}: {e}"));
                match key.as_str() {
                    "fixed" => serde_json::from_value(inner.clone())
                        .map(EndSpec::Fixed)
                        .map_err(field),
                    "cost" => serde_json::from_value(inner.clone())
                        .map(EndSpec::Cost)
                        .map_err(field),
                    "equilibrium" => serde_json::from_value(inner.clone())
                        .map(|g| EndSpec::Equilibrium(Some(g)))
                        .map_err(field),
                    _ => Err(D::Error::custom(format!("{expected}; got key \"{key}\""))),
                }
            }
            other => Err(D::Error::custom(format!("{expected}; got {other}"))),
        }
    }
}

impl Spec {
    /// Parses a spec from JSON text (no validation beyond the JSON shape).
    pub fn from_json(text: &str) -> Result<Self> {
        // Editors on some systems save UTF-8 with a byte-order mark; it is not JSON.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // A spec is one object: an array (or a bare number) would otherwise be read as a
        // sequence of fields and fail with a message about field types.
        let first = text.trim_start().chars().next();
        if first.is_some_and(|c| c != '{') {
            return Err(ProblemError::Json {
                message: format!(
                    "a spec is a JSON object {{...}}; this text starts with {:?}",
                    first.unwrap_or(' ')
                ),
                line: 1,
                column: 1,
            });
        }
        // Through serde_path_to_error so that a wrong type names its field (`eta`,
        // `loss.quadratic.curvatures[1]`), which serde_json's own message does not.
        let mut de = serde_json::Deserializer::from_str(text);
        let spec: Self = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let mut error = json_error(e.into_inner());
            if let ProblemError::Json { message, .. } = &mut error {
                // "?" is the path of a syntax error outside any field.
                if !path.is_empty() && path != "." && path != "?" {
                    *message = format!("{path}: {message}");
                }
            }
            error
        })?;
        de.end().map_err(json_error)?;
        Ok(spec)
    }

    /// Reads and parses a spec file (at most [`Spec::MAX_FILE_BYTES`]).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        use std::io::Read;
        let path = path.as_ref();
        let io_error = |source| ProblemError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Read through a limit: a device or pipe that never ends (`/dev/zero`) must give an
        // error, not exhaust memory.
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(io_error)?
            .take(Self::MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io_error)?;
        if text.len() as u64 > Self::MAX_FILE_BYTES {
            return Err(io_error(std::io::Error::other(format!(
                "larger than {} MiB; a spec is a small text file",
                Self::MAX_FILE_BYTES >> 20
            ))));
        }
        Self::from_json(&text)
    }

    /// The largest spec file [`Spec::from_file`] reads: far above any spec with inline data.
    pub const MAX_FILE_BYTES: u64 = 256 << 20;

    /// Pretty JSON text of the spec.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a spec always serialises")
    }

    /// Validates the spec and builds the problem.
    pub fn to_problem(&self) -> Result<Problem> {
        let d = self.theta0.len();
        if d == 0 {
            return Err(ProblemError::invalid(
                "theta0",
                "must have at least one entry",
            ));
        }
        check_finite("theta0", &self.theta0)?;
        let scope = self.scope(d)?;
        let mut loss = build_loss("loss", &self.loss, d, &scope)?;
        let metric = self.build_metric(d, &scope)?;
        let drift = self.build_drift(d, &scope)?;
        if let Some(ts) = &self.task_switching {
            loss = self.expected_task_loss(ts, loss.as_ref(), metric.as_ref(), d)?;
        }
        if let Some(obs) = &self.observation {
            self.check_observation(obs, loss.as_ref(), metric.as_ref(), d)?;
        }
        let lagrangian = Lagrangian::from_arc(loss)
            .with_metric_arc(metric)
            .with_drift_arc(drift)
            .with_eta(self.eta)
            .with_k(self.k)
            .with_gamma(self.gamma);
        let horizon = match self.horizon {
            HorizonSpec::Finite(t) => Horizon::Finite(t),
            HorizonSpec::Infinite => Horizon::Infinite,
        };
        let end = match (&self.end, horizon) {
            (None, Horizon::Finite(_)) | (Some(EndSpec::Free), _) => End::Free {
                terminal_cost: None,
            },
            (None, Horizon::Infinite) => End::Equilibrium { guess: None },
            (Some(EndSpec::Fixed(v)), _) => End::Fixed(DVector::from_vec(v.clone())),
            (Some(EndSpec::Cost(l)), _) => End::Free {
                terminal_cost: Some(build_loss("end.cost", l, d, &scope)?),
            },
            (Some(EndSpec::Equilibrium(g)), _) => End::Equilibrium {
                guess: g.clone().map(DVector::from_vec),
            },
        };
        let problem = Problem::new(
            lagrangian,
            DVector::from_vec(self.theta0.clone()),
            horizon,
            end,
        )?;
        Ok(problem.with_name(self.name.clone().unwrap_or_default()))
    }

    /// The expected loss of docs/theory.md §6 for a task-switching spec, after checking what the
    /// model needs: a quadratic loss (its minimum is the current task's), a constant metric,
    /// no drift, and γ > 0 on an infinite horizon.
    fn expected_task_loss(
        &self,
        ts: &TaskSwitchingSpec,
        loss: &dyn crate::Landscape,
        metric: &dyn Metric,
        d: usize,
    ) -> Result<Arc<dyn crate::Landscape>> {
        let field = "task_switching";
        let Some(q) = loss.as_quadratic() else {
            return Err(ProblemError::invalid(
                field,
                "needs a quadratic loss ({\"quadratic\": ...}); its minimum is the current task's",
            ));
        };
        if self.drift.is_some() {
            return Err(ProblemError::invalid(
                field,
                "is derived for no drift; remove the drift",
            ));
        }
        if !metric.is_constant() {
            return Err(ProblemError::invalid(
                field,
                "needs a constant metric (the expected problem's closed form and the reduction \
                 assume one)",
            ));
        }
        if matches!(self.horizon, HorizonSpec::Infinite) && self.gamma == 0.0 {
            return Err(ProblemError::invalid(
                field,
                "with γ = 0 on an infinite horizon the expected cost is infinite (the variance \
                 of future minima costs ½k·tr(H S0) per unit time forever): give γ > 0",
            ));
        }
        if ts.prior_mean.len() != d {
            return Err(ProblemError::dimension(
                "task_switching.prior_mean",
                format!("{d} entries (the length of theta0)"),
                format!("{} entries", ts.prior_mean.len()),
            ));
        }
        let cov = square("task_switching.prior_cov", &ts.prior_cov, d)?;
        let task = crate::task::TaskSwitching::new(
            ts.hazard,
            DVector::from_vec(ts.prior_mean.clone()),
            cov,
        )?;
        Ok(Arc::new(crate::task::ExpectedTaskLoss::new(
            q.hessian, q.minimum, task,
        )?))
    }

    /// What the partially observed model needs: a quadratic loss, a constant invertible metric,
    /// no drift, no task switching (not combined yet), `R` SPD, `S0` PSD, and γ > 0 on an
    /// infinite horizon.
    fn check_observation(
        &self,
        obs: &ObservationSpec,
        loss: &dyn crate::Landscape,
        metric: &dyn Metric,
        d: usize,
    ) -> Result<()> {
        let field = "observation";
        if loss.as_quadratic().is_none() {
            return Err(ProblemError::invalid(
                field,
                "needs a quadratic loss; its minimum is the prior mean of the unknown minimum",
            ));
        }
        if self.task_switching.is_some() {
            return Err(ProblemError::invalid(
                field,
                "and task_switching together are not supported yet",
            ));
        }
        if self.drift.is_some() || !metric.is_constant() || !metric.is_invertible() {
            return Err(ProblemError::invalid(
                field,
                "needs a constant, invertible metric and no drift",
            ));
        }
        if matches!(self.horizon, HorizonSpec::Infinite) && self.gamma == 0.0 {
            return Err(ProblemError::invalid(
                field,
                "with γ = 0 on an infinite horizon the expected cost is infinite (the filter's \
                 remaining uncertainty costs ~1/t for ever): give γ > 0",
            ));
        }
        let r = square("observation.gradient_noise", &obs.gradient_noise, d)?;
        crate::linalg::check_symmetric("observation.gradient_noise", &r)?;
        crate::linalg::check_spd("observation.gradient_noise", &r)?;
        let s0 = square("observation.minimum_cov", &obs.minimum_cov, d)?;
        crate::linalg::check_symmetric("observation.minimum_cov", &s0)?;
        crate::linalg::check_psd("observation.minimum_cov", &s0)?;
        Ok(())
    }

    fn scope(&self, d: usize) -> Result<Scope> {
        let vars = match &self.loss.vars {
            Some(v) => {
                if v.len() != d {
                    // The loss names its variables: a θ0 of another length is what is wrong.
                    return Err(ProblemError::dimension(
                        "theta0",
                        format!(
                            "{} entries, one per variable of the loss ({})",
                            v.len(),
                            v.join(", ")
                        ),
                        format!("{d} entries"),
                    ));
                }
                v.clone()
            }
            None => Scope::default_vars(d),
        };
        let mut params = self.params.clone();
        for (name, value) in self.loss.params.iter().flatten() {
            if params.insert(name.clone(), *value).is_some() {
                return Err(ProblemError::invalid(
                    format!("loss.params.{name}"),
                    format!("`{name}` is also defined in the top-level params"),
                ));
            }
        }
        Scope::new(vars, params)
    }

    fn build_metric(&self, d: usize, scope: &Scope) -> Result<Arc<dyn Metric>> {
        Ok(match &self.metric {
            MetricSpec::Identity => Arc::new(Identity::new(d)),
            MetricSpec::Diag(g) => {
                check_len("metric.diag", g.len(), d)?;
                Arc::new(Diagonal::new(g.clone())?)
            }
            MetricSpec::Matrix(rows) => Arc::new(Constant::from_metric(
                "metric.matrix",
                square("metric.matrix", rows, d)?,
            )?),
            MetricSpec::Mobility(rows) => Arc::new(Constant::from_mobility(
                "metric.mobility",
                square("metric.mobility", rows, d)?,
            )?),
            MetricSpec::Expr(rows) => {
                Arc::new(ExprMetric::parse("metric.expr", rows, scope, &self.theta0)?)
            }
        })
    }

    fn build_drift(&self, d: usize, scope: &Scope) -> Result<Arc<dyn Drift>> {
        let Some(spec) = &self.drift else {
            return Ok(Arc::new(NoDrift::new(d)));
        };
        match (&spec.linear, &spec.offset, &spec.expr) {
            (Some(a), offset, None) => {
                let a = square("drift.linear", a, d)?;
                let b = match offset {
                    Some(b) => {
                        check_len("drift.offset", b.len(), d)?;
                        DVector::from_vec(b.clone())
                    }
                    None => DVector::zeros(d),
                };
                Ok(Arc::new(Affine::new(a, b)?))
            }
            (None, None, Some(e)) => Ok(Arc::new(ExprDrift::parse("drift.expr", e, scope)?)),
            (None, Some(_), None) => Err(ProblemError::invalid(
                "drift.offset",
                "an offset needs \"linear\" (f = linear·θ + offset)",
            )),
            (None, None, None) => Err(ProblemError::invalid(
                "drift",
                "give {\"linear\": [[..]], \"offset\": [..]} or {\"expr\": [..]}, or null for no drift",
            )),
            _ => Err(ProblemError::invalid(
                "drift",
                "give either \"linear\" (with optional \"offset\") or \"expr\", not both",
            )),
        }
    }
}

/// Builds a loss from its spec; `field` is its place in the file (`loss` or `end.cost`).
fn build_loss(field: &str, spec: &LossSpec, d: usize, scope: &Scope) -> Result<Arc<dyn Landscape>> {
    let forms = [
        spec.quadratic.is_some(),
        spec.expr.is_some(),
        spec.double_well.is_some(),
        spec.rosenbrock.is_some(),
    ];
    let given = forms.iter().filter(|&&f| f).count();
    if given != 1 {
        return Err(ProblemError::invalid(
            field,
            format!(
                "give exactly one of \"quadratic\", \"expr\", \"double_well\", \"rosenbrock\" \
                 (got {given})"
            ),
        ));
    }
    if spec.expr.is_none() && (spec.vars.is_some() || spec.params.is_some()) {
        return Err(ProblemError::invalid(
            field,
            "\"vars\" and \"params\" belong to an \"expr\" loss",
        ));
    }
    if let Some(expr) = &spec.expr {
        let scope = if field == "loss" {
            scope.clone()
        } else {
            // A terminal cost shares the coordinates and may add constants of its own.
            if let Some(v) = &spec.vars {
                if v.as_slice() != scope.vars() {
                    return Err(ProblemError::invalid(
                        format!("{field}.vars"),
                        format!("must match the loss's variables {:?}", scope.vars()),
                    ));
                }
            }
            let mut params = scope.params().clone();
            params.extend(spec.params.clone().unwrap_or_default());
            Scope::new(scope.vars().to_vec(), params)?
        };
        return Ok(Arc::new(ExprLoss::parse(
            &format!("{field}.expr"),
            expr,
            &scope,
        )?));
    }
    if let Some(q) = &spec.quadratic {
        let f = format!("{field}.quadratic");
        check_len(&format!("{f}.minimum"), q.minimum.len(), d)?;
        return Ok(Arc::new(match (&q.hessian, &q.curvatures) {
            (Some(h), None) => Quadratic::new(
                square(&format!("{f}.hessian"), h, d)?,
                DVector::from_vec(q.minimum.clone()),
            )
            .map_err(|e| prefix(e, &f))?,
            (None, Some(c)) => {
                check_len(&format!("{f}.curvatures"), c.len(), d)?;
                Quadratic::diagonal(c.clone(), q.minimum.clone()).map_err(|e| prefix(e, &f))?
            }
            _ => {
                return Err(ProblemError::invalid(
                    f,
                    "give exactly one of \"hessian\" and \"curvatures\"",
                ))
            }
        }));
    }
    if let Some(w) = &spec.double_well {
        let well = DoubleWell::new(d, w.a, w.b, w.c, w.d).map_err(|e| prefix(e, field))?;
        return Ok(Arc::new(AutoDiff(well)));
    }
    let r = spec.rosenbrock.as_ref().expect("one form is given");
    let rosen = Rosenbrock::new(d, r.a, r.b).map_err(|e| prefix(e, field))?;
    Ok(Arc::new(AutoDiff(rosen)))
}

/// Puts `parent.` in front of the field an error names.
fn prefix(e: ProblemError, parent: &str) -> ProblemError {
    let join = |f: String| {
        if f.starts_with(parent) {
            f
        } else {
            format!("{parent}.{f}")
        }
    };
    match e {
        ProblemError::Invalid { field, message } => ProblemError::Invalid {
            field: join(field),
            message,
        },
        ProblemError::NotFinite { field, value } => ProblemError::NotFinite {
            field: join(field),
            value,
        },
        ProblemError::NotPositiveDefinite { field, message } => ProblemError::NotPositiveDefinite {
            field: join(field),
            message,
        },
        ProblemError::Dimension {
            field,
            expected,
            got,
        } => ProblemError::Dimension {
            field: join(field),
            expected,
            got,
        },
        other => other,
    }
}

fn check_len(field: &str, got: usize, d: usize) -> Result<()> {
    if got == d {
        Ok(())
    } else {
        Err(ProblemError::dimension(
            field,
            format!("{d} entries (the length of theta0)"),
            format!("{got} entries"),
        ))
    }
}

/// A `D×D` matrix from rows, checking the shape.
fn square(field: &str, rows: &[Vec<f64>], d: usize) -> Result<DMatrix<f64>> {
    if rows.len() != d {
        return Err(ProblemError::dimension(
            field,
            format!("{d} rows (the length of theta0)"),
            format!("{} rows", rows.len()),
        ));
    }
    for (i, row) in rows.iter().enumerate() {
        if row.len() != d {
            return Err(ProblemError::dimension(
                format!("{field}[{i}]"),
                format!("{d} entries"),
                format!("{} entries", row.len()),
            ));
        }
        check_finite(&format!("{field}[{i}]"), row)?;
    }
    Ok(DMatrix::from_fn(d, d, |i, j| rows[i][j]))
}

fn json_error(e: serde_json::Error) -> ProblemError {
    let text = e.to_string();
    // serde_json appends " at line L column C"; the variant carries those separately.
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    ProblemError::Json {
        line: e.line(),
        column: e.column(),
        message,
    }
}

/// Reads, validates and builds the problem in a spec file.
pub fn load_problem(path: impl AsRef<Path>) -> Result<Problem> {
    Spec::from_file(path)?.to_problem()
}
