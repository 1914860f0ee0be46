//! Why a solve failed, with the diagnostics needed to act on it.

/// A solver failure. Solvers never panic on a hard problem and never return an unconverged
/// answer as if it were converged: they return one of these.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SolverError {
    /// Newton's method did not converge on the collocation equations.
    #[error(
        "Newton's method did not converge after {iterations} iterations \
         (last scaled step {step:.3e}, largest collocation residual {residual:.3e} near t = {worst_t:.4}){}",
        undefined.as_ref().map_or(String::new(), |u| format!(
            "; its steps went where the problem is undefined: {u}"
        ))
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
        /// What was undefined (the loss, its gradient, the metric, the drift) where a rejected
        /// step went, with the point and a remedy: the likely cause of the failure.
        undefined: Option<String>,
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
    #[error("non-finite value in {what} at t = {t:.4}: the problem is undefined there or overflows (a metric that stopped being positive definite, a logarithm of a negative number, a horizon so short or an end so far that the velocity overflows, ...)")]
    NonFinite {
        /// What was evaluated.
        what: String,
        /// Where.
        t: f64,
    },
    /// The linearised collocation or shooting equations are singular.
    #[error("the Newton matrix (collocation or shooting equations) is singular (near t = {t:.4}); the problem may have no unique solution")]
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
    /// On an infinite horizon, lengthening the truncation did not bring the trajectory to
    /// the equilibrium.
    #[error(
        "the trajectory does not reach the equilibrium: at the truncation T = {t_end:.4} it is \
         still {gap:.3e} away (needed {gap_target:.1e}); the equilibrium may not attract \
         (a flat direction, k = 0) or be reached only after an extremely long time"
    )]
    TruncationLimit {
        /// The longest truncation tried.
        t_end: f64,
        /// `max |θ(T) − θ*|` there.
        gap: f64,
        /// The gap the truncation must reach.
        gap_target: f64,
    },
    /// The forward integration of a rule used up its step budget before the end time.
    #[error(
        "the integrator took {steps} steps and reached only t = {t} of {t_end}: the \
         integrated dynamics are stiff (a very large curvature or mobility) or the time span is \
         too long for the steps an explicit method can take"
    )]
    StepLimit {
        /// Steps taken.
        steps: usize,
        /// Time reached.
        t: f64,
        /// The requested end time.
        t_end: f64,
    },
    /// The solution's error estimate exceeds the requested accuracy.
    #[error(
        "the error estimate {estimate:.3e} exceeds tol = {tol:.1e} (largest near t = {worst_t:.4}): {hint}"
    )]
    AccuracyNotMet {
        /// The largest per-interval error estimate (collocation defect).
        estimate: f64,
        /// The requested tolerance.
        tol: f64,
        /// Where it is largest.
        worst_t: f64,
        /// What to do about it.
        hint: String,
    },
    /// The solve would need more memory than allowed: estimated before allocating.
    #[error(
        "the {solver} would need about {:.2} GB{} at D = {dim} (limit {:.2} GB): {advice}",
        *estimate as f64 / 1e9,
        if *nodes > 1 { format!(" for {nodes} mesh nodes") } else { String::new() },
        *limit as f64 / 1e9
    )]
    MemoryLimit {
        /// Which solver.
        solver: &'static str,
        /// Where the memory goes and what to do.
        advice: &'static str,
        /// Estimated bytes.
        estimate: usize,
        /// Allowed bytes.
        limit: usize,
        /// Mesh nodes (1 where the computation has no mesh).
        nodes: usize,
        /// Parameters.
        dim: usize,
    },
    /// The system refused memory the solve needs (an address-space limit).
    #[error(
        "the system refused {:.2} GB for {what}: it is over this process's memory limit; \
         the direct method (--method direct) works in O(N·D) memory",
        *bytes as f64 / 1e9
    )]
    OutOfMemory {
        /// Bytes requested.
        bytes: usize,
        /// What they were for.
        what: String,
    },
    /// A solve used up its wall-clock budget.
    #[error("the time budget ran out in {what}{}", if residual.is_finite() { format!(" (largest scaled residual {residual:.3e})") } else { String::new() })]
    TimeLimit {
        /// What was running, and where.
        what: String,
        /// The largest scaled residual reached, where known (NaN otherwise).
        residual: f64,
    },
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
    /// Infinite horizon: most likely no extremal from `θ0` reaches the equilibrium (pinned, or
    /// the one nearest `θ0`). Followed from the equilibrium toward `θ0`, the extremal appears
    /// to stop existing on the way: Newton's method fails from a converged neighbouring
    /// solution even for the smallest step, which near a regular solution the implicit
    /// function theorem rules out, so its Jacobian is (nearly) singular there, as at a fold.
    /// A heuristic diagnosis, and the message says so.
    #[error(
        "most likely no extremal from θ0 = {} reaches the equilibrium θ* = {}: followed from \
         θ*, it ceases to exist near θ0 = {} ({reached:.4} of the way; the sign of a fold: \
         Newton's method fails from the converged neighbour even for steps below \
         {min_step:.1e}). For these parameters the optimal path then does not go to this \
         equilibrium: {hint}. Last failure: {cause}",
        vector(theta0),
        vector(theta_star),
        vector(fold)
    )]
    ExtremalEnds {
        /// The requested start point.
        theta0: Box<[f64]>,
        /// The pinned equilibrium.
        theta_star: Box<[f64]>,
        /// The start point where the continuation stalled.
        fold: Box<[f64]>,
        /// Fraction of the way from `θ*` to `θ0` reached.
        reached: f64,
        /// The smallest step tried.
        min_step: f64,
        /// What to do instead.
        hint: &'static str,
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
    #[error("invalid option {name} = {}: {requirement}", number(*value))]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The rule it breaks.
        requirement: &'static str,
    },
}

impl SolverError {
    /// The cause in a few words, the same for every failure of one kind (for tallies such as a
    /// sweep's summary); the `Display` text has the details.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NewtonFailed { .. } => "Newton's method did not converge",
            Self::MeshLimit { .. } => "mesh node limit",
            Self::NonFinite { .. } => "non-finite value",
            Self::Singular { .. } => "singular collocation matrix",
            Self::NoEquilibrium(_) => "no equilibrium",
            Self::NotHyperbolic(_) => "equilibrium not hyperbolic",
            Self::TruncationLimit { .. } => "truncation limit",
            Self::StepLimit { .. } => "integrator step limit",
            Self::AccuracyNotMet { .. } => "accuracy not met",
            Self::MemoryLimit { .. } => "memory limit",
            Self::OutOfMemory { .. } => "out of memory",
            Self::TimeLimit { .. } => "time limit",
            Self::ContinuationFailed { .. } => "continuation stalled",
            Self::ExtremalEnds { .. } => "the extremal ceases to exist (a fold)",
            Self::OptimizerFailed { .. } => "optimiser did not converge",
            Self::Unsupported(_) => "unsupported problem",
            Self::InvalidOption { .. } => "invalid option",
        }
    }
}

/// Which part of the problem is undefined at `(θ, t)`, in words, if any: the loss, its
/// gradient, the metric (not positive definite, so no mobility), or the drift. Solvers add it
/// to a [`SolverError::NonFinite`] so the message names the cause, not only the symptom.
pub(crate) fn culprit(lag: &lossnav_problems::Lagrangian, theta: &[f64], t: f64) -> Option<String> {
    let d = theta.len();
    let bad = |v: &[f64]| v.iter().any(|x| !x.is_finite());
    if bad(theta) {
        // The path itself overflowed: nothing to blame on the problem's parts.
        return None;
    }
    let at = vector(theta);
    // Each cause with its remedy: the problem must be defined wherever an optimal path, or a
    // solver's iterate toward it, may go.
    if !lag.loss().value(theta, t).is_finite() {
        return Some(format!(
            "the loss is not finite at θ = {at} (a loss must be defined wherever the path may \
             go: reparametrise a bounded parameter, e.g. x = exp(u) for ln(x), or add a \
             barrier)"
        ));
    }
    let mut g = vec![0.0; d];
    lag.loss().gradient(theta, t, &mut g);
    if bad(&g) {
        return Some(format!(
            "the gradient of the loss is not finite at θ = {at} (a loss must be differentiable \
             wherever the path may go)"
        ));
    }
    let mut m1 = vec![0.0; d];
    lag.metric().mobility_mul(theta, &vec![1.0; d], &mut m1);
    if bad(&m1) {
        return Some(format!(
            "the metric ({}) is not positive definite, or not finite, at θ = {at} (a metric \
             must be positive definite wherever the path may go, e.g. 1 + x^2 rather than \
             1 − x^2)",
            lag.metric().describe()
        ));
    }
    let mut f = vec![0.0; d];
    lag.drift().value(theta, t, &mut f);
    if bad(&f) {
        return Some(format!(
            "the drift is not finite at θ = {at} (a drift must be defined wherever the path \
             may go)"
        ));
    }
    None
}

/// A vector with four significant digits per entry: `(1.057, 0)`.
pub(crate) fn vector(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{}", Sig4(*x))).collect();
    format!("({})", parts.join(", "))
}

/// Four significant digits, without trailing zeros.
struct Sig4(f64);

impl std::fmt::Display for Sig4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.0;
        if v == 0.0 || !v.is_finite() {
            return write!(f, "{v}");
        }
        let mag = v.abs().log10().floor() as i32;
        if !(-4..9).contains(&mag) {
            return write!(f, "{v:.3e}");
        }
        let decimals = (3 - mag).max(0) as usize;
        let text = format!("{v:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        f.write_str(&text)
    }
}

/// A number as a user would write it: plain between 10⁻⁴ and 10⁹, scientific otherwise (`{}`
/// prints 1e-300 with 300 digits).
pub(crate) fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e9).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}
