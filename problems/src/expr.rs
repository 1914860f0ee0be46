//! Scalar functions of `θ` (and `t`) written as text, with exact symbolic derivatives.
//!
//! JSON specs state losses, metrics and drifts as expressions. Each is parsed once by exmex,
//! differentiated symbolically once (first and second partials with respect to every
//! parameter), and compiled into tapes (`problems/src/tape.rs`) for the value, the gradient
//! and the Hessian: exact derivatives with no finite differences, no parsing and no
//! interpretation overhead in a solver's inner loop.

use std::collections::BTreeMap;

use exmex::{Differentiate, Express, FlatEx};

use crate::landscape::{check_gradients, check_values, Points};
use crate::tape::{Input, Tape, Tracer};
use nalgebra::DMatrix;

use crate::error::{ProblemError, Result};

/// Names of the expression language's constants: they cannot be variables or parameters.
const CONSTANTS: &[&str] = &["e", "E", "PI", "π", "TAU", "τ"];
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
    } else if crate::notation::is_function(name) {
        Some("is a function of the expression language")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(r) => Err(ProblemError::invalid(field, format!("name `{name}` {r}"))),
    }
}

/// A parsed expression over tracers, ready to be recorded into a tape.
type Traced = FlatEx<Tracer>;

/// Records `exprs` (each over its own variables, named in exmex's order) into one tape with
/// one output per expression; `None` stands for an identically zero expression.
fn compile(exprs: &[Option<&Traced>], scope: &Scope) -> Tape {
    Tape::record(|| {
        exprs
            .iter()
            .map(|ex| match ex {
                None => Tracer::Const(0.0),
                Some(ex) => {
                    let vars: Vec<Tracer> = ex
                        .var_names()
                        .iter()
                        .map(|name| Tape::input(input(name, scope)))
                        .collect();
                    // exmex only fails on a wrong argument count, which `vars` rules out.
                    ex.eval(&vars).unwrap_or(Tracer::Const(f64::NAN))
                }
            })
            .collect()
    })
}

/// What an expression variable stands for. Names were checked against the scope on parsing.
fn input(name: &str, scope: &Scope) -> Input {
    if name == TIME {
        Input::Time
    } else if let Some(i) = scope.vars.iter().position(|v| v == name) {
        Input::Theta(i)
    } else {
        Input::Constant(scope.params.get(name).copied().unwrap_or(f64::NAN))
    }
}

fn var_index(ex: &Traced, name: &str) -> Option<usize> {
    ex.var_names().iter().position(|v| v == name)
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
    /// One output: the value.
    value: Tape,
    /// `D` outputs: the gradient.
    grad: Tape,
    /// `D(D+1)/2` outputs: the Hessian's upper triangle, row by row.
    hess: Tape,
    uses_time: bool,
    constant_in_theta: bool,
}

impl ExprFunction {
    /// Parses and differentiates `text`; `field` names it in errors.
    pub fn parse(field: &str, text: &str, scope: &Scope) -> Result<Self> {
        // exmex differentiates by recursion over its expression tree, whose depth grows with
        // the number of terms: a sum of 100 squares overflows an 8 MiB stack. The work runs on
        // a thread with a stack sized for thousands of terms (address space only: pages that
        // are never touched cost nothing).
        const STACK_BYTES: usize = 1 << 30;
        std::thread::scope(|s| {
            let worker = std::thread::Builder::new()
                .name("expression".into())
                .stack_size(STACK_BYTES)
                .spawn_scoped(s, || Self::parse_on_this_thread(field, text, scope));
            match worker {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                // Parsing here instead could overflow a small stack (a worker thread's).
                Err(e) => Err(ProblemError::Expression {
                    field: field.to_string(),
                    expression: text.to_string(),
                    message: format!("cannot start the thread that differentiates it: {e}"),
                }),
            }
        })
    }

    fn parse_on_this_thread(field: &str, text: &str, scope: &Scope) -> Result<Self> {
        let expr_err = |message: String| ProblemError::Expression {
            field: field.to_string(),
            expression: text.to_string(),
            message,
        };
        let normal = crate::notation::normalise(text).map_err(expr_err)?;
        let ex =
            exmex::parse::<Tracer>(&normal).map_err(|e| expr_err(clean_message(&e.to_string())))?;
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
        let uses_time = var_index(&ex, TIME).is_some();
        let differentiate = |ex: &Traced, var: &str, what: &str| -> Result<Option<Traced>> {
            match var_index(ex, var) {
                None => Ok(None),
                Some(idx) => ex.clone().partial(idx).map(Some).map_err(|e| {
                    expr_err(format!(
                        "{what} with respect to `{var}` is not available: {}",
                        clean_message(&e.to_string())
                    ))
                }),
            }
        };
        let mut grad = Vec::with_capacity(d);
        for var in &scope.vars {
            grad.push(differentiate(&ex, var, "the derivative")?);
        }
        let mut hess = Vec::with_capacity(d * (d + 1) / 2);
        for (i, gi) in grad.iter().enumerate() {
            for var in &scope.vars[i..] {
                hess.push(match gi {
                    Some(gi) => differentiate(gi, var, "the second derivative")?,
                    None => None,
                });
            }
        }
        let constant_in_theta = grad.iter().all(Option::is_none);
        Ok(Self {
            text: text.to_string(),
            value: compile(&[Some(&ex)], scope),
            grad: compile(&grad.iter().map(Option::as_ref).collect::<Vec<_>>(), scope),
            // Compiled from the upper triangle, evaluated as the full column-major matrix (each
            // off-diagonal value written twice), so evaluation fills a `DMatrix` directly.
            hess: compile(&hess.iter().map(Option::as_ref).collect::<Vec<_>>(), scope)
                .select_outputs(&full_from_upper(d)),
            uses_time,
            constant_in_theta,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Number of coordinates.
    pub fn dim(&self) -> usize {
        self.grad.outputs()
    }

    /// Whether the expression uses `t`.
    pub fn uses_time(&self) -> bool {
        self.uses_time
    }

    /// Whether the expression uses any coordinate of `θ`.
    pub fn is_constant_in_theta(&self) -> bool {
        self.constant_in_theta
    }

    /// Value at `(θ, t)`.
    pub fn value(&self, theta: &[f64], t: f64) -> f64 {
        self.value.eval_one(theta, t)
    }

    /// Writes the gradient with respect to `θ` into `out`.
    pub fn gradient(&self, theta: &[f64], t: f64, out: &mut [f64]) {
        self.grad.eval(theta, t, &mut out[..self.dim()]);
    }

    /// Values at several points into `out` (one per point), in one pass over the tape; equal
    /// to [`ExprFunction::value`] at each point, bit for bit.
    ///
    /// # Panics
    /// If `points.dim() != D` or `out.len() != points.len()`.
    pub fn values(&self, points: Points<'_>, out: &mut [f64]) {
        check_values(self.dim(), &points, out);
        self.value.eval_batch(points, out, 1);
    }

    /// Gradients at several points, point `j`'s into `out[j·stride ..][..D]`, in one pass over
    /// the tape; equal to [`ExprFunction::gradient`] at each point, bit for bit.
    ///
    /// # Panics
    /// If `points.dim() != D`, `stride < D` or `out` is too short for the last point.
    pub fn gradients(&self, points: Points<'_>, out: &mut [f64], stride: usize) {
        check_gradients(self.dim(), &points, out, stride);
        self.grad.eval_batch(points, out, stride);
    }

    /// Writes the (symmetric) Hessian with respect to `θ` into `out` (`D×D`).
    pub fn hessian(&self, theta: &[f64], t: f64, out: &mut DMatrix<f64>) {
        self.hess.eval(theta, t, out.as_mut_slice());
    }
}

/// For each entry of a `d×d` matrix in column-major order, its index in the upper triangle
/// listed row by row.
fn full_from_upper(d: usize) -> Vec<usize> {
    let upper = |i: usize, j: usize| i * d - i * (i + 1) / 2 + j;
    (0..d)
        .flat_map(|j| (0..d).map(move |i| upper(i.min(j), i.max(j))))
        .collect()
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
