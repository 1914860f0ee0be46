//! Training real networks with the derived rules (the paper's Figure 2e,f), on CPU with candle.
//!
//! - [`data`]: the UCI 8×8 digits embedded in `smartcore`, MNIST and CIFAR-10 loaders;
//! - [`model`]: the paper's MLP and CNN and their digits-sized versions;
//! - [`optimizer`]: the framework's rules as [`candle_nn::Optimizer`]s;
//! - [`run`]: the training loop, learning-rate tuning on a validation split;
//! - [`schedule`]: gradient descent that follows a learning-rate schedule (`lossnav schedule`);
//! - [`optimal`]: a network's full-batch loss as a landscape (exact gradients and
//!   Hessian–vector products), and the continuous-time rules on it.
//!
//! Training sits beside the solvers, not on top of them: it consumes the rules of
//! [`crate::rules::adaptive`], and [`optimal`] feeds a network's loss back to the
//! direct solver as a landscape.

pub mod data;
pub mod model;
pub mod optimal;
pub mod optimizer;
pub mod run;
pub mod schedule;
