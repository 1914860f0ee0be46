//! Metrics and drifts written once in Rust, generically over the scalar type, with exact
//! derivatives by forward-mode automatic differentiation (num-dual), as
//! [`DifferentiableLoss`](crate::DifferentiableLoss) does for losses: wrap them in [`AutoDiff`]
//! and they are a [`Metric`] or a [`Drift`].
//!
//! ```
//! use lossnav_problems::{AutoDiff, DifferentiableDrift, DifferentiableMetric, Drift, Metric, Scalar};
//!
//! /// G(θ) = diag(1 + x², 1): moving x costs more away from 0.
//! struct Stiff;
//! impl DifferentiableMetric for Stiff {
//!     fn dim(&self) -> usize { 2 }
//!     fn metric<S: Scalar>(&self, th: &[S]) -> Vec<S> {
//!         let one = S::from(1.0);
//!         vec![one.clone() + th[0].clone() * th[0].clone(), S::from(0.0), S::from(0.0), one]
//!     }
//! }
//! /// f(θ) = (-y, x) / 2: a slow rotation.
//! struct Spin;
//! impl DifferentiableDrift for Spin {
//!     fn dim(&self) -> usize { 2 }
//!     fn eval<S: Scalar>(&self, th: &[S], _t: f64) -> Vec<S> {
//!         vec![-th[1].clone() * 0.5, th[0].clone() * 0.5]
//!     }
//! }
//! let (g, f) = (AutoDiff(Stiff), AutoDiff(Spin));
//! let mut out = [0.0; 2];
//! // ∇_θ (vᵀ G v) = (2 x v₀², 0).
//! g.metric_quadratic_gradient(&[0.5, 0.0], &[1.0, 1.0], &mut out);
//! assert_eq!(out, [1.0, 0.0]);
//! // Dfᵀ p = (p₁, -p₀) / 2.
//! f.jacobian_transpose_mul(&[0.3, 0.4], 0.0, &[1.0, 2.0], &mut out);
//! assert_eq!(out, [1.0, -0.5]);
//! ```

use nalgebra::{DMatrix, DVector};
use num_dual::{Dual64, HyperDual64};

use crate::drift::Drift;
use crate::landscapes::autodiff::{AutoDiff, Scalar};
use crate::metric::{Metric, MetricParts};

/// A metric `G(θ)` written once, generically over the scalar type; [`AutoDiff`] gives it the
/// derivatives the solvers need (`∂G`, `∂²G`, and those of `M = G⁻¹`).
pub trait DifferentiableMetric: Send + Sync {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// `G(θ)`, row-major `D×D`, symmetric positive definite (the lower triangle is not read).
    fn metric<S: Scalar>(&self, theta: &[S]) -> Vec<S>;
    /// Whether `G` is independent of `θ` (false unless stated: solvers then take the general
    /// route, which is correct but slower).
    fn is_constant(&self) -> bool {
        false
    }
    /// A one-line description.
    fn describe(&self) -> String {
        format!("user-defined metric (D = {})", self.dim())
    }
}

/// A drift `f(θ, t)` written once, generically over the scalar type; [`AutoDiff`] gives it its
/// Jacobian and the contracted Hessian `Σ p_k ∇²f_k`.
pub trait DifferentiableDrift: Send + Sync {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// `f(θ, t)`, `D` components.
    fn eval<S: Scalar>(&self, theta: &[S], t: f64) -> Vec<S>;
    /// Whether `f` depends on `t`.
    fn is_time_dependent(&self) -> bool {
        false
    }
    /// A one-line description.
    fn describe(&self) -> String {
        format!("user-defined drift (D = {})", self.dim())
    }
}

impl<F: DifferentiableMetric> AutoDiff<F> {
    /// `G`, `∂_k G` (one dual evaluation per direction) and, when `second`, `∂_k ∂_l G` (one
    /// hyper-dual evaluation per pair `k ≤ l`).
    fn parts(&self, theta: &[f64], second: bool) -> MetricParts {
        let d = self.0.dim();
        let sym = |v: &[f64]| DMatrix::from_fn(d, d, |i, j| v[i.min(j) * d + i.max(j)]);
        let g = sym(&self.0.metric(theta));
        let mut x: Vec<Dual64> = theta.iter().map(|&v| Dual64::from(v)).collect();
        let mut dg = Vec::with_capacity(d);
        for k in 0..d {
            x[k].eps = 1.0;
            let e: Vec<f64> = self.0.metric(&x).iter().map(|v| v.eps).collect();
            dg.push(sym(&e));
            x[k].eps = 0.0;
        }
        let mut ddg = Vec::new();
        if second {
            ddg = vec![DMatrix::zeros(d, d); d * d];
            let mut x: Vec<HyperDual64> = theta.iter().map(|&v| HyperDual64::from(v)).collect();
            for k in 0..d {
                x[k].eps1 = 1.0;
                for l in k..d {
                    x[l].eps2 = 1.0;
                    let e: Vec<f64> = self.0.metric(&x).iter().map(|v| v.eps1eps2).collect();
                    let m = sym(&e);
                    ddg[k * d + l] = m.clone();
                    ddg[l * d + k] = m;
                    x[l].eps2 = 0.0;
                }
                x[k].eps1 = 0.0;
            }
        }
        MetricParts { g, dg, ddg }
    }
}

impl<F: DifferentiableMetric> Metric for AutoDiff<F> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn is_constant(&self) -> bool {
        self.0.is_constant()
    }
    fn mobility(&self, theta: &[f64], out: &mut DMatrix<f64>) {
        out.copy_from(&self.parts(theta, false).inverse());
    }
    fn mobility_mul(&self, theta: &[f64], p: &[f64], out: &mut [f64]) {
        self.parts(theta, false).mobility_mul(p, out);
    }
    fn mobility_quadratic_gradient(&self, theta: &[f64], p: &[f64], out: &mut [f64]) {
        self.parts(theta, false).mobility_quadratic_gradient(p, out);
    }
    fn mobility_derivatives(
        &self,
        theta: &[f64],
        p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    ) {
        self.parts(theta, true).mobility_derivatives(p, dmp, hess);
    }
    fn metric_mul(&self, theta: &[f64], v: &[f64], out: &mut [f64]) {
        self.parts(theta, false).metric_mul(v, out);
    }
    fn metric_quadratic_gradient(&self, theta: &[f64], v: &[f64], out: &mut [f64]) {
        self.parts(theta, false).metric_quadratic_gradient(v, out);
    }
    fn constant_mobility(&self) -> Option<DMatrix<f64>> {
        self.0
            .is_constant()
            .then(|| self.parts(&vec![0.0; self.0.dim()], false).inverse())
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

impl<F: DifferentiableDrift> Drift for AutoDiff<F> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn is_time_dependent(&self) -> bool {
        self.0.is_time_dependent()
    }
    fn value(&self, theta: &[f64], t: f64, out: &mut [f64]) {
        out.copy_from_slice(&self.0.eval(theta, t));
    }
    fn jacobian(&self, theta: &[f64], t: f64, out: &mut DMatrix<f64>) {
        let mut x: Vec<Dual64> = theta.iter().map(|&v| Dual64::from(v)).collect();
        for j in 0..theta.len() {
            x[j].eps = 1.0;
            for (i, fi) in self.0.eval(&x, t).iter().enumerate() {
                out[(i, j)] = fi.eps;
            }
            x[j].eps = 0.0;
        }
    }
    fn jacobian_transpose_mul(&self, theta: &[f64], t: f64, p: &[f64], out: &mut [f64]) {
        // (Dfᵀp)_j = ∂(p·f)/∂θ_j: one dual evaluation per coordinate.
        let mut x: Vec<Dual64> = theta.iter().map(|&v| Dual64::from(v)).collect();
        for j in 0..theta.len() {
            x[j].eps = 1.0;
            out[j] = self
                .0
                .eval(&x, t)
                .iter()
                .zip(p)
                .map(|(fi, pi)| fi.eps * pi)
                .sum();
            x[j].eps = 0.0;
        }
    }
    fn contracted_hessian(&self, theta: &[f64], t: f64, p: &[f64], out: &mut DMatrix<f64>) {
        let d = theta.len();
        let mut x: Vec<HyperDual64> = theta.iter().map(|&v| HyperDual64::from(v)).collect();
        for k in 0..d {
            x[k].eps1 = 1.0;
            for l in k..d {
                x[l].eps2 = 1.0;
                let h: f64 = self
                    .0
                    .eval(&x, t)
                    .iter()
                    .zip(p)
                    .map(|(fi, pi)| fi.eps1eps2 * pi)
                    .sum();
                out[(k, l)] = h;
                out[(l, k)] = h;
                x[l].eps2 = 0.0;
            }
            x[k].eps1 = 0.0;
        }
    }
    fn as_affine(&self) -> Option<(DMatrix<f64>, DVector<f64>)> {
        None
    }
    fn describe(&self) -> String {
        self.0.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Scope;
    use crate::metric::ExprMetric;
    use std::collections::BTreeMap;

    /// The Fisher-like metric of problems/specs/fisher-metric.json written in Rust: every
    /// derivative the solvers use agrees with the expression metric's (an independent route:
    /// reverse accumulation on a recorded tape) to rounding.
    struct Fisher;
    impl DifferentiableMetric for Fisher {
        fn dim(&self) -> usize {
            2
        }
        fn metric<S: Scalar>(&self, th: &[S]) -> Vec<S> {
            let (w, x) = (th[0].clone(), th[1].clone());
            let c = (w.clone() * x.clone()).exp();
            let s = c.clone() / (c + 1.0);
            let v = s.clone() * (-s + 1.0);
            vec![
                v.clone() * x.clone() * x.clone() + 0.1,
                v.clone() * w.clone() * x.clone(),
                v.clone() * w.clone() * x,
                v * w.clone() * w + 0.1,
            ]
        }
    }

    #[test]
    fn autodiff_metric_matches_the_expression_metric() {
        let scope = Scope::new(vec!["w".into(), "x".into()], BTreeMap::new()).unwrap();
        let v = "sigmoid(w*x)*(1 - sigmoid(w*x))";
        let rows = vec![
            vec![format!("{v}*x^2 + 0.1"), format!("{v}*w*x")],
            vec![format!("{v}*w*x"), format!("{v}*w^2 + 0.1")],
        ];
        let expr = ExprMetric::parse("metric", &rows, &scope, &[0.3, -0.7]).unwrap();
        let auto = AutoDiff(Fisher);
        let close = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .all(|(x, y)| (x - y).abs() <= 1e-13 * (1.0 + x.abs().max(y.abs())))
        };
        for theta in [[0.3, -0.7], [1.2, 0.4]] {
            let p = [0.8, -1.1];
            let (mut a, mut b) = ([0.0; 2], [0.0; 2]);
            auto.mobility_mul(&theta, &p, &mut a);
            expr.mobility_mul(&theta, &p, &mut b);
            assert!(close(&a, &b), "M p: {a:?} vs {b:?}");
            auto.mobility_quadratic_gradient(&theta, &p, &mut a);
            expr.mobility_quadratic_gradient(&theta, &p, &mut b);
            assert!(close(&a, &b), "∇(pᵀMp): {a:?} vs {b:?}");
            auto.metric_quadratic_gradient(&theta, &p, &mut a);
            expr.metric_quadratic_gradient(&theta, &p, &mut b);
            assert!(close(&a, &b), "∇(vᵀGv): {a:?} vs {b:?}");
            let (mut d1, mut h1, mut d2, mut h2) = (
                DMatrix::zeros(2, 2),
                DMatrix::zeros(2, 2),
                DMatrix::zeros(2, 2),
                DMatrix::zeros(2, 2),
            );
            auto.mobility_derivatives(&theta, &p, &mut d1, &mut h1);
            expr.mobility_derivatives(&theta, &p, &mut d2, &mut h2);
            assert!(close(d1.as_slice(), d2.as_slice()), "∂(Mp): {d1} vs {d2}");
            assert!(
                close(h1.as_slice(), h2.as_slice()),
                "∂²(pᵀMp): {h1} vs {h2}"
            );
        }
    }

    /// A nonlinear drift: the Jacobian and contracted Hessian by duals against central
    /// differences of the value and of `Dfᵀp` (step 1e-5: truncation ~1e-10, rounding ~1e-11;
    /// the tolerance 1e-7 is far above both and far below any wrong entry).
    #[test]
    fn autodiff_drift_matches_finite_differences() {
        struct Pull;
        impl DifferentiableDrift for Pull {
            fn dim(&self) -> usize {
                2
            }
            fn eval<S: Scalar>(&self, th: &[S], t: f64) -> Vec<S> {
                let (x, y) = (th[0].clone(), th[1].clone());
                vec![
                    (x.clone() * y.clone()).sin() * (1.0 + t),
                    y.clone() * y - x.tanh(),
                ]
            }
        }
        let f = AutoDiff(Pull);
        let (theta, t, p) = ([0.4, -0.9], 0.3, [1.3, 0.7]);
        let mut jac = DMatrix::zeros(2, 2);
        f.jacobian(&theta, t, &mut jac);
        let mut ch = DMatrix::zeros(2, 2);
        f.contracted_hessian(&theta, t, &p, &mut ch);
        let h = 1e-5;
        for j in 0..2 {
            let (mut a, mut b) = (theta, theta);
            a[j] += h;
            b[j] -= h;
            let (mut fa, mut fb) = ([0.0; 2], [0.0; 2]);
            f.value(&a, t, &mut fa);
            f.value(&b, t, &mut fb);
            let (mut ga, mut gb) = ([0.0; 2], [0.0; 2]);
            f.jacobian_transpose_mul(&a, t, &p, &mut ga);
            f.jacobian_transpose_mul(&b, t, &p, &mut gb);
            for i in 0..2 {
                let fd = (fa[i] - fb[i]) / (2.0 * h);
                assert!((jac[(i, j)] - fd).abs() < 1e-7, "Df[{i}][{j}]");
                let fd = (ga[i] - gb[i]) / (2.0 * h);
                assert!((ch[(i, j)] - fd).abs() < 1e-7, "Σp∇²f[{i}][{j}]");
            }
        }
    }
}
