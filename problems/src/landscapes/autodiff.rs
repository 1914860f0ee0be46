//! Exact derivatives of Rust-defined losses by forward-mode automatic differentiation.

use nalgebra::{DMatrix, DVector};
use num_dual::{Dual64, DualNum, HyperDual64};

use crate::landscape::Landscape;

/// The scalar types a [`DifferentiableLoss`] is evaluated with: `f64` and num-dual's dual
/// numbers. Write the loss once, generically, and get exact derivatives.
pub trait Scalar: DualNum<Primitive = f64> {}
impl<T: DualNum<Primitive = f64>> Scalar for T {}

/// A loss written once, generically over the scalar type; [`AutoDiff`] turns it into a
/// [`Landscape`] with exact gradient, Hessian and Hessian–vector products.
///
/// ```
/// use lossnav_problems::{AutoDiff, DifferentiableLoss, Landscape, Scalar};
///
/// /// A tilted double well `(x²-1)² + y² - x/2`.
/// struct Tilted;
/// impl DifferentiableLoss for Tilted {
///     fn dim(&self) -> usize { 2 }
///     fn eval<S: Scalar>(&self, th: &[S], _t: f64) -> S {
///         let (x, y) = (th[0].clone(), th[1].clone());
///         (x.powi(2) - 1.0).powi(2) + y.powi(2) - x * 0.5
///     }
/// }
/// let loss = AutoDiff(Tilted);
/// let mut g = [0.0; 2];
/// loss.gradient(&[1.0, 0.5], 0.0, &mut g);
/// assert_eq!(g, [-0.5, 1.0]);
/// ```
pub trait DifferentiableLoss: Send + Sync {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// `L(θ, t)` for any scalar type.
    fn eval<S: Scalar>(&self, theta: &[S], t: f64) -> S;
    /// Whether `L` depends on `t`.
    fn is_time_dependent(&self) -> bool {
        false
    }
    /// A one-line description.
    fn describe(&self) -> String {
        format!("user-defined loss (D = {})", self.dim())
    }
}

/// Adapter giving a [`DifferentiableLoss`] exact derivatives.
///
/// Small `D` (at most [`AutoDiff::SCALAR_DUAL_MAX_DIM`]) uses scalar dual numbers, which live
/// on the stack: `D` evaluations for the gradient and `D(D+1)/2` hyper-dual evaluations for
/// the Hessian, with no allocation per arithmetic operation. Larger `D` uses num-dual's
/// dynamically sized dual vectors: one evaluation for the gradient, and a forward-over-forward
/// pass for Hessian–vector products, so the `D×D` Hessian is never formed on that route.
#[derive(Debug, Clone, Copy, Default)]
pub struct AutoDiff<F>(pub F);

impl<F> AutoDiff<F> {
    /// Up to this dimension derivatives are taken one direction at a time with scalar duals.
    pub const SCALAR_DUAL_MAX_DIM: usize = 12;
}

impl<F: DifferentiableLoss> Landscape for AutoDiff<F> {
    fn dim(&self) -> usize {
        self.0.dim()
    }

    fn value(&self, theta: &[f64], t: f64) -> f64 {
        self.0.eval(theta, t)
    }

    fn gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) {
        let d = theta.len();
        if d <= Self::SCALAR_DUAL_MAX_DIM {
            let mut x: Vec<Dual64> = theta.iter().map(|&v| Dual64::from(v)).collect();
            for i in 0..d {
                x[i].eps = 1.0;
                grad[i] = self.0.eval(&x, t).eps;
                x[i].eps = 0.0;
            }
        } else {
            let x = DVector::from_column_slice(theta);
            let (_, g) = num_dual::gradient(|x| self.0.eval(x.as_slice(), t), &x);
            grad.copy_from_slice(g.as_slice());
        }
    }

    fn value_and_gradient(&self, theta: &[f64], t: f64, grad: &mut [f64]) -> f64 {
        if theta.len() <= Self::SCALAR_DUAL_MAX_DIM {
            self.gradient(theta, t, grad);
            self.value(theta, t)
        } else {
            let x = DVector::from_column_slice(theta);
            let (f, g) = num_dual::gradient(|x| self.0.eval(x.as_slice(), t), &x);
            grad.copy_from_slice(g.as_slice());
            f
        }
    }

    fn hessian(&self, theta: &[f64], t: f64, hess: &mut DMatrix<f64>) {
        let d = theta.len();
        if d <= Self::SCALAR_DUAL_MAX_DIM {
            let mut x: Vec<HyperDual64> = theta.iter().map(|&v| HyperDual64::from(v)).collect();
            for i in 0..d {
                x[i].eps1 = 1.0;
                for j in i..d {
                    x[j].eps2 = 1.0;
                    let h = self.0.eval(&x, t).eps1eps2;
                    hess[(i, j)] = h;
                    hess[(j, i)] = h;
                    x[j].eps2 = 0.0;
                }
                x[i].eps1 = 0.0;
            }
        } else {
            let x = DVector::from_column_slice(theta);
            let (_, _, h) = num_dual::hessian(|x| self.0.eval(x.as_slice(), t), &x);
            hess.copy_from(&h);
        }
    }

    fn hessian_vector(&self, theta: &[f64], t: f64, v: &[f64], out: &mut [f64]) {
        let d = theta.len();
        if d <= Self::SCALAR_DUAL_MAX_DIM {
            let mut h = DMatrix::zeros(d, d);
            self.hessian(theta, t, &mut h);
            let hv = h * DVector::from_column_slice(v);
            out.copy_from_slice(hv.as_slice());
        } else {
            // ∇(∇L·v): the gradient (outer dual vector) of the directional derivative
            // (inner scalar dual seeded with v).
            let x =
                DVector::from_iterator(d, theta.iter().zip(v).map(|(&a, &b)| Dual64::new(a, b)));
            let (_, g) = num_dual::gradient(|x| self.0.eval(x.as_slice(), t), &x);
            for (o, gi) in out.iter_mut().zip(g.iter()) {
                *o = gi.eps;
            }
        }
    }

    fn is_time_dependent(&self) -> bool {
        self.0.is_time_dependent()
    }

    fn describe(&self) -> String {
        self.0.describe()
    }
}
