//! Closed-form learning rules (docs/theory.md §4) and their limits.
//!
//! - [`adaptive`]: Adam-like rules from beliefs (gradient filter, curvature normalisation,
//!   the Δt-window rule) and an optimiser for training loops.
//! - [`continual`]: learners across task switches with belief updates, by Monte Carlo.
//! - [`diagonal`]: per-direction rates and trajectories of diagonal quadratics, any γ ≥ 0 and
//!   diagonal metric.
//! - [`lq`]: general linear–quadratic problems (Riccati, equilibrium, policy, cost).
//! - [`drift`]: the rotation and weight-decay cases of Figure 3 in closed form.
//! - [`limits`]: single-step, gradient-descent, Newton and ballistic forms.
//! - [`krylov`]: costs of large quadratics as matrix functions, by Lanczos quadrature.
//! - [`observation`]: the partially observed (linear–quadratic–Gaussian) case, docs/theory.md §5.1.
//! - [`schedule`]: learning-rate schedules from finite-horizon optimal paths (docs/theory.md
//!   §4.1): the closed form on diagonal quadratics and per-step rates from any solution.
//! - [`task_switching`]: the rule under task uncertainty (docs/theory.md §6), toward the prior mean.

pub mod adaptive;
pub mod continual;
pub mod diagonal;
pub mod drift;
pub mod krylov;
pub mod limits;
pub mod lq;
pub mod noisy_quadratic;
pub mod observation;
pub(crate) mod random;
pub mod schedule;
pub mod task_switching;

pub use lq::{LqData, LqRule, RuleError};
