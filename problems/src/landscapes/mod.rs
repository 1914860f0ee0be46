//! Built-in loss landscapes.

pub mod autodiff;
pub mod double_well;
pub mod expression;
pub mod low_rank;
pub mod network;
pub mod quadratic;
pub mod rosenbrock;
