//! The Rosenbrock valley: a curved, badly conditioned landscape.

use crate::error::{check_finite, ProblemError, Result};
use crate::landscapes::autodiff::{DifferentiableLoss, Scalar};

/// `L(θ) = Σᵢ [ b (θᵢ₊₁ - θᵢ²)² + (a - θᵢ)² ]`, minimum at `θ = (a, a², …)` for `D = 2`
/// and at `(1, …, 1)` for `a = 1`. Wrap it in [`crate::AutoDiff`] for exact derivatives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rosenbrock {
    /// Dimension (at least 2).
    pub dim: usize,
    /// Position of the minimum.
    pub a: f64,
    /// Steepness of the valley walls.
    pub b: f64,
}

impl Rosenbrock {
    /// The valley in `dim ≥ 2` dimensions with finite coefficients `a` and `b`.
    ///
    /// ```
    /// use lossnav_problems::{AutoDiff, Landscape, Rosenbrock};
    /// let loss = AutoDiff(Rosenbrock::new(3, 1.0, 100.0).unwrap());
    /// assert_eq!(loss.value(&[1.0, 1.0, 1.0], 0.0), 0.0);
    /// assert!(Rosenbrock::new(1, 1.0, 100.0).is_err());
    /// ```
    pub fn new(dim: usize, a: f64, b: f64) -> Result<Self> {
        let r = Self { dim, a, b };
        r.validate()?;
        Ok(r)
    }

    /// The classic two-dimensional valley `a = 1`, `b = 100`.
    pub fn classic() -> Self {
        Self {
            dim: 2,
            a: 1.0,
            b: 100.0,
        }
    }

    /// Checks the coefficients.
    pub fn validate(&self) -> Result<()> {
        if self.dim < 2 {
            return Err(ProblemError::invalid(
                "rosenbrock",
                format!("dimension must be at least 2, got {}", self.dim),
            ));
        }
        check_finite("rosenbrock", &[self.a, self.b])
    }
}

impl DifferentiableLoss for Rosenbrock {
    fn dim(&self) -> usize {
        self.dim
    }

    fn eval<S: Scalar>(&self, theta: &[S], _t: f64) -> S {
        theta.windows(2).fold(S::from(0.0), |acc, w| {
            let (x, y) = (w[0].clone(), w[1].clone());
            acc + (y - x.powi(2)).powi(2) * self.b + (-x + self.a).powi(2)
        })
    }

    fn describe(&self) -> String {
        format!(
            "Rosenbrock with a = {}, b = {} (D = {})",
            self.a, self.b, self.dim
        )
    }
}
