//! The claims, one file per family. Each claim is a [`Claim`] constant next to its check,
//! which builds the problem, computes the closed form, solves the same objective numerically
//! and measures the discrepancy; the constant's `tolerance` says why the tolerance is justified.
//!
//! - [`limits`]: deterministic limits (gradient descent, Newton, ballistic, ε-normalisation).
//! - [`geometry`]: metric, drift, controllability, the general LQ rule, conservation, symmetry.
//! - [`errata`]: published closed forms that disagree with the optimality conditions.
//! - [`second_order`]: non-convex landscapes and second-order conditions.
//! - [`beliefs`]: noisy gradients, filtering and estimated curvature.
//! - [`task_switching`]: task switches and continual learning.
//! - [`schedules`]: learning-rate schedules from finite-horizon optimal paths.
//! - [`inverse`]: which assumptions make an observed trajectory optimal (`fit`).
//! - `training` (with the `train` feature): the paper's empirical claim, on real MNIST digits.
//!
//! [`all`] lists every claim in the order of the paper (the docs table and `lossnav check`
//! follow it).

mod beliefs;
mod errata;
mod geometry;
mod inverse;
mod limits;
mod schedules;
mod second_order;
mod task_switching;
#[cfg(feature = "train")]
mod training;

pub use beliefs::{
    gradient_filter_with, noisy_quadratic_gaps, observed_expected_cost_with, paper_adam_with,
};
pub use errata::{
    rotation_end_corrected, rotation_end_published, rotation_endpoint_erratum_with,
    weight_decay_corrected, weight_decay_erratum_with, weight_decay_published,
};
pub use geometry::{rotation_claim, weight_decay_claim};
pub use inverse::{fit_interval_coverage_with, heavy_ball_with};
pub use limits::{natural_gradient_fisher_with, window_rule_limits_with};
pub use schedules::optimal_schedule_decay_with;
pub use second_order::{
    certificate_classifier, kinetic_transient_with, saddle_and_minimum_with, Classifier,
};
pub use task_switching::{
    belief_plasticity_with, task_belief_moments_with, weight_resetting_limit_with, PullOf,
};

#[cfg(feature = "train")]
pub use training::ballistic_vs_sgd_mnist_with;

use super::{Claim, Measurement, Unit};

/// Every claim, in the order of the paper.
pub(super) fn all() -> Vec<Claim> {
    vec![
        second_order::FIG1_ESCAPE,
        second_order::KINETIC_TRANSIENT,
        limits::GD_SHORT_HORIZON,
        limits::NATURAL_GRADIENT_FISHER,
        limits::MOMENTUM_PLANNING,
        limits::CONVERGENCE_RATIO,
        schedules::OPTIMAL_SCHEDULE_DECAY,
        geometry::NATURAL_GRADIENT,
        geometry::ROTATION_DRIFT,
        geometry::WEIGHT_DECAY_DRIFT,
        errata::ROTATION_ENDPOINT_ERRATUM,
        errata::WEIGHT_DECAY_ERRATUM,
        geometry::PARTIAL_CONTROLLABILITY,
        limits::NEWTON_SINGLE_STEP,
        geometry::LQ_RICCATI,
        geometry::HAMILTONIAN_BALANCE,
        limits::BALLISTIC_SPEED_LAW,
        geometry::RADIAL_ISOTROPIC,
        geometry::VALUE_GRADIENT,
        second_order::SADDLE_AND_MINIMUM,
        second_order::SECOND_ORDER_AGREEMENT,
        second_order::LQ_MINIMUM,
        task_switching::TASK_SWITCHING_RULE,
        task_switching::WEIGHT_RESETTING_LIMIT,
        task_switching::TASK_BELIEF_MOMENTS,
        beliefs::OBSERVED_EXPECTED_COST,
        beliefs::CERTAINTY_EQUIVALENCE,
        beliefs::GRADIENT_FILTER_GAIN,
        beliefs::PAPER_ADAM_DERIVATION,
        #[cfg(feature = "train")]
        training::BALLISTIC_VS_SGD_MNIST,
        limits::EPSILON_NORMALISATION,
        limits::WINDOW_RULE_LIMITS,
        beliefs::NOISY_QUADRATIC_ESTIMATED_CURVATURE,
        task_switching::BELIEF_PLASTICITY,
        task_switching::CONTINUAL_LEARNING_ADVANTAGE,
        inverse::FIT_INTERVAL_COVERAGE,
        inverse::HEAVY_BALL,
    ]
}

/// The check's result: `error` against `tolerance`, both in `unit`, with what was compared.
fn measurement(
    error: f64,
    tolerance: f64,
    unit: Unit,
    detail: String,
) -> Result<Measurement, String> {
    Ok(Measurement {
        error,
        tolerance,
        unit,
        detail,
    })
}

/// Decay rate of coordinate `i` measured from a solution between 0 and `t`.
fn measured_rate(sol: &lossnav_solvers::Solution, i: usize, mu: f64, t: f64) -> f64 {
    let (a, b) = (sol.eval(0.0).0[i] - mu, sol.eval(t).0[i] - mu);
    -(b / a).ln() / t
}
