//! Scalar functions of `θ` (and `t`) written as text, with exact symbolic derivatives.
//!
//! JSON specs state losses, metrics and drifts as expressions. Each is parsed once by exmex,
//! differentiated symbolically once (first and second partials with respect to every
//! parameter), and then evaluated as flat expressions: exact derivatives with no finite
//! differences and no parsing in a solver's inner loop.

use std::collections::BTreeMap;

use exmex::{Differentiate, Express, FlatEx};
use nalgebra::DMatrix;

use crate::error::{ProblemError, Result};

/// Names of the expression language's constants: they cannot be variables or parameters.
const CONSTANTS: &[&str] = &["e", "E", "PI", "π", "TAU", "τ"];
/// Names of the expression language's functions.
const FUNCTIONS: &[&str] = &[
    "abs", "signum", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
    "acosh", "atanh", "floor", "round", "ceil", "trunc", "fract", "exp", "sqrt", "cbrt", "ln",
    "log2", "log10", "log", "atan2", "min", "max",
];
/// The name of time in expressions.
pub const TIME: &str = "t";

/// The names an expression may use: the parameters' coordinates, named constants, and `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    vars: Vec<String>,
    params: BTreeMap<String, f64>,
}

impl Scope {
    /// Checks the names: distinct, well formed, not `t`, not a constant or function name.
    pub fn new(vars: Vec<String>, params: BTreeMap<String, f64>) -> Result<Self> {
        for (i, v) in vars.iter().enumerate() {
            check_name(&format!("vars[{i}]"), v)?;
            if vars[..i].contains(v) {
                return Err(ProblemError::invalid(
                    format!("vars[{i}]"),
                    format!("variable `{v}` is listed twice"),
                ));
            }
            if params.contains_key(v) {
                return Err(ProblemError::invalid(
                    format!("params.{v}"),
                    format!("`{v}` is both a variable and a parameter"),
                ));
            }
        }
        for (name, value) in &params {
            check_name(&format!("params.{name}"), name)?;
            if !value.is_finite() {
                return Err(ProblemError::NotFinite {
                    field: format!("params.{name}"),
                    value: *value,
                });
            }
        }
        Ok(Self { vars, params })
    }

    /// Default coordinate names `x1, …, xD` when a spec gives none.
    pub fn default_vars(dim: usize) -> Vec<String> {
        (1..=dim).map(|i| format!("x{i}")).collect()
    }

    /// The coordinate names, in the order of `θ`.
    pub fn vars(&self) -> &[String] {
        &self.vars
    }

    /// The named constants.
    pub fn params(&self) -> &BTreeMap<String, f64> {
        &self.params
    }

    fn known(&self) -> String {
        let mut names: Vec<&str> = self.vars.iter().map(String::as_str).collect();
        names.extend(self.params.keys().map(String::as_str));
        names.push(TIME);
        names.join(", ")
    }
}

fn check_name(field: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_');
    let reason = if !well_formed {
        Some("must start with a letter or `_` and contain only letters, digits and `_`")
    } else if name == TIME {
        Some("`t` is reserved for time")
    } else if CONSTANTS.contains(&name) {
        Some("is a constant of the expression language")
    } else if FUNCTIONS.contains(&name) {
        Some("is a function of the expression language")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(r) => Err(ProblemError::invalid(field, format!("name `{name}` {r}"))),
    }
}

/// Where each of an exmex expression's variables (alphabetical order) takes its value from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Theta(usize),
    Param(f64),
    Time,
}

/// A parsed expression with its variable bindings resolved.
#[derive(Debug, Clone)]
struct Compiled {
    ex: FlatEx<f64>,
    slots: Vec<Slot>,
}

/// Slots beyond this many spill to the heap on evaluation.
const STACK_SLOTS: usize = 16;

impl Compiled {
    fn new(ex: FlatEx<f64>, scope: &Scope) -> Self {
        let slots = ex
            .var_names()
            .iter()
            .map(|name| {
                if name == TIME {
                    Slot::Time
                } else if let Some(i) = scope.vars.iter().position(|v| v == name) {
                    Slot::Theta(i)
                } else {
                    // Names were checked against the scope when the text was parsed.
                    Slot::Param(scope.params.get(name).copied().unwrap_or(f64::NAN))
                }
            })
            .collect();
        Self { ex, slots }
    }

    fn eval(&self, theta: &[f64], t: f64) -> f64 {
        let value = |s: &Slot| match *s {
            Slot::Theta(i) => theta[i],
            Slot::Param(v) => v,
            Slot::Time => t,
        };
        let n = self.slots.len();
        let result = if n <= STACK_SLOTS {
            let mut buf = [0.0; STACK_SLOTS];
            for (b, s) in buf.iter_mut().zip(&self.slots) {
                *b = value(s);
            }
            self.ex.eval(&buf[..n])
        } else {
            let buf: Vec<f64> = self.slots.iter().map(value).collect();
            self.ex.eval(&buf)
        };
        // exmex only fails on a wrong argument count, which the slots rule out.
        result.unwrap_or(f64::NAN)
    }

    /// Index of `name` among the expression's variables, if it occurs.
    fn var_index(&self, name: &str) -> Option<usize> {
        self.ex.var_names().iter().position(|v| v == name)
    }
}

/// A scalar function of `θ` and `t` given as text, with exact gradient and Hessian.
///
/// ```
/// use std::collections::BTreeMap;
/// use lossnav_problems::expr::{ExprFunction, Scope};
/// let scope = Scope::new(vec!["x".into(), "y".into()], BTreeMap::from([("a".into(), 2.0)])).unwrap();
/// let f = ExprFunction::parse("loss", "a*x^2*y + sin(t)", &scope).unwrap();
/// let mut g = [0.0; 2];
/// f.gradient(&[1.0, 3.0], 0.0, &mut g);
/// assert_eq!(g, [12.0, 2.0]);
/// ```
#[derive(Debug, Clone)]
pub struct ExprFunction {
    text: String,
    value: Compiled,
    /// `None` where the partial derivative is identically zero.
    grad: Vec<Option<Compiled>>,
    /// Row-major `D×D`; only `i <= j` is filled.
    hess: Vec<Option<Compiled>>,
    uses_time: bool,
}

impl ExprFunction {
    /// Parses and differentiates `text`; `field` names it in errors.
    pub fn parse(field: &str, text: &str, scope: &Scope) -> Result<Self> {
        let expr_err = |message: String| ProblemError::Expression {
            field: field.to_string(),
            expression: text.to_string(),
            message,
        };
        let ex = exmex::parse::<f64>(text).map_err(|e| expr_err(clean_message(&e.to_string())))?;
        for name in ex.var_names() {
            let known =
                name == TIME || scope.vars.contains(name) || scope.params.contains_key(name);
            if !known {
                return Err(ProblemError::UnknownVariable {
                    field: field.to_string(),
                    expression: text.to_string(),
                    name: name.clone(),
                    known: scope.known(),
                });
            }
        }
        let d = scope.vars.len();
        let value = Compiled::new(ex, scope);
        let uses_time = value.var_index(TIME).is_some();
        let differentiate = |c: &Compiled, var: &str, what: &str| -> Result<Option<Compiled>> {
            match c.var_index(var) {
                None => Ok(None),
                Some(idx) => {
                    let de = c.ex.clone().partial(idx).map_err(|e| {
                        expr_err(format!(
                            "{what} with respect to `{var}` is not available: {}",
                            clean_message(&e.to_string())
                        ))
                    })?;
                    Ok(Some(Compiled::new(de, scope)))
                }
            }
        };
        let mut grad = Vec::with_capacity(d);
        for var in &scope.vars {
            grad.push(differentiate(&value, var, "the derivative")?);
        }
        let mut hess = vec![None; d * d];
        for i in 0..d {
            if let Some(gi) = &grad[i] {
                for j in i..d {
                    hess[i * d + j] = differentiate(gi, &scope.vars[j], "the second derivative")?;
                }
            }
        }
        Ok(Self {
            text: text.to_string(),
            value,
            grad,
            hess,
            uses_time,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of coordinates.
    pub fn dim(&self) -> usize {
        self.grad.len()
    }

    /// Whether the expression uses `t`.
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }

    /// Whether the expression uses any coordinate of `θ`.
    pub fn is_constant_in_theta(&self) -> bool {
        self.grad.iter().all(Option::is_none)
    }

    /// Value at `(θ, t)`.
    pub fn value(&self, theta: &[f64], t: f64) -> f64 {
        self.value.eval(theta, t)
    }

    /// Writes the gradient with respect to `θ` into `out`.
    pub fn gradient(&self, theta: &[f64], t: f64, out: &mut [f64]) {
        for (o, g) in out.iter_mut().zip(&self.grad) {
            *o = g.as_ref().map_or(0.0, |g| g.eval(theta, t));
        }
    }

    /// Writes the (symmetric) Hessian with respect to `θ` into `out`.
    pub fn hessian(&self, theta: &[f64], t: f64, out: &mut DMatrix<f64>) {
        let d = self.dim();
        for i in 0..d {
            for j in i..d {
                let h = self.hess[i * d + j]
                    .as_ref()
                    .map_or(0.0, |h| h.eval(theta, t));
                out[(i, j)] = h;
                out[(j, i)] = h;
            }
        }
    }
}

/// exmex's messages can embed `Debug` dumps of its operator tables; keep the sentence only.
fn clean_message(msg: &str) -> String {
    let cut = msg.find(", Operator {").or_else(|| msg.find(" Operator {"));
    let sentence = match cut {
        Some(i) => &msg[..i],
        None => msg,
    };
    sentence.trim().trim_end_matches(',').to_string()
}
