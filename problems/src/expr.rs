//! Scalar functions of `θ` (and `t`) written as text, with exact derivatives.
//!
//! JSON specs state losses, metrics and drifts as expressions. Each is parsed once
//! (`problems/src/notation.rs`), recorded as a straight-line program, and differentiated on that
//! program by reverse accumulation (`problems/src/tape.rs`), twice for the Hessian: three
//! tapes (value, gradient, Hessian) with shared subexpressions computed once, exact derivatives,
//! and no parsing or interpretation overhead in a solver's inner loop. The work of building the
//! derivatives is a small multiple of the expression's size per gradient, and proportional to
//! the dependency cones of the gradient's entries for the Hessian: a 1000-variable chain
//! quadratic builds in milliseconds (a symbolic partial derivative per entry took minutes).

use std::collections::BTreeMap;

use crate::landscape::{check_gradients, check_hessians, check_values, pointwise_hessians, Points};
use crate::notation::{self, Node};
use crate::tape::{self, Input, Tape, Tracer};
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
    /// Position of each variable in `vars` (lookups are per name occurrence: a linear search
    /// made a 20 000-variable expression quadratic).
    index: std::collections::HashMap<String, usize>,
}

impl Scope {
    /// Checks the names: distinct, well formed, not `t`, not a constant or function name.
    pub fn new(vars: Vec<String>, params: BTreeMap<String, f64>) -> Result<Self> {
        let mut index = std::collections::HashMap::with_capacity(vars.len());
        for (i, v) in vars.iter().enumerate() {
            check_name(&format!("vars[{i}]"), v)?;
            if index.insert(v.clone(), i).is_some() {
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
        Ok(Self {
            vars,
            params,
            index,
        })
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

/// What a name of an expression stands for: the name of a coordinate, of time, a parameter or a
/// named constant (checked before tracing).
fn resolve(name: &str, scope: &Scope) -> Tracer {
    if name == TIME {
        Tape::input(Input::Time)
    } else if let Some(&i) = scope.index.get(name) {
        Tape::input(Input::Theta(i))
    } else if let Some(c) = constant(name) {
        Tracer::Const(c)
    } else {
        Tracer::Const(scope.params.get(name).copied().unwrap_or(f64::NAN))
    }
}

/// The value of a named constant.
fn constant(name: &str) -> Option<f64> {
    match name {
        "e" | "E" => Some(std::f64::consts::E),
        "PI" | "π" => Some(std::f64::consts::PI),
        "TAU" | "τ" => Some(std::f64::consts::TAU),
        _ => None,
    }
}

/// The most instructions the dense Hessian of one expression may record (about 100 MB of
/// tape): beyond, no dense tape is kept and the Hessian is assembled from `D` Hessian–vector
/// products instead (`O(D)` evaluations of a tape a small multiple of the gradient's).
const MAX_HESSIAN_INSTRUCTIONS: usize = 4_000_000;

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
    /// `D²` outputs: the Hessian, column-major (from its upper triangle); `None` where that
    /// tape would exceed [`MAX_HESSIAN_INSTRUCTIONS`].
    hess: Option<Tape>,
    /// `D` outputs: the Hessian–vector product `∇²f v`, with `v` as inputs `D..2D` (reverse
    /// over reverse: the gradient of `∇f · v`).
    hvp: Tape,
    uses_time: bool,
    constant_in_theta: bool,
}

impl ExprFunction {
    /// Parses and differentiates `text`; `field` names it in errors.
    pub fn parse(field: &str, text: &str, scope: &Scope) -> Result<Self> {
        // The parser's tree of a long sum is as deep as it has terms, and tracing it (and
        // dropping it) recurses that deep: 100 000 terms would overflow an 8 MiB stack. The work runs on
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

    /// The value of `text` when it uses no coordinate and not `t` (numbers, named constants,
    /// the scope's parameters), without differentiating anything; `None` otherwise, or when it
    /// does not parse (then [`ExprFunction::parse`] says why).
    ///
    /// ```
    /// use lossnav_problems::expr::{ExprFunction, Scope};
    /// let scope = Scope::new(vec!["x".into()], [("a".to_string(), 2.0)].into()).unwrap();
    /// assert_eq!(ExprFunction::constant_value("3*a + 1", &scope), Some(7.0));
    /// assert_eq!(ExprFunction::constant_value("a*x", &scope), None);
    /// ```
    pub fn constant_value(text: &str, scope: &Scope) -> Option<f64> {
        // Short texts only: a constant entry is a number or a small formula, and a long text
        // goes to `parse`, whose large stack handles any depth.
        if text.len() > 256 {
            return None;
        }
        let ast = notation::parse(text).ok()?;
        let mut names = Vec::new();
        notation::names(&ast, &mut names);
        let known = |n: &String| scope.params.contains_key(n.as_str()) || constant(n).is_some();
        if !names.iter().all(known) {
            return None;
        }
        // Outside a recording every leaf is a constant, and operations on constants fold.
        match notation::trace(&ast, &|name| resolve(name, scope)) {
            Tracer::Const(c) => Some(c),
            Tracer::Node(_) => None,
        }
    }

    /// Whether the expressions `a` and `b` (both valid in `scope`) are the same function after
    /// the tape's canonicalisation: constants and parameters folded, identities removed,
    /// operands of `+`, `·`, `min`, `max` ordered, equal subexpressions shared. `x*y` and
    /// `y*x` are the same; `(x+y)+z` and `x+(y+z)` are not (no reassociation, which would
    /// change rounding). A `false` is not a proof that the functions differ.
    ///
    /// ```
    /// use lossnav_problems::expr::{ExprFunction, Scope};
    /// let scope = Scope::new(vec!["x".into(), "y".into()], Default::default()).unwrap();
    /// assert!(ExprFunction::same_function("2*x*y + 1", "1 + 2*x*y", &scope));
    /// assert!(!ExprFunction::same_function("0.5*x", "0", &scope));
    /// ```
    pub fn same_function(a: &str, b: &str, scope: &Scope) -> bool {
        if a == b {
            return true;
        }
        // Deep trees need the parser's large stack (see `parse`).
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("expression".into())
                .stack_size(1 << 30)
                .spawn_scoped(s, || {
                    let (Ok(x), Ok(y)) = (notation::parse(a), notation::parse(b)) else {
                        return false;
                    };
                    let tape = Tape::record(|| {
                        let r = |name: &str| resolve(name, scope);
                        vec![notation::trace(&x, &r), notation::trace(&y, &r)]
                    });
                    tape.same_output(0, 1)
                })
                .ok()
                .and_then(|h| h.join().ok())
                .unwrap_or(false)
        })
    }

    fn parse_on_this_thread(field: &str, text: &str, scope: &Scope) -> Result<Self> {
        let expr_err = |message: String| ProblemError::Expression {
            field: field.to_string(),
            expression: text.to_string(),
            message,
        };
        let ast: Node = notation::parse(text).map_err(expr_err)?;
        let mut names = Vec::new();
        notation::names(&ast, &mut names);
        let unknown: Vec<String> = names
            .iter()
            .filter(|name| {
                !(*name == TIME
                    || scope.index.contains_key(name.as_str())
                    || scope.params.contains_key(*name)
                    || constant(name).is_some())
            })
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ProblemError::UnknownVariable {
                field: field.to_string(),
                expression: text.to_string(),
                names: unknown,
                known: scope.known(),
            });
        }
        let d = scope.vars.len();
        let uses_time = names.iter().any(|n| n == TIME);
        let traced = || notation::trace(&ast, &|name| resolve(name, scope));
        let inputs = || -> Vec<Tracer> { (0..d).map(|i| Tape::input(Input::Theta(i))).collect() };
        let value = Tape::record(|| vec![traced()]);
        let mut constant_in_theta = true;
        let grad = Tape::record(|| {
            let g = tape::gradient(traced(), &inputs());
            constant_in_theta = g.iter().all(|x| *x == Tracer::Const(0.0));
            g
        });
        // The upper triangle, row by row: row i is the gradient of ∂f/∂θᵢ with respect to
        // θᵢ…θ_D (evaluated as the full column-major matrix, each off-diagonal value written
        // twice, so evaluation fills a `DMatrix` directly).
        // Its outputs alone would pass the limit (D ≳ 2800): not recorded at all.
        let mut too_large = d * (d + 1) / 2 > MAX_HESSIAN_INSTRUCTIONS;
        let hess = Tape::record(|| {
            if too_large {
                return Vec::new();
            }
            let x = inputs();
            let g = tape::gradient(traced(), &x);
            let mut upper = Vec::with_capacity(d * (d + 1) / 2);
            for (i, gi) in g.iter().enumerate() {
                if too_large {
                    upper.extend(std::iter::repeat_n(Tracer::Const(f64::NAN), d - i));
                    continue;
                }
                upper.extend(tape::gradient(*gi, &x[i..]));
                too_large = tape::recorded() > MAX_HESSIAN_INSTRUCTIONS;
            }
            upper
        });
        let hvp = Tape::record(|| {
            let x = inputs();
            let v: Vec<Tracer> = (0..d).map(|i| Tape::input(Input::Theta(d + i))).collect();
            let g = tape::gradient(traced(), &x);
            let directional = g
                .iter()
                .zip(&v)
                .fold(Tracer::Const(0.0), |acc, (gi, vi)| acc + *gi * *vi);
            tape::gradient(directional, &x)
        });
        Ok(Self {
            text: text.to_string(),
            value,
            grad,
            hess: (!too_large).then(|| hess.select_outputs(&full_from_upper(d))),
            hvp,
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

    /// Writes the (symmetric) Hessian with respect to `θ` into `out` (`D×D`): from the dense
    /// tape, or, for an expression whose dense tape would be too large, column by column from
    /// [`ExprFunction::hessian_vector`].
    pub fn hessian(&self, theta: &[f64], t: f64, out: &mut DMatrix<f64>) {
        match &self.hess {
            Some(tape) => tape.eval(theta, t, out.as_mut_slice()),
            None => {
                let d = self.dim();
                let mut buf = [theta, &vec![0.0; d]].concat();
                for j in 0..d {
                    buf[d + j] = 1.0;
                    self.hvp
                        .eval(&buf, t, &mut out.as_mut_slice()[j * d..(j + 1) * d]);
                    buf[d + j] = 0.0;
                }
            }
        }
    }

    /// Hessians at several points, point `j`'s (column-major) into `out[j·D² ..][..D²]`: in
    /// one pass over the dense tape, equal to [`ExprFunction::hessian`] at each point, bit for
    /// bit; point by point without one.
    ///
    /// # Panics
    /// If `points.dim() != D` or `out.len() != points.len()·D²`.
    pub fn hessians(&self, points: Points<'_>, out: &mut [f64]) {
        let d = self.dim();
        match &self.hess {
            Some(tape) => {
                check_hessians(d, &points, out);
                tape.eval_batch(points, out, d * d);
            }
            None => pointwise_hessians(d, points, out, |theta, t, h| self.hessian(theta, t, h)),
        }
    }

    /// Writes the Hessian–vector product `∇²f(θ, t) v` into `out` (length `D`), at a cost of a
    /// few gradient evaluations whatever `D`.
    pub fn hessian_vector(&self, theta: &[f64], t: f64, v: &[f64], out: &mut [f64]) {
        let d = self.dim();
        let buf = [&theta[..d], &v[..d]].concat();
        self.hvp.eval(&buf, t, &mut out[..d]);
    }

    /// Whether the dense Hessian has its own tape (otherwise it is assembled from `D`
    /// Hessian–vector products).
    pub fn has_dense_hessian(&self) -> bool {
        self.hess.is_some()
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

#[cfg(test)]
mod tests {
    use super::*;
    use exmex::{Differentiate, Express};

    /// Every expression of the shipped specs, and expressions using every function exmex can
    /// differentiate: the derivatives by reverse accumulation on the tape agree with exmex's
    /// symbolic ones (an independent differentiator of the same parse) at random points.
    #[test]
    fn tape_derivatives_match_symbolic_ones() {
        let vars = vec!["w".to_string(), "x".to_string()];
        let params = BTreeMap::from([("yl".to_string(), 0.7), ("l2".to_string(), 0.1)]);
        let scope = Scope::new(vars.clone(), params.clone()).unwrap();
        let texts = [
            // problems/specs/fisher-metric.json: loss, metric entries, drift, terminal cost.
            "log(1 + exp(w*x)) - w*x*yl + l2/2*(w^2 + x^2)",
            "1 + 0.5*x^2",
            "0.1*w*x",
            "1 + 0.5*w^2",
            "-0.1*sin(w)",
            "0.05*w*x",
            "0.5*(w^2 + x^2)",
            // problems/specs/figure1-double-well.json, with its parameters written in.
            "1*(w^2-1)^2 + 1*x^2 + -0.5*w",
            "w^3 - 2*w*x + x^(-2) + w^0.5 + w^x",
            "sin(w)*cos(x) + tan(0.3*w) + asin(0.5*w) + acos(0.4*x) + atan(w*x)",
            "sinh(w) + cosh(x) + tanh(w*x) + asinh(w) + acosh(1+x) + atanh(0.5*w)",
            "exp(w) + sqrt(x) + w^(1/3) + ln(x) + log2(x) + log10(x) + log(x)",
            "-w^2 + 2^3^x / (1 + w*x)",
        ];
        let mut rnd = crate::testbed::unit(5);
        for text in texts {
            let f = ExprFunction::parse("test", text, &scope).unwrap();
            let reference = exmex::parse::<f64>(&notation::normalise(text).unwrap()).unwrap();
            let names: Vec<String> = reference.var_names().to_vec();
            let index = |v: &str| names.iter().position(|n| n == v);
            for _ in 0..10 {
                let theta = [0.2 + 0.6 * rnd(), 0.2 + 0.6 * rnd()];
                let args: Vec<f64> = names
                    .iter()
                    .map(|n| match vars.iter().position(|v| v == n) {
                        Some(i) => theta[i],
                        None => params[n],
                    })
                    .collect();
                let mut g = [0.0; 2];
                f.gradient(&theta, 0.0, &mut g);
                let mut h = DMatrix::zeros(2, 2);
                f.hessian(&theta, 0.0, &mut h);
                for (i, v) in vars.iter().enumerate() {
                    let Some(iv) = index(v) else {
                        assert_eq!(g[i], 0.0, "{text}");
                        continue;
                    };
                    let di = reference.clone().partial(iv).unwrap();
                    let want = di.eval(&args).unwrap();
                    // Different but exact formulas: rounding only.
                    assert!(
                        (g[i] - want).abs() <= 1e-12 * (1.0 + want.abs()),
                        "{text}: ∂/∂{v} {} vs {want}",
                        g[i]
                    );
                    for (j, u) in vars.iter().enumerate() {
                        let want = match index(u) {
                            Some(ju) => di.clone().partial(ju).unwrap().eval(&args).unwrap(),
                            None => 0.0,
                        };
                        assert!(
                            (h[(i, j)] - want).abs() <= 1e-11 * (1.0 + want.abs()),
                            "{text}: ∂²/∂{v}∂{u} {} vs {want}",
                            h[(i, j)]
                        );
                    }
                }
            }
        }
    }

    /// Inputs that took minutes, gigabytes or aborted the process with symbolic partial
    /// derivatives now compile in milliseconds (the test bounds nothing by time; it checks the
    /// derivatives are right and the tapes small).
    #[test]
    fn hard_expressions_compile_with_exact_derivatives() {
        let one = Scope::new(vec!["x".into()], BTreeMap::new()).unwrap();
        // x⁴⁰ and x⁶⁰ as products: derivative 40·x³⁹.
        for n in [40, 60] {
            let text = vec!["x"; n].join("*");
            let f = ExprFunction::parse("loss", &text, &one).unwrap();
            let mut g = [0.0];
            f.gradient(&[1.01], 0.0, &mut g);
            let want = n as f64 * 1.01f64.powi(n as i32 - 1);
            assert!(
                (g[0] - want).abs() < 1e-11 * want,
                "x^{n}: {} vs {want}",
                g[0]
            );
        }
        // 400 nested sines: the chain rule through all of them.
        let text = format!("{}x{}", "sin(".repeat(400), ")".repeat(400));
        let f = ExprFunction::parse("loss", &text, &one).unwrap();
        let (mut v, mut d) = (0.3_f64, 1.0_f64);
        for _ in 0..400 {
            d *= v.cos();
            v = v.sin();
        }
        let mut g = [0.0];
        f.gradient(&[0.3], 0.0, &mut g);
        assert!((f.value(&[0.3], 0.0) - v).abs() < 1e-15);
        assert!((g[0] - d).abs() < 1e-12 * d.abs(), "{} vs {d}", g[0]);
        // abs: signum away from 0.
        let f = ExprFunction::parse("loss", "abs(x - 1)", &one).unwrap();
        f.gradient(&[0.5], 0.0, &mut g);
        assert_eq!(g[0], -1.0);
        // Chain quadratics Σ xᵢ² + 0.1 xᵢxᵢ₊₁ in 100, 200 and 1000 variables: tridiagonal
        // Hessian 2 on the diagonal, 0.1 beside it.
        for d in [100, 200, 1000] {
            let vars: Vec<String> = (1..=d).map(|i| format!("x{i}")).collect();
            let terms: Vec<String> = (1..=d)
                .map(|i| format!("x{i}^2"))
                .chain((1..d).map(|i| format!("0.1*x{i}*x{}", i + 1)))
                .collect();
            let scope = Scope::new(vars, BTreeMap::new()).unwrap();
            let f = ExprFunction::parse("loss", &terms.join(" + "), &scope).unwrap();
            let theta: Vec<f64> = (0..d).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut h = DMatrix::zeros(d, d);
            f.hessian(&theta, 0.0, &mut h);
            for i in 0..d {
                for j in 0..d {
                    let want = match i.abs_diff(j) {
                        0 => 2.0,
                        1 => 0.1,
                        _ => 0.0,
                    };
                    assert_eq!(h[(i, j)], want, "D = {d}, ({i}, {j})");
                }
            }
            // The gradient tape is linear in D (no D² partial expressions).
            assert!(f.grad.len() < 10 * d, "D = {d}: {} steps", f.grad.len());
        }
    }

    /// The Hessian–vector tape against the dense Hessian times `v` (an independent tape: the
    /// gradient of each gradient entry), on expressions using every function; and, for a dense
    /// function too large for a dense tape, the Hessian assembled from products against its
    /// closed form `6 s 11ᵀ` of `s³`, `s = Σ xᵢ`. Agreement to 1e-12 relative: both are exact
    /// derivatives evaluated in a different order, so only rounding separates them.
    #[test]
    fn hessian_vector_products_match_the_dense_hessian() {
        let scope = Scope::new(vec!["x".into(), "y".into()], BTreeMap::new()).unwrap();
        let texts = [
            "log(1 + exp(x*y)) - x*y*0.7 + 0.05*(x^2 + y^2)",
            "sigmoid(2*x - y) + softplus(x*y - 1) + tanh(x)*cos(y) + sqrt(1 + x^2)*exp(-y)",
            "abs(x - 0.5) * min(x, y) + max(x^2, y) + pow(x, y) + atan2(y, x) + x/y",
        ];
        for text in texts {
            let f = ExprFunction::parse("loss", text, &scope).unwrap();
            assert!(f.has_dense_hessian());
            for theta in [[0.3, 0.7], [0.8, 0.45], [0.61, 0.2]] {
                let mut h = DMatrix::zeros(2, 2);
                f.hessian(&theta, 0.0, &mut h);
                let v = [0.9, -1.7];
                let mut hv = [0.0; 2];
                f.hessian_vector(&theta, 0.0, &v, &mut hv);
                let want = &h * nalgebra::DVector::from_column_slice(&v);
                for i in 0..2 {
                    let scale = h.abs().max() * 2.6;
                    assert!(
                        (hv[i] - want[i]).abs() <= 1e-12 * scale,
                        "{text} at {theta:?}: {} vs {}",
                        hv[i],
                        want[i]
                    );
                }
            }
        }
        let d = 3000;
        let vars: Vec<String> = (1..=d).map(|i| format!("x{i}")).collect();
        let text = format!("({})^3", vars.join(" + "));
        let f = ExprFunction::parse("loss", &text, &Scope::new(vars, BTreeMap::new()).unwrap())
            .unwrap();
        assert!(
            !f.has_dense_hessian(),
            "the dense tape would pass its limit"
        );
        let theta: Vec<f64> = (0..d).map(|i| 1e-3 * (i as f64 * 0.37).sin()).collect();
        let s: f64 = theta.iter().sum();
        let v: Vec<f64> = (0..d).map(|i| (i as f64 * 0.11).cos()).collect();
        let mut hv = vec![0.0; d];
        f.hessian_vector(&theta, 0.0, &v, &mut hv);
        let want = 6.0 * s * v.iter().sum::<f64>();
        for x in &hv {
            assert!((x - want).abs() <= 1e-10 * want.abs(), "{x} vs {want}");
        }
        let mut h = DMatrix::zeros(d, d);
        f.hessian(&theta, 0.0, &mut h);
        assert!(h
            .iter()
            .all(|x| (x - 6.0 * s).abs() <= 1e-10 * (6.0 * s).abs()));
    }

    /// Functions exmex cannot differentiate, against central differences: step 1e-5 gives a
    /// truncation error ~1e-10 times the third derivative and rounding ~1e-11; the tolerances
    /// are far above both and far below any wrong rule. Points avoid the kinks.
    #[test]
    fn new_functions_match_finite_differences() {
        let scope = Scope::new(vec!["x".into(), "y".into()], BTreeMap::new()).unwrap();
        let texts = [
            "sigmoid(2*x - y) + softplus(x*y - 1) + softplus(-30*x) + sigmoid(40*y)",
            "abs(x - 0.5) * min(x, y) + max(x^2, y) + pow(x, y) + atan2(y, x) + cbrt(x*y)",
            "floor(3*x) + signum(y - 0.9) + fract(2*x) * y",
        ];
        for text in texts {
            let f = ExprFunction::parse("loss", text, &scope).unwrap();
            for theta in [[0.3, 0.7], [0.8, 0.45], [0.61, 0.2]] {
                let mut g = [0.0; 2];
                f.gradient(&theta, 0.0, &mut g);
                let mut hm = DMatrix::zeros(2, 2);
                f.hessian(&theta, 0.0, &mut hm);
                let h = 1e-5;
                for i in 0..2 {
                    let (mut p, mut m) = (theta, theta);
                    p[i] += h;
                    m[i] -= h;
                    let fd = (f.value(&p, 0.0) - f.value(&m, 0.0)) / (2.0 * h);
                    assert!(
                        (g[i] - fd).abs() < 1e-7,
                        "{text} at {theta:?}: {} vs {fd}",
                        g[i]
                    );
                    let (mut gp, mut gm) = ([0.0; 2], [0.0; 2]);
                    f.gradient(&p, 0.0, &mut gp);
                    f.gradient(&m, 0.0, &mut gm);
                    for j in 0..2 {
                        let fd = (gp[j] - gm[j]) / (2.0 * h);
                        assert!(
                            (hm[(j, i)] - fd).abs() < 1e-6,
                            "{text} at {theta:?}: H[{j}][{i}] {} vs {fd}",
                            hm[(j, i)]
                        );
                    }
                }
            }
        }
    }
}
