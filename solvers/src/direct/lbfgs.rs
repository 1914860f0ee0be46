//! Limited-memory BFGS with a strong-Wolfe line search, in place.
//!
//! Written by hand rather than taken from argmin because of memory: argmin's L-BFGS keeps the
//! current, previous and best parameters and gradients in its state, a second state inside
//! the line search, and allocates a fresh vector for every operation of the two-loop
//! recursion. With `n = 2·N·D` unknowns (4·10⁶ at `D = 10⁴`, `N = 200`: 32 MB a vector) that
//! was about 20 vectors beyond the history, twice the floor. Here the memory is exactly
//! `(2m + 5)·n` values: the `m` pairs `(s, y)`, the iterate and its gradient, the search
//! direction, and the trial point and its gradient. Nothing is allocated per iteration.
//!
//! The algorithm is the textbook one (Nocedal & Wright, *Numerical Optimization*, 2nd ed.):
//! the two-loop recursion with the scaling `γ = sᵀy/yᵀy` (Alg. 7.4), and the bracketing and
//! zoom line search for the strong Wolfe conditions with `c₁ = 10⁻⁴`, `c₂ = 0.9` and
//! safeguarded cubic interpolation (Alg. 3.5, 3.6). Near the minimum the decrease a step can
//! make falls to the rounding level of `f` while the gradient is still accurate; there a step
//! is also accepted under Hager and Zhang's approximate Wolfe conditions (SIAM J. Optim. 16,
//! 2005): `f(x_t) ≤ f(x) + ε_f` and `c₂ f'(0) ≤ f'(α) ≤ (2δ − 1) f'(0)`, `δ = 0.1`, with
//! `ε_f = 10⁻¹²·|f(x)|`, a few hundred roundings of a sum of many terms. Non-finite values at a
//! trial point count as `+∞`: the line search backs off from regions where the objective is
//! undefined.

use std::collections::VecDeque;

/// A smooth objective: the value at `x`, with the gradient written to `grad`.
pub(crate) trait Smooth {
    fn value_and_gradient(&self, x: &[f64], grad: &mut [f64]) -> f64;
    /// Whether to stop now (a deadline): checked before every trial point of the line search,
    /// whose up to 220 trials over tens of millions of unknowns can outlast a budget.
    fn stop(&self) -> bool {
        false
    }
}

/// Options of [`minimise`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// History pairs kept.
    pub memory: usize,
    /// Stop when `‖∇f‖₂` is at most this.
    pub gradient_tol: f64,
    /// Iterations allowed.
    pub max_iterations: u64,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Ending {
    /// `‖∇f‖ ≤ gradient_tol`.
    Converged,
    /// The iteration budget was spent.
    IterationLimit,
    /// The line search found no point meeting the Wolfe conditions (the reason in words).
    LineSearchFailed(String),
}

/// The result: the last iterate (also the best: every accepted step decreases `f`).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub x: Vec<f64>,
    pub grad: Vec<f64>,
    pub value: f64,
    pub gradient_norm: f64,
    pub iterations: u64,
    pub ending: Ending,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;
/// `δ` of the approximate Wolfe conditions.
const DELTA: f64 = 0.1;
/// Relative rounding allowance of the approximate Wolfe conditions.
const ROUNDING: f64 = 1e-12;
/// Step expansions while bracketing, and interval reductions while zooming: with a doubling
/// step and a reduction of at least 0.9 per zoom step these span factors of 10⁶ and 10⁻⁹.
const MAX_BRACKET: usize = 20;
const MAX_ZOOM: usize = 200;

/// Minimises `f` from `x` (whose value `value` and gradient `grad` are given). `monitor` is
/// called before every iteration with its number and the gradient norm; an error from it ends
/// the run with that error.
pub(crate) fn minimise<E>(
    f: &impl Smooth,
    mut x: Vec<f64>,
    mut value: f64,
    mut grad: Vec<f64>,
    options: Options,
    mut monitor: impl FnMut(u64, f64) -> Result<(), E>,
) -> Result<Outcome, E> {
    let n = x.len();
    let m = options.memory.max(1);
    let mut history: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(m);
    let mut dir = vec![0.0; n];
    let (mut xt, mut gt) = (vec![0.0; n], vec![0.0; n]);
    let mut alpha = vec![0.0; m];
    let mut iteration = 0;
    let ending = loop {
        let gnorm = norm(&grad);
        if gnorm <= options.gradient_tol {
            break Ending::Converged;
        }
        if iteration >= options.max_iterations {
            break Ending::IterationLimit;
        }
        monitor(iteration, gnorm)?;
        two_loop(&history, &grad, &mut dir, &mut alpha);
        let mut slope = dot(&dir, &grad);
        if slope >= 0.0 || slope.is_nan() {
            // Rounding in the curvature pairs can spoil descent: restart from steepest descent.
            history.clear();
            for (d, g) in dir.iter_mut().zip(&grad) {
                *d = -g;
            }
            slope = -gnorm * gnorm;
        }
        let search = line_search(f, &x, value, slope, &dir, &mut xt, &mut gt);
        let Some((step, value_t)) = search.step else {
            break Ending::LineSearchFailed(search.reason);
        };
        // s = x_t − x = step·dir, y = g_t − g, in the oldest pair's storage once the history is
        // full.
        let (mut s, mut y) = if history.len() == m {
            let (s, y, _) = history.pop_front().expect("a full history is not empty");
            (s, y)
        } else {
            (vec![0.0; n], vec![0.0; n])
        };
        for i in 0..n {
            s[i] = step * dir[i];
            y[i] = gt[i] - grad[i];
        }
        let sy = dot(&s, &y);
        // The strong Wolfe conditions make sᵀy > 0; a pair spoilt by rounding is dropped.
        if sy > f64::EPSILON * norm(&s) * norm(&y) {
            history.push_back((s, y, sy));
        }
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut grad, &mut gt);
        value = value_t;
        iteration += 1;
    };
    Ok(Outcome {
        gradient_norm: norm(&grad),
        x,
        grad,
        value,
        iterations: iteration,
        ending,
    })
}

/// `dir = -H g` by the two-loop recursion over `history` (oldest first).
fn two_loop(
    history: &VecDeque<(Vec<f64>, Vec<f64>, f64)>,
    grad: &[f64],
    dir: &mut [f64],
    alpha: &mut [f64],
) {
    for (d, g) in dir.iter_mut().zip(grad) {
        *d = -g;
    }
    for (j, (s, y, sy)) in history.iter().enumerate().rev() {
        let a = dot(s, dir) / sy;
        alpha[j] = a;
        axpy(-a, y, dir);
    }
    if let Some((_, y, sy)) = history.back() {
        let gamma = sy / dot(y, y);
        dir.iter_mut().for_each(|d| *d *= gamma);
    }
    for (j, (s, y, sy)) in history.iter().enumerate() {
        let b = dot(y, dir) / sy;
        axpy(alpha[j] - b, s, dir);
    }
}

struct Search {
    /// The accepted step and the value there (`xt`, `gt` hold the point and its gradient).
    step: Option<(f64, f64)>,
    reason: String,
}

/// A point of the line: step, value, directional derivative.
#[derive(Clone, Copy)]
struct Point {
    a: f64,
    f: f64,
    df: f64,
}

/// Strong-Wolfe line search along `dir` from `x` (value `f0`, slope `df0 < 0`). On success
/// the accepted point is the last one evaluated, left in `xt` with its gradient in `gt`.
fn line_search(
    f: &impl Smooth,
    x: &[f64],
    f0: f64,
    df0: f64,
    dir: &[f64],
    xt: &mut [f64],
    gt: &mut [f64],
) -> Search {
    let eval = |a: f64, xt: &mut [f64], gt: &mut [f64]| {
        if f.stop() {
            return Point {
                a,
                f: f64::NAN,
                df: f64::NAN,
            };
        }
        for ((t, x), d) in xt.iter_mut().zip(x).zip(dir) {
            *t = x + a * d;
        }
        let v = f.value_and_gradient(xt, gt);
        let df = dot(gt, dir);
        if v.is_finite() && df.is_finite() {
            Point { a, f: v, df }
        } else {
            Point {
                a,
                f: f64::INFINITY,
                df: f64::NAN,
            }
        }
    };
    let sufficient = |p: &Point| p.f <= f0 + C1 * p.a * df0;
    let curvature = |p: &Point| p.df.abs() <= -C2 * df0;
    let noise = ROUNDING * f0.abs();
    let approximate =
        |p: &Point| p.f <= f0 + noise && C2 * df0 <= p.df && p.df <= (2.0 * DELTA - 1.0) * df0;
    // Values within rounding of `f(x)` do not tell whether a step went too far; the slope
    // decides instead (as in Hager and Zhang's bracketing).
    let too_far =
        |p: &Point, before: &Point| p.f > f0 + noise && (!sufficient(p) || p.f >= before.f);
    let origin = Point {
        a: 0.0,
        f: f0,
        df: df0,
    };
    let mut prev = origin;
    let mut a = 1.0;
    let mut bracket = None;
    let stopped = || Search {
        step: None,
        reason: "stopped (the time budget ran out)".into(),
    };
    for _ in 0..MAX_BRACKET {
        let p = eval(a, xt, gt);
        if p.f.is_nan() {
            return stopped();
        }
        if approximate(&p) {
            return Search {
                step: Some((p.a, p.f)),
                reason: String::new(),
            };
        }
        if too_far(&p, &prev) {
            bracket = Some((prev, p));
            break;
        }
        if curvature(&p) {
            return Search {
                step: Some((p.a, p.f)),
                reason: String::new(),
            };
        }
        if p.df >= 0.0 {
            bracket = Some((p, prev));
            break;
        }
        prev = p;
        a *= 2.0;
    }
    let Some((mut lo, mut hi)) = bracket else {
        return Search {
            step: None,
            reason: format!(
                "the objective kept decreasing steeply along the search direction up to step \
                 {a:.1e} (unbounded below, or badly scaled)"
            ),
        };
    };
    // Zoom: `lo` has sufficient decrease (or a value within rounding) and the lowest value so
    // far; the minimiser lies between `lo` and `hi`.
    for _ in 0..MAX_ZOOM {
        let width = hi.a - lo.a;
        if width.abs() <= f64::EPSILON * lo.a.abs().max(hi.a.abs()) {
            break;
        }
        let a = cubic_minimiser(&lo, &hi)
            .filter(|a| {
                let (l, h) = (lo.a.min(hi.a), lo.a.max(hi.a));
                *a > l + 0.1 * (h - l) && *a < h - 0.1 * (h - l)
            })
            .unwrap_or(0.5 * (lo.a + hi.a));
        let p = eval(a, xt, gt);
        if p.f.is_nan() {
            return stopped();
        }
        if approximate(&p) {
            return Search {
                step: Some((p.a, p.f)),
                reason: String::new(),
            };
        }
        if too_far(&p, &lo) {
            hi = p;
        } else {
            if curvature(&p) {
                return Search {
                    step: Some((p.a, p.f)),
                    reason: String::new(),
                };
            }
            if p.df * (hi.a - lo.a) >= 0.0 {
                hi = lo;
            }
            lo = p;
        }
    }
    // The interval has shrunk to rounding: accept the best point if it decreases the value.
    if lo.a > 0.0 && lo.f < f0 {
        let p = eval(lo.a, xt, gt);
        if p.f < f0 {
            return Search {
                step: Some((p.a, p.f)),
                reason: String::new(),
            };
        }
    }
    Search {
        step: None,
        reason: format!(
            "no step decreases the objective along the search direction (slope {df0:.3e} at \
             value {f0:.15e}): the value is at rounding level, or the gradient is inexact"
        ),
    }
}

/// The minimiser of the cubic through two points with their slopes (None when it has none).
fn cubic_minimiser(p: &Point, q: &Point) -> Option<f64> {
    if !(p.f.is_finite() && q.f.is_finite() && p.df.is_finite() && q.df.is_finite()) {
        return None;
    }
    let d1 = p.df + q.df - 3.0 * (p.f - q.f) / (p.a - q.a);
    let disc = d1 * d1 - p.df * q.df;
    if disc < 0.0 {
        return None;
    }
    let d2 = (q.a - p.a).signum() * disc.sqrt();
    let a = q.a - (q.a - p.a) * (q.df + d2 - d1) / (q.df - p.df + 2.0 * d2);
    a.is_finite().then_some(a)
}

/// In four interleaved partial sums: a single running sum is a chain of dependent additions
/// that the compiler may not reorder, four vectorise.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let mut acc = [0.0; 4];
    for (x, y) in ca.zip(cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn axpy(a: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function in `n` dimensions, a standard hard case for quasi-Newton
    /// methods (curved valley, condition number ~2500 at the minimum).
    struct Rosenbrock;
    impl Smooth for Rosenbrock {
        fn value_and_gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
            g.iter_mut().for_each(|v| *v = 0.0);
            let mut f = 0.0;
            for i in 0..x.len() - 1 {
                let (a, b) = (x[i + 1] - x[i] * x[i], 1.0 - x[i]);
                f += 100.0 * a * a + b * b;
                g[i] += -400.0 * a * x[i] - 2.0 * b;
                g[i + 1] += 200.0 * a;
            }
            f
        }
    }

    fn run(f: &impl Smooth, x0: Vec<f64>, tol: f64) -> Outcome {
        let mut g = vec![0.0; x0.len()];
        let v = f.value_and_gradient(&x0, &mut g);
        let options = Options {
            memory: 10,
            gradient_tol: tol,
            max_iterations: 10_000,
        };
        minimise(f, x0, v, g, options, |_, _| Ok::<(), ()>(())).unwrap()
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let out = run(&Rosenbrock, vec![-1.2, 1.0, -1.2, 1.0, -1.2, 1.0], 1e-10);
        assert_eq!(out.ending, Ending::Converged);
        // At a nondegenerate minimum the error is about the gradient norm divided by the
        // smallest Hessian eigenvalue (~0.4 here): 1e-10 gradient → well under 1e-8.
        for xi in &out.x {
            assert!((xi - 1.0).abs() < 1e-8, "{:?}", out.x);
        }
    }

    /// A quadratic with eigenvalues from 1 to 100, from a gradient norm of ~180 to 1e-12:
    /// steepest descent would need about `κ/2·ln(1/ε) ≈ 1600` iterations, conjugate gradients
    /// with exact line searches 10 (finite termination). L-BFGS with Wolfe steps (inexact, so
    /// no finite termination) took 38; 50 shows the curvature pairs are used.
    #[test]
    fn quadratic_in_about_n_iterations() {
        struct Q;
        impl Smooth for Q {
            fn value_and_gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
                let mut f = 0.0;
                for (i, (xi, gi)) in x.iter().zip(g.iter_mut()).enumerate() {
                    let l = 1.0 + 99.0 * i as f64 / 9.0;
                    *gi = l * (xi - 1.0);
                    f += 0.5 * l * (xi - 1.0) * (xi - 1.0);
                }
                f
            }
        }
        let out = run(&Q, vec![0.0; 10], 1e-12);
        assert_eq!(out.ending, Ending::Converged);
        assert!(out.iterations <= 50, "{} iterations", out.iterations);
    }

    /// An objective undefined (NaN) beyond `x = 2` and minimised at `x = 1.9`: the line search
    /// backs off from the undefined region instead of failing.
    #[test]
    fn backs_off_from_undefined_regions() {
        struct Edge;
        impl Smooth for Edge {
            fn value_and_gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
                if x[0] > 2.0 {
                    g[0] = f64::NAN;
                    return f64::NAN;
                }
                g[0] = 2.0 * (x[0] - 1.9);
                (x[0] - 1.9).powi(2)
            }
        }
        // From x = -10 the first step (length 1 along −∇f = 23.8) lands in the NaN region.
        let out = run(&Edge, vec![-10.0], 1e-10);
        assert_eq!(out.ending, Ending::Converged);
        assert!((out.x[0] - 1.9).abs() < 1e-9);
    }

    #[test]
    fn reports_an_unbounded_objective() {
        struct Linear;
        impl Smooth for Linear {
            fn value_and_gradient(&self, x: &[f64], g: &mut [f64]) -> f64 {
                g[0] = -1.0;
                -x[0]
            }
        }
        let out = run(&Linear, vec![0.0], 1e-10);
        assert!(matches!(out.ending, Ending::LineSearchFailed(_)), "{out:?}");
    }
}
