//! Warm starts: a problem close to one already solved (the neighbouring point of a sweep)
//! starts Newton on the previous solution's final mesh, from its values at the nodes, instead
//! of the coarse first mesh and the linearised guess. What a warm start must not change is the
//! answer: the same tolerance is met on a mesh the error estimate accepts, and for an infinite
//! horizon the end must still approach this problem's equilibrium within the gap target;
//! anything else falls back to the cold solve.

use super::*;

impl Bvp {
    /// Solves `problem` starting from `previous`, a solution of a nearby problem (same
    /// dimension and kind of horizon): Newton on `previous`'s final mesh (times scaled to a
    /// different finite horizon), then the usual mesh adaptation to [`Bvp::tol`], and the
    /// second-order certificate when [`Bvp::second_order`] is set. Where that start does not
    /// lead to an accepted solution (Newton fails, the mesh does not fit, or an infinite
    /// horizon's end does not approach the equilibrium after three lengthenings), and for
    /// affine fields (one Newton step either way), the result is [`Bvp::solve`]'s: a warm
    /// start never returns what a cold solve would refuse, and never fails where it succeeds
    /// except on the time budget. Where a problem has several extremals, the start selects
    /// the one on the previous solution's branch (as [`Bvp::solve_from`]); the certificate
    /// still says what that extremal is.
    ///
    /// ```
    /// use lossnav_problems::load_problem;
    /// use lossnav_solvers::Bvp;
    /// # let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../problems/specs/figure1-double-well-infinite.json");
    /// let problem = load_problem(spec).unwrap();
    /// let bvp = Bvp::default();
    /// let first = bvp.solve(&problem).unwrap();
    /// let lag = problem.lagrangian().clone().with_gamma(problem.lagrangian().gamma() + 0.01);
    /// let next = problem.with_lagrangian(lag).unwrap();
    /// let warm = bvp.solve_near(&next, &first).unwrap();
    /// let cold = bvp.solve(&next).unwrap();
    /// assert!((warm.cost - cold.cost).abs() < 1e-7);
    /// ```
    pub fn solve_near(
        &self,
        problem: &Problem,
        previous: &Solution,
    ) -> Result<Solution, SolverError> {
        self.validate()?;
        let _budget = Budget::start(self.max_seconds);
        match self.warm(problem, previous) {
            Some(Ok(s)) => {
                if let Ok(s) = s.finite(problem.lagrangian()) {
                    return Ok(self.certified(problem, s));
                }
            }
            Some(Err(e @ SolverError::TimeLimit { .. })) => return Err(e),
            _ => {}
        }
        self.solve(problem)
    }

    /// The warm solve, or `None` where `previous` cannot start it.
    fn warm(
        &self,
        problem: &Problem,
        previous: &Solution,
    ) -> Option<Result<Solution, SolverError>> {
        let lag = problem.lagrangian();
        let d = lag.dim();
        let nodes = previous.t.len();
        // An affine field is solved by one Newton step on a mesh placed for it (the cold
        // solve's premesh): a previous mesh can only cost more.
        if !self.adapt_mesh
            || lag.has_affine_field()
            || previous.theta.dim() != d
            || previous.p.dim() != d
            || previous.theta.len() != nodes
            || previous.p.len() != nodes
            || nodes < 2
            || previous.tail.is_some() != matches!(problem.horizon(), Horizon::Infinite)
            // A mesh from t = 0, strictly increasing and finite (the fields are public).
            || previous.t[0] != 0.0
            || !previous
                .t
                .windows(2)
                .all(|w| w[0] < w[1] && w[1].is_finite())
            // A truncation the caller fixed is the cold solve's own mesh end, not the
            // previous solution's.
            || (self.truncation.is_some() && matches!(problem.horizon(), Horizon::Infinite))
        {
            return None;
        }
        if let Err(e) = self.check_memory(d, nodes) {
            return Some(Err(e));
        }
        let mut y = Vec::with_capacity(nodes * 2 * d);
        for (th, p) in previous.theta.iter().zip(previous.p.iter()) {
            y.extend_from_slice(th);
            y.extend_from_slice(p);
        }
        let theta0 = problem.theta0().as_slice();
        let mut ws = Workspace::new(d);
        match problem.horizon() {
            Horizon::Finite(t_end) => {
                let end = finite_end(problem)?;
                let last = *previous.t.last()?;
                // Also refuses NaN.
                if last.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                    return None;
                }
                let t: Vec<f64> = previous.t.iter().map(|&s| s * (t_end / last)).collect();
                let sys = System::new(lag, theta0, &end);
                let (state, stats) = match self.adapt(&sys, State { t, y }, &mut ws) {
                    Ok(ok) => ok,
                    Err(e @ SolverError::TimeLimit { .. }) => return Some(Err(e)),
                    Err(_) => return None,
                };
                Some(Ok(
                    self.assemble(problem, state, stats, None, None, None, &mut ws)
                ))
            }
            Horizon::Infinite => {
                let target = match Target::new(problem) {
                    Ok(t) => t,
                    Err(e) => return Some(Err(e)),
                };
                let end = projection_end(&target, lag);
                let sys = System::new(lag, theta0, &end);
                let gap_target = target.gap_target(self.tol);
                let mut state = State {
                    t: previous.t.clone(),
                    y,
                };
                let mut t_end = *previous.t.last()?;
                let mut stats = Stats::default();
                // The end must approach this problem's equilibrium as closely as a cold solve
                // requires: a truncation now too short is lengthened, as the cold solve does
                // (up to three times; beyond that the cold solve takes over).
                for lengthening in 0..=3 {
                    let (solved, st) = match self.adapt(&sys, state, &mut ws) {
                        Ok(ok) => ok,
                        Err(e @ SolverError::TimeLimit { .. }) => return Some(Err(e)),
                        Err(_) => return None,
                    };
                    stats.absorb(st);
                    state = solved;
                    let gap = target.gap(&state.y[state.y.len() - 2 * d..state.y.len() - d]);
                    if self.truncation.is_some() || gap <= gap_target {
                        break;
                    }
                    if lengthening == 3 {
                        return None;
                    }
                    t_end = self.lengthen(&target, &mut state, t_end, d);
                }
                let tail = target.tail(*state.t.last()?);
                Some(Ok(self.assemble(
                    problem,
                    state,
                    stats,
                    None,
                    Some(&target),
                    Some(tail),
                    &mut ws,
                )))
            }
        }
    }
}
