//! Why a solve failed, with the diagnostics needed to act on it.

/// A solver failure. Solvers never panic on a hard problem and never return an unconverged
/// answer as if it were converged: they return one of these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SolverError {
    /// Newton's method did not converge on the collocation equations.
    #[error(
        "Newton's method did not converge after {iterations} iterations \
         (last scaled step {step:.3e}, largest collocation residual {residual:.3e} near t = {worst_t:.4})"
    )]
    NewtonFailed {
        /// Iterations taken.
        iterations: usize,
        /// Scaled size of the last Newton step.
        step: f64,
        /// Largest collocation residual.
        residual: f64,
        /// Where on the mesh the residual is largest.
        worst_t: f64,
    },
    /// The mesh would exceed its node limit before reaching the tolerance.
    #[error(
        "the mesh reached {nodes} nodes without meeting tol = {tol:.1e} \
         (largest error estimate {max_error:.3e} near t = {worst_t:.4})"
    )]
    MeshLimit {
        /// Nodes of the last mesh.
        nodes: usize,
        /// The requested tolerance.
        tol: f64,
        /// The largest per-interval error estimate.
        max_error: f64,
        /// Where it is.
        worst_t: f64,
    },
    /// The field or a boundary condition evaluated to NaN or infinity.
    #[error("non-finite value in {what} at t = {t:.4}: the problem is undefined there (a metric that stopped being positive definite, a logarithm of a negative number, ...)")]
    NonFinite {
        /// What was evaluated.
        what: String,
        /// Where.
        t: f64,
    },
    /// The linearised collocation equations are singular.
    #[error("the collocation Jacobian is singular (near t = {t:.4}); the problem may have no unique solution")]
    Singular {
        /// Where the zero pivot appeared.
        t: f64,
    },
    /// No equilibrium could be found for an infinite-horizon problem.
    #[error("no equilibrium found: {0}")]
    NoEquilibrium(String),
    /// The linearisation at the equilibrium has no stable/unstable splitting.
    #[error("the equilibrium is not hyperbolic: {0}")]
    NotHyperbolic(String),
    /// Continuation could not carry the solution to the requested problem.
    #[error("continuation in {parameter} stalled at {reached:.4} of the way (step below {min_step:.1e}): {cause}")]
    ContinuationFailed {
        /// Which parameter was continued.
        parameter: String,
        /// Fraction of the way reached.
        reached: f64,
        /// The smallest step tried.
        min_step: f64,
        /// The failure at the last attempted step.
        cause: Box<SolverError>,
    },
    /// The optimiser of the direct method stopped without converging.
    #[error("the optimiser stopped after {iterations} iterations without converging: {reason}")]
    OptimizerFailed {
        /// Iterations taken.
        iterations: usize,
        /// Norm of the final gradient of the discretised objective.
        gradient_norm: f64,
        /// Why it stopped.
        reason: String,
    },
    /// The problem is outside what this solver handles.
    #[error("unsupported problem: {0}")]
    Unsupported(String),
    /// An option is out of range.
    #[error("invalid option {name} = {value}: {requirement}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The rule it breaks.
        requirement: &'static str,
    },
}
