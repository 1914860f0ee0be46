//! Numeric fields of a [`Spec`] named by a path, to read and set one (sweeps, sensitivities,
//! fits).
//!
//! A path is dotted field names with `[i]` indices, as the spec's JSON nests them:
//! `gamma`, `eta`, `k`, `horizon`, `theta0[1]`, `metric.diag[0]`, `drift.linear[0][1]`,
//! `drift.offset[1]`, `loss.quadratic.minimum[0]`, `loss.double_well.c`, `end.fixed[0]`,
//! `end.cost.params.q`. Short forms: `params.NAME` is the loss's parameter `NAME` when the
//! loss defines it, else the spec's shared `params.NAME` (visible to every expression: metric,
//! drift, terminal cost); `end[i]` is `end.fixed[i]`; `theta0.I` is `theta0[I]`. Entries of
//! symmetric matrices (`metric.matrix`, `metric.mobility`, `loss.quadratic.hessian`) are set in
//! both triangles, so `[i][j]` and `[j][i]` name one parameter.

use serde_json::Value;

use crate::error::{ProblemError, Result};
use crate::spec::Spec;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
}

/// A numeric field of a spec.
///
/// ```
/// use lossnav_problems::{Spec, SpecPath};
/// let spec = Spec::from_json(r#"{"loss": {"expr": "a*x^2", "params": {"a": 2}},
///     "metric": {"diag": [1.0]}, "theta0": [1.0], "horizon": 2}"#).unwrap();
/// let a = SpecPath::parse("params.a", &spec).unwrap();
/// assert_eq!(a.get(&spec).unwrap(), 2.0);
/// let g = SpecPath::parse("metric.diag[0]", &spec).unwrap();
/// let changed = g.set(&spec, 3.0).unwrap();
/// assert_eq!(g.get(&changed).unwrap(), 3.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SpecPath {
    name: String,
    steps: Vec<Step>,
    /// The mirrored entry of a symmetric matrix, set together with this one.
    mirror: Option<Vec<Step>>,
}

fn invalid(name: &str, why: impl Into<String>) -> ProblemError {
    ProblemError::Invalid {
        field: name.to_string(),
        message: format!("expected {}", why.into()),
    }
}

fn parse_steps(name: &str) -> Result<Vec<Step>> {
    let mut steps = Vec::new();
    for part in name.split('.') {
        let (field, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if field.is_empty() && steps.is_empty() {
            return Err(invalid(name, "a field name before the first `[`"));
        }
        if !field.is_empty() {
            match field.parse::<usize>() {
                // `theta0.1`: an index written as a field.
                Ok(i) if !steps.is_empty() => steps.push(Step::Index(i)),
                _ => steps.push(Step::Field(field.to_string())),
            }
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| invalid(name, "a `]` after each `[`"))?;
            let i: usize = rest[1..close]
                .parse()
                .map_err(|_| invalid(name, "a non-negative integer inside `[…]`"))?;
            steps.push(Step::Index(i));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(invalid(name, "`.` between a `]` and the next field"));
            }
        }
    }
    Ok(steps)
}

fn walk<'a>(v: &'a Value, steps: &[Step]) -> Option<&'a Value> {
    steps.iter().try_fold(v, |v, s| match s {
        Step::Field(f) => v.get(f),
        Step::Index(i) => v.get(i),
    })
}

fn walk_mut<'a>(v: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(v, |v, s| match s {
        Step::Field(f) => v.get_mut(f),
        Step::Index(i) => v.get_mut(i),
    })
}

fn field(s: &str) -> Step {
    Step::Field(s.to_string())
}

impl SpecPath {
    /// The field `name` of `spec`, which must exist and be a number.
    pub fn parse(name: &str, spec: &Spec) -> Result<Self> {
        let doc = serde_json::to_value(spec).map_err(|e| invalid(name, e.to_string()))?;
        let mut steps = parse_steps(name)?;
        // Short forms.
        match steps.as_slice() {
            [Step::Field(p), Step::Field(n)] if p == "params" => {
                let in_loss = [field("loss"), field("params"), field(n)];
                if walk(&doc, &in_loss).is_some() {
                    steps = in_loss.to_vec();
                }
            }
            [Step::Field(e), Step::Index(i)] if e == "end" => {
                steps = vec![field("end"), field("fixed"), Step::Index(*i)];
            }
            _ => {}
        }
        match walk(&doc, &steps) {
            Some(Value::Number(_)) => {}
            Some(other) => {
                return Err(invalid(
                    name,
                    format!(
                        "a number in the spec; it is {}",
                        match other {
                            Value::Array(_) => "a list (name one entry with [i])",
                            Value::Object(_) => "an object (name one of its fields)",
                            Value::String(_) => "a string",
                            _ => "not a number",
                        }
                    ),
                ))
            }
            None => {
                return Err(invalid(
                    name,
                    "a numeric field of the spec (e.g. gamma, eta, k, horizon, theta0[0], \
                     params.NAME, metric.diag[0], drift.linear[0][1], end[0]); the spec has \
                     no such field",
                ))
            }
        }
        let symmetric = |s: &[Step]| {
            matches!(s, [Step::Field(a), Step::Field(b), Step::Index(_), Step::Index(_)]
                if (a == "metric" && (b == "matrix" || b == "mobility")))
                || matches!(s, [Step::Field(a), Step::Field(b), Step::Field(c), Step::Index(_), Step::Index(_)]
                if a == "loss" && b == "quadratic" && c == "hessian")
        };
        let mirror = if symmetric(&steps) {
            let n = steps.len();
            let mut m = steps.clone();
            m.swap(n - 2, n - 1);
            (m != steps).then_some(m)
        } else {
            None
        };
        Ok(Self {
            name: name.to_string(),
            steps,
            mirror,
        })
    }

    /// The name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its value in `spec`.
    pub fn get(&self, spec: &Spec) -> Result<f64> {
        let doc = serde_json::to_value(spec).map_err(|e| invalid(&self.name, e.to_string()))?;
        walk(&doc, &self.steps)
            .and_then(Value::as_f64)
            .ok_or_else(|| invalid(&self.name, "a numeric field of the spec"))
    }

    /// `spec` with this field set to `v` (the spec is not validated here: building its
    /// problem does that).
    pub fn set(&self, spec: &Spec, v: f64) -> Result<Spec> {
        let number =
            serde_json::Number::from_f64(v).ok_or_else(|| invalid(&self.name, "a finite value"))?;
        let mut doc = serde_json::to_value(spec).map_err(|e| invalid(&self.name, e.to_string()))?;
        for steps in std::iter::once(&self.steps).chain(&self.mirror) {
            *walk_mut(&mut doc, steps)
                .ok_or_else(|| invalid(&self.name, "a numeric field of the spec"))? =
                Value::Number(number.clone());
        }
        serde_json::from_value(doc).map_err(|e| invalid(&self.name, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::from_json(
            r#"{"loss": {"quadratic": {"hessian": [[2, 0.5], [0.5, 1]], "minimum": [0, 0]}},
                "metric": {"matrix": [[1, 0.1], [0.1, 2]]},
                "drift": {"linear": [[0, -1], [1, 0]]}, "params": {"q": 3},
                "theta0": [1, 2], "horizon": 4, "end": {"fixed": [0.5, 0.5]}}"#,
        )
        .unwrap()
    }

    #[test]
    fn reads_and_sets_fields() {
        let s = spec();
        for (name, value) in [
            ("gamma", 0.0),
            ("horizon", 4.0),
            ("theta0[1]", 2.0),
            ("theta0.1", 2.0),
            ("end[0]", 0.5),
            ("params.q", 3.0),
            ("drift.linear[0][1]", -1.0),
            ("loss.quadratic.hessian[0][1]", 0.5),
        ] {
            let p = SpecPath::parse(name, &s).unwrap();
            assert_eq!(p.get(&s).unwrap(), value, "{name}");
            let t = p.set(&s, 7.25).unwrap();
            assert_eq!(p.get(&t).unwrap(), 7.25, "{name}");
        }
        // Symmetric entries move together; a drift entry alone.
        let m = SpecPath::parse("metric.matrix[1][0]", &s).unwrap();
        let t = m.set(&s, 0.3).unwrap();
        assert_eq!(
            t.metric,
            crate::spec::MetricSpec::Matrix(vec![vec![1.0, 0.3], vec![0.3, 2.0]])
        );
        let d = SpecPath::parse("drift.linear[1][0]", &s).unwrap();
        let t = d.set(&s, 5.0).unwrap();
        assert_eq!(
            t.drift.unwrap().linear.unwrap(),
            vec![vec![0.0, -1.0], vec![5.0, 0.0]]
        );
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        let s = spec();
        for name in [
            "theta0",
            "metric",
            "params.nope",
            "theta0[5]",
            "loss.quadratic.minimum[",
            "[0]",
            "gamma[x]",
        ] {
            assert!(SpecPath::parse(name, &s).is_err(), "{name}");
        }
    }
}
