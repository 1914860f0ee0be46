//! Damped Newton on the collocation equations: affine-invariant damping, chord steps while
//! they contract fast, and a typed failure that says where the residual is largest.

use super::*;

impl System<'_> {
    /// Solves the collocation equations on mesh `t` by damped Newton from `y`.
    ///
    /// Damping follows the affine-invariant natural monotonicity test (Deuflhard; also used by
    /// scipy's `solve_bvp`): a step `α Δ` is accepted when the simplified Newton correction at
    /// the trial point, computed with the same factorisation, has shrunk enough.
    ///
    /// On success `ws.f` may belong to the iterate before the last correction: callers that need
    /// the node fields evaluate them again.
    pub fn newton(
        &self,
        t: &[f64],
        y: &mut [f64],
        opts: NewtonOptions,
        ws: &mut Workspace,
    ) -> Result<NewtonReport, SolverError> {
        let mut buffers = std::mem::take(&mut ws.newton);
        let result = self.newton_with(t, y, opts, ws, &mut buffers);
        ws.newton = buffers;
        result
    }

    pub(super) fn newton_with(
        &self,
        t: &[f64],
        y: &mut [f64],
        opts: NewtonOptions,
        ws: &mut Workspace,
        buffers: &mut NewtonBuffers,
    ) -> Result<NewtonReport, SolverError> {
        let d = self.d();
        let n = 2 * d;
        let m = y.len();
        let NewtonBuffers {
            jac,
            res,
            step,
            trial,
            trial_res,
            simplified,
        } = buffers;
        jac.reset(d, t.len() - 1);
        // Every entry is written before it is read (residuals, steps, trial points).
        for v in [
            &mut *res,
            &mut *step,
            &mut *trial,
            &mut *trial_res,
            &mut *simplified,
        ] {
            v.resize(m, 0.0);
        }
        const SIGMA: f64 = 0.2;
        // Chord steps continue while each correction is at most this fraction of the previous:
        // linear convergence at this rate costs less than a new factorisation.
        const CHORD_CONTRACTION: f64 = 0.1;
        const MAX_TRIALS: usize = 10;
        self.eval_nodes(t, y, ws)?;
        self.residual(t, y, ws, res)?;
        let mut last_step = f64::INFINITY;
        // Where a rejected trial point found the problem undefined (the last such place): the
        // likely cause if Newton fails, reported with its failure.
        let mut undefined: Option<String> = None;
        let mut note = |e: SolverError| {
            if let SolverError::NonFinite { what, .. } = e {
                if let Some(cause) = what
                    .strip_prefix("the Hamiltonian field (")
                    .and_then(|c| c.strip_suffix(')'))
                {
                    undefined = Some(cause.to_string());
                }
            }
        };
        for iter in 0..opts.max_iterations {
            if opts.deadline.is_some_and(|d| std::time::Instant::now() > d)
                || crate::budget::Budget::cancelled()
            {
                return Err(SolverError::TimeLimit {
                    what: format!(
                        "the boundary-value solver's Newton iteration {iter} (mesh of {} nodes)",
                        t.len()
                    ),
                    residual: last_step,
                });
            }
            if iter > 0 {
                // `reset` left it zero for the first.
                jac.clear();
            }
            self.jacobian(t, y, ws, jac);
            if let Err(s) = jac.factor() {
                let node = (s.column / n).min(t.len() - 1);
                return Err(SolverError::Singular { t: t[node] });
            }
            for (s, r) in step.iter_mut().zip(res.iter()) {
                *s = -r;
            }
            jac.solve(step);
            if !step.iter().all(|v| v.is_finite()) {
                return Err(SolverError::Singular { t: t[0] });
            }
            let scaled = scaled_norm(step, y);
            last_step = scaled;
            let cost = dot(step, step);
            let mut alpha = 1.0;
            let mut accepted = false;
            for _ in 0..MAX_TRIALS {
                for k in 0..m {
                    trial[k] = y[k] + alpha * step[k];
                }
                let ok = match self.eval_nodes(t, trial, ws) {
                    Ok(()) => self.residual(t, trial, ws, trial_res).is_ok(),
                    Err(e) => {
                        note(e);
                        false
                    }
                };
                if ok {
                    for (s, r) in simplified.iter_mut().zip(trial_res.iter()) {
                        *s = -r;
                    }
                    jac.solve(simplified);
                    let trial_cost = dot(simplified, simplified);
                    if trial_cost.is_finite() && trial_cost < (1.0 - 2.0 * alpha * SIGMA) * cost {
                        accepted = true;
                        break;
                    }
                    if alpha == 1.0 && scaled <= opts.tol {
                        // A full step already within tolerance that the monotonicity test
                        // cannot confirm (at the final tolerance: rounding level).
                        accepted = true;
                        break;
                    }
                }
                alpha *= 0.5;
            }
            if !accepted {
                // Take the smallest trial step if it is defined; Newton may recover.
                if self.eval_nodes(t, trial, ws).is_err()
                    || self.residual(t, trial, ws, trial_res).is_err()
                {
                    self.eval_nodes(t, y, ws)?;
                    return Err(self.newton_failure(t, y, ws, iter + 1, scaled, undefined));
                }
            }
            y.copy_from_slice(trial);
            res.copy_from_slice(trial_res);
            if alpha == 1.0 && scaled <= opts.tol {
                return Ok(NewtonReport {
                    iterations: iter + 1,
                });
            }
            if !(accepted && alpha == 1.0) {
                continue;
            }
            // After a full step the simplified correction (old factorisation, new residual) is
            // the next Newton step to first order. While successive corrections contract fast,
            // keep applying them with the same factorisation (chord steps: one residual and one
            // triangular solve each) instead of assembling and factoring a new Jacobian; stop
            // once a correction, or the error predicted to remain after it, is below tolerance.
            // Sizes in the scaled norm of the tolerance.
            let (mut previous, mut first) = (scaled, true);
            loop {
                let size = scaled_norm(simplified, y);
                // The observed contraction rate of the chord steps. After the full step the
                // ratio of correction to step is Newton's quadratic reduction; chord steps
                // with that step's Jacobian contract about twice as slowly (for `F = y + y²`
                // from `y₀`: ratio `y₀`, chord rate `2y₀`).
                let rate = if first { 2.0 } else { 1.0 } * size / previous;
                // Applying this correction leaves about `rate/(1 − rate)` times it (Hairer &
                // Wanner's stopping rule for simplified Newton), required below half the
                // tolerance for a margin on the estimated rate. NaN fails every test.
                if rate < 1.0 && rate / (1.0 - rate) * size <= 0.5 * opts.tol {
                    for (yk, sk) in y.iter_mut().zip(simplified.iter()) {
                        *yk += sk;
                    }
                    return Ok(NewtonReport {
                        iterations: iter + 1,
                    });
                }
                let contracting = rate <= CHORD_CONTRACTION;
                if !contracting {
                    break;
                }
                for k in 0..m {
                    trial[k] = y[k] + simplified[k];
                }
                if self.eval_nodes(t, trial, ws).is_err()
                    || self.residual(t, trial, ws, trial_res).is_err()
                {
                    // Keep `y` and its residual; the next Newton step starts from there.
                    self.eval_nodes(t, y, ws)?;
                    break;
                }
                y.copy_from_slice(trial);
                res.copy_from_slice(trial_res);
                for (s, r) in simplified.iter_mut().zip(res.iter()) {
                    *s = -r;
                }
                jac.solve(simplified);
                (previous, first) = (size, false);
            }
        }
        self.eval_nodes(t, y, ws)?;
        Err(self.newton_failure(t, y, ws, opts.max_iterations, last_step, undefined))
    }

    pub(super) fn newton_failure(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        iterations: usize,
        step: f64,
        undefined: Option<String>,
    ) -> SolverError {
        let d = self.d();
        let n = 2 * d;
        let mut res = vec![0.0; y.len()];
        let _ = self.residual(t, y, ws, &mut res);
        let (mut worst, mut worst_t) = (0.0_f64, t[0]);
        for i in 0..t.len() - 1 {
            let h = t[i + 1] - t[i];
            let row = d + i * n;
            let r = res[row..row + n]
                .iter()
                .fold(0.0_f64, |m, v| m.max(v.abs()))
                / h;
            if r > worst {
                worst = r;
                worst_t = t[i] + 0.5 * h;
            }
        }
        SolverError::NewtonFailed {
            iterations,
            step,
            residual: worst,
            worst_t,
            undefined,
        }
    }
}
