//! # lossnav-problems: what `lossnav` solves
//!
//! A learning rule is a policy for moving parameters `θ` through a loss landscape. The optimal
//! one minimises
//!
//! ```text
//! J[θ] = ∫₀ᵀ e^{-γt} [ (1/2η)(θ̇ - f)ᵀ G (θ̇ - f) + k L(θ, t) ] dt  (+ e^{-γT} Φ(θ(T)))
//! ```
//!
//! This crate states such problems: loss landscapes ([`Landscape`]), the metric `G` or
//! mobility `M = G⁻¹` ([`Metric`]), the drift `f` ([`Drift`]), the [`Lagrangian`] with its
//! Hamiltonian vector field and exact Jacobian ([`hamiltonian`]), complete problems
//! ([`Problem`]) and JSON specs ([`Spec`]). It knows nothing about solvers.
//!
//! Every derivative is exact: closed forms, forward-mode automatic differentiation
//! ([`AutoDiff`], num-dual) for landscapes written in Rust, and symbolic differentiation
//! ([`ExprLoss`], reverse accumulation on a recorded program) for expressions from JSON.
//!
//! ```
//! use lossnav_problems::Spec;
//! let spec = Spec::from_json(r#"{
//!     "loss": {"expr": "a*(x^2-b)^2 + c*y^2 + d*x", "vars": ["x", "y"],
//!              "params": {"a": 1, "b": 1, "c": 1, "d": -0.5}},
//!     "gamma": 0.1, "theta0": [-0.6, 0.55], "horizon": 4.0, "end": {"fixed": [1.0625, 0.0]}
//! }"#).unwrap();
//! let problem = spec.to_problem().unwrap();
//! assert_eq!(problem.dim(), 2);
//! ```

pub mod differentiable;
pub mod drift;
pub mod error;
pub mod expr;
pub mod hamiltonian;
pub mod lagrangian;
pub mod landscape;
pub mod landscapes;
mod linalg;
pub mod metric;
mod notation;
pub mod parameter;
pub mod problem;
pub mod spec;
mod tape;
pub mod task;
pub mod testbed;

pub use differentiable::{DifferentiableDrift, DifferentiableMetric};
pub use drift::{Affine, Drift, ExprDrift, NoDrift};
pub use error::{ProblemError, Result};
pub use hamiltonian::FieldWorkspace;
pub use lagrangian::Lagrangian;
pub use landscape::{gradient_vec, hessian_mat, Landscape, Points, QuadraticForm};
pub use landscapes::autodiff::{AutoDiff, DifferentiableLoss, Scalar};
pub use landscapes::double_well::DoubleWell;
pub use landscapes::expression::ExprLoss;
pub use landscapes::low_rank::LowRankQuadratic;
pub use landscapes::network::TwoLayerTanh;
pub use landscapes::quadratic::Quadratic;
pub use landscapes::rosenbrock::Rosenbrock;
pub use metric::{Constant, Diagonal, ExprMetric, Identity, Metric};
/// The linear-algebra crate of the public signatures.
pub use nalgebra;
pub use parameter::SpecPath;
pub use problem::{End, Horizon, Problem};
pub use spec::{load_problem, Spec};
