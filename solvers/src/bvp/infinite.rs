//! Infinite horizons: the solve toward the equilibrium, with the stable-manifold projection
//! at a truncation time lengthened until the neglected tail is below `tol`, and continuation
//! in the start point when Newton fails from the linearised path.

use super::*;

impl Bvp {
    pub(super) fn solve_infinite(
        &self,
        problem: &Problem,
        user: Option<&Guess>,
    ) -> Result<Solution, SolverError> {
        let lag = problem.lagrangian();
        let d = lag.dim();
        let target = Target::new(problem)?;
        let end = projection_end(&target, lag);
        let theta0 = problem.theta0().as_slice();
        let gap_target = target.gap_target(self.tol);
        let mut t_end = self
            .truncation
            .unwrap_or_else(|| target.initial_truncation(theta0, self.tol));
        let mut ws = Workspace::new(d);
        let t0 = target.graded_mesh(t_end, self.initial_intervals);
        let mut state = match user {
            Some(g) => from_guess(&t0, g),
            None => {
                let y0 = target.linear_path(&t0, theta0);
                State { t: t0, y: y0 }
            }
        };
        if user.is_none() && lag.has_affine_field() && self.adapt_mesh {
            let sys = System::new(lag, theta0, &end);
            state = self.premesh(&sys, &target, state, &mut ws)?;
        }
        let mut total = Stats::default();
        let mut continuation = None;
        // The end gap of the last direct solve, and whether lengthening has stopped helping.
        let mut last_gap: Option<f64> = None;
        let mut stuck = false;
        // Horizons that are lengthened, and extremals that turn out to end elsewhere, are
        // solved to the continuation's step tolerance; only the accepted one to `tol`. An
        // affine field has no neglected nonlinearity and one extremal: its first horizon is
        // solved to `tol` at once.
        let loose = Bvp {
            tol: if lag.has_affine_field() {
                self.tol
            } else {
                self.tol.max(STEP_TOL)
            },
            ..self.clone()
        };
        for lengthening in 0.. {
            let sys = System::new(lag, theta0, &end);
            let attempt = if stuck {
                None
            } else {
                Some(loose.adapt(&sys, state.clone(), &mut ws))
            };
            let loosely = attempt.as_ref().is_some_and(|a| a.is_ok()) && loose.tol > self.tol;
            let (solved, stats) = match attempt {
                Some(Ok(ok)) => ok,
                Some(Err(e))
                    if !self.continuation
                        || matches!(
                            e,
                            SolverError::MemoryLimit { .. } | SolverError::OutOfMemory { .. }
                        ) =>
                {
                    return Err(e)
                }
                // A failed direct solve, or one whose end does not approach θ*: continuation.
                _ => {
                    // From the equilibrium (trivially solved) to θ0.
                    let make = |s: f64| {
                        let th: Vec<f64> = (0..d)
                            .map(|j| target.theta_star[j] + s * (theta0[j] - target.theta_star[j]))
                            .collect();
                        (lag.clone(), th)
                    };
                    let at_rest: Vec<f64> = state
                        .t
                        .iter()
                        .flat_map(|_| target.theta_star.iter().chain(&target.p_star).copied())
                        .collect();
                    let (st, stats, steps) = self
                        .continuation(
                            "theta0",
                            &end,
                            State {
                                t: state.t.clone(),
                                y: at_rest,
                            },
                            &make,
                            // A step starts from the previous solution, so Newton converges in a
                            // few iterations when the step is short enough; one that needs more
                            // is too long and is halved at once. Where the extremal stops existing
                            // (a fold: `escape` meets them across its grid), every try would
                            // otherwise run to the full budget before the step shrinks.
                            THETA0_STEP_NEWTON,
                            &mut ws,
                        )
                        .map_err(|e| match e {
                            SolverError::ContinuationFailed {
                                reached,
                                min_step,
                                cause,
                                ..
                            // A fold: steps from a converged neighbour fail for Newton's
                            // method (not for a mesh, memory or time budget, and not at the
                            // very start, where a badly scaled problem fails the same way).
                            } if reached > 0.0
                                && matches!(
                                    *cause,
                                    SolverError::NewtonFailed { .. }
                                        | SolverError::Singular { .. }
                                ) =>
                            {
                                SolverError::ExtremalEnds {
                                    theta0: theta0.into(),
                                    theta_star: target.theta_star.as_slice().into(),
                                    fold: make(reached).1.into(),
                                    reached,
                                    min_step,
                                    hint: if matches!(
                                        problem.end(),
                                        End::Equilibrium { guess: Some(_) }
                                    ) {
                                        "pin another one (`end`), or leave `end` out; `lossnav \
                                     escape` maps where this happens"
                                    } else {
                                        "it is the equilibrium nearest θ0; pin another one with \
                                     `end`, and `lossnav escape` maps where each is reached"
                                    },
                                    cause,
                                }
                            }
                            other => other,
                        })?;
                    continuation = Some(("theta0".to_string(), steps));
                    (st, stats)
                }
            };
            total.absorb(stats);
            state = solved;
            let mut gap = target.gap(&state.y[state.y.len() - 2 * d..state.y.len() - d]);
            if loosely && (self.truncation.is_some() || gap <= gap_target) {
                // The accepted horizon: to the requested tolerance, from the loose solution.
                let (solved, stats) = self.adapt(&sys, state, &mut ws)?;
                total.absorb(stats);
                state = solved;
                gap = target.gap(&state.y[state.y.len() - 2 * d..state.y.len() - d]);
            }
            // Affine fields too: their projection is exact at any truncation, but the gap also
            // tells a trajectory that never reaches θ* (k = 0) from one that does.
            if self.truncation.is_some() || gap <= gap_target {
                break;
            }
            // Each lengthening by half shrinks the gap of an extremal that settles at θ* by
            // orders of magnitude (like e^{-r T/2}, and T starts where e^{-r T} is the target).
            // One that does not halve it has found another extremal, whose end stays away
            // from θ* (toward another equilibrium): more lengthenings would only repeat that,
            // so the continuation from θ* takes over (where the extremal does not exist, it
            // finds the fold in a tenth of the time).
            if continuation.is_none() && self.continuation {
                stuck = last_gap.is_some_and(|g| gap > 0.5 * g);
                last_gap = Some(gap);
            } else {
                // After the continuation, lengthening starts from its solution again.
                stuck = false;
            }
            if lengthening == MAX_LENGTHENINGS {
                return Err(SolverError::TruncationLimit {
                    t_end,
                    gap,
                    gap_target,
                });
            }
            t_end = self.lengthen(&target, &mut state, t_end, d);
        }
        let tail = target.tail(*state.t.last().unwrap());
        Ok(self.assemble(
            problem,
            state,
            total,
            continuation,
            Some(&target),
            Some(tail),
            &mut ws,
        ))
    }

    /// Lengthens the truncation `t_end` by half, extending `state` by the linearised path
    /// from its last node; returns the new truncation.
    pub(super) fn lengthen(&self, target: &Target, state: &mut State, t_end: f64, d: usize) -> f64 {
        let t_old = t_end;
        let t_end = 1.5 * t_end;
        let extra = self.initial_intervals / 2 + 1;
        let last_node = state.y[state.y.len() - 2 * d..].to_vec();
        let times: Vec<f64> = (1..=extra)
            .map(|i| t_old + (t_end - t_old) * i as f64 / extra as f64)
            .collect();
        let offsets: Vec<f64> = times.iter().map(|t| t - t_old).collect();
        state.t.extend(&times);
        state
            .y
            .extend(target.linear_path(&offsets, &last_node[..d]));
        t_end
    }
}
