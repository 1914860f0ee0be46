//! The paper's tilted double well (Figure 1).

use crate::error::{check_finite, ProblemError, Result};
use crate::landscapes::autodiff::{DifferentiableLoss, Scalar};

/// `L(x, y₁..y_m) = a (x² - b)² + c Σ yᵢ² + d x`: two basins along `x` (for `b > 0` and a
/// small tilt `d`), a quadratic valley in every other direction.
///
/// With `d < 0` the basin at positive `x` is the deeper (global) one, so a learner starting
/// in the left basin must climb a barrier to reach it: the Figure 1 landscape. Wrap it in
/// [`crate::AutoDiff`] for exact derivatives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DoubleWell {
    /// Dimension (at least 1).
    pub dim: usize,
    /// Barrier scale.
    pub a: f64,
    /// Squared position of the wells.
    pub b: f64,
    /// Curvature of the transverse directions.
    pub c: f64,
    /// Tilt.
    pub d: f64,
}

impl DoubleWell {
    /// The double well in `dim ≥ 1` dimensions with finite coefficients.
    ///
    /// ```
    /// use lossnav_problems::{AutoDiff, DoubleWell, Landscape};
    /// let well = AutoDiff(DoubleWell::new(3, 1.0, 1.0, 1.0, -0.5).unwrap());
    /// assert_eq!(well.value(&[1.0, 0.0, 0.0], 0.0), -0.5);
    /// assert!(DoubleWell::new(0, 1.0, 1.0, 1.0, -0.5).is_err());
    /// ```
    pub fn new(dim: usize, a: f64, b: f64, c: f64, d: f64) -> Result<Self> {
        let w = Self { dim, a, b, c, d };
        w.validate()?;
        Ok(w)
    }

    /// The Figure 1 landscape: `D = 2`, `a = 1`, `b = 1`, `c = 1`, `d = -0.5`.
    pub fn figure1() -> Self {
        Self {
            dim: 2,
            a: 1.0,
            b: 1.0,
            c: 1.0,
            d: -0.5,
        }
    }

    /// Checks the coefficients.
    pub fn validate(&self) -> Result<()> {
        if self.dim == 0 {
            return Err(ProblemError::invalid(
                "double_well",
                "dimension must be at least 1",
            ));
        }
        check_finite("double_well", &[self.a, self.b, self.c, self.d])
    }
}

impl DifferentiableLoss for DoubleWell {
    fn dim(&self) -> usize {
        self.dim
    }

    fn eval<S: Scalar>(&self, theta: &[S], _t: f64) -> S {
        let x = theta[0].clone();
        let well = (x.powi(2) - self.b).powi(2) * self.a + x * self.d;
        theta[1..]
            .iter()
            .fold(well, |acc, y| acc + y.powi(2) * self.c)
    }

    fn describe(&self) -> String {
        format!(
            "double well a(x²-b)² + c|y|² + dx with a = {}, b = {}, c = {}, d = {} (D = {})",
            self.a, self.b, self.c, self.d, self.dim
        )
    }
}
