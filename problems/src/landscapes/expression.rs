//! Losses written as expressions (the JSON route).

use nalgebra::DMatrix;

use crate::error::Result;
use crate::expr::{ExprFunction, Scope};
use crate::landscape::{Landscape, Points};

/// A loss given as an expression in the coordinates, named constants and `t`, with exact
/// symbolic first and second derivatives.
///
/// ```
/// use std::collections::BTreeMap;
/// use lossnav_problems::{expr::Scope, ExprLoss, Landscape};
/// let scope = Scope::new(vec!["x".into(), "y".into()], BTreeMap::new()).unwrap();
/// let loss = ExprLoss::parse("loss.expr", "(x^2-1)^2 + y^2", &scope).unwrap();
/// assert_eq!(loss.value(&[1.0, 2.0], 0.0), 4.0);
/// ```
#[derive(Debug, Clone)]
pub struct ExprLoss {
    f: ExprFunction,
}

impl ExprLoss {
    /// Parses `text` over `scope`; `field` names it in errors.
    pub fn parse(field: &str, text: &str, scope: &Scope) -> Result<Self> {
        Ok(Self {
            f: ExprFunction::parse(field, text, scope)?,
        })
    }

    /// The underlying expression.
    pub fn function(&self) -> &ExprFunction {
        &self.f
    }
}

impl Landscape for ExprLoss {
    fn dim(&self) -> usize {
        self.f.dim()
    }

    fn value(&self, theta: &[f64], t: f64) -> f64 {
        self.f.value(theta, t)
    }

    fn gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) {
        self.f.gradient(theta, t, grad);
    }

    fn values(&self, points: Points<'_>, out: &mut [f64]) {
        self.f.values(points, out);
    }

    fn gradients(&self, points: Points<'_>, out: &mut [f64], stride: usize) {
        self.f.gradients(points, out, stride);
    }

    fn values_and_gradients(
        &self,
        points: Points<'_>,
        values: &mut [f64],
        grads: &mut [f64],
        stride: usize,
    ) {
        // Two passes over the compiled tapes, each batched over all points.
        self.f.values(points, values);
        self.f.gradients(points, grads, stride);
    }

    fn hessian(&self, theta: &[f64], t: f64, hess: &mut DMatrix<f64>) {
        self.f.hessian(theta, t, hess);
    }

    fn hessian_vector(&self, theta: &[f64], t: f64, v: &[f64], out: &mut [f64]) {
        self.f.hessian_vector(theta, t, v, out);
    }

    fn hessians(&self, points: Points<'_>, out: &mut [f64]) {
        self.f.hessians(points, out);
    }

    fn is_time_dependent(&self) -> bool {
        self.f.uses_time()
    }

    fn describe(&self) -> String {
        format!("expression \"{}\"", self.f.text())
    }
}
