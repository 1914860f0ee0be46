//! Equilibria `(θ*, p*)` of the Hamiltonian field: the targets of infinite-horizon problems.

use nalgebra::{DMatrix, DVector};

use lossnav_problems::{FieldWorkspace, Lagrangian, Points};

use crate::error::SolverError;

/// An equilibrium of the Hamiltonian field and its linearisation.
#[derive(Debug, Clone)]
pub struct Equilibrium {
    /// `θ*`.
    pub theta: DVector<f64>,
    /// `p*` (zero without drift).
    pub p: DVector<f64>,
    /// The `2D×2D` field Jacobian at the equilibrium.
    pub jacobian: DMatrix<f64>,
    /// Newton iterations used to polish it.
    pub iterations: usize,
}

/// Whether the field is affine (quadratic loss, constant metric, affine drift, nothing
/// time-dependent) with a nonsingular Jacobian: then it has exactly one equilibrium, which
/// Newton reaches in one step from anywhere, so the search starts at θ0. A descent path would
/// leave for infinity on an indefinite loss whose drift keeps the problem bounded. A singular
/// Jacobian (k = 0, a flat direction) has a continuum of equilibria, and the descent picks the
/// one the loss leads to. Decided by singular values up to `2D = 512`; beyond, the descent.
fn unique_affine_equilibrium(lag: &Lagrangian, theta0: &DVector<f64>) -> bool {
    let d = lag.dim();
    if !(2 * d <= 512
        && lag.loss().has_constant_hessian()
        && !lag.loss().is_time_dependent()
        && lag.metric().is_constant()
        && lag.drift().is_affine()
        && !lag.drift().is_time_dependent())
    {
        return false;
    }
    let mut jac = DMatrix::zeros(2 * d, 2 * d);
    let mut ws = FieldWorkspace::new(d);
    lag.field_jacobian(0.0, theta0.as_slice(), &vec![0.0; d], &mut jac, &mut ws);
    if !jac.iter().all(|v| v.is_finite()) {
        return false;
    }
    let sv = jac.singular_values();
    sv.min() > 1e-10 * sv.max()
}

/// Finds the equilibrium nearest `guess`, or (without a guess) the one reached from `theta0`.
///
/// Without a guess the start is the end of a descent path from `θ0` (natural-gradient descent
/// with small, backtracked steps, so it follows the gradient-flow path into the basin of
/// `θ0`). Newton's method on the full field `F(θ, p) = 0` then polishes it, which also moves
/// `θ*` away from the loss minimum where a drift shifts it.
pub fn find_equilibrium(
    lag: &Lagrangian,
    theta0: &DVector<f64>,
    guess: Option<&DVector<f64>>,
) -> Result<Equilibrium, SolverError> {
    let d = lag.dim();
    // Newton works with the dense 2D×2D field Jacobian (and, for a singular mobility, an SVD
    // of it): refused before allocating when that is beyond memory, not aborted.
    crate::memory::reserve(
        usize::try_from(8 * 6 * (2 * d as u128) * (2 * d as u128)).unwrap_or(usize::MAX),
        crate::memory::DEFAULT_MAX_MEMORY,
        "equilibrium search",
        "Newton's method on the field uses dense 2D×2D matrices; pin the end with a fixed \
         point or use a finite horizon with the direct method",
        1,
        d,
    )?;
    let start = match guess {
        Some(g) => g.clone(),
        None if unique_affine_equilibrium(lag, theta0) => theta0.clone(),
        None => descend(lag, theta0),
    };
    // p from the θ-equation f + Mp = 0 when G exists, else 0.
    let mut f = vec![0.0; d];
    lag.drift().value(start.as_slice(), 0.0, &mut f);
    let mut p0 = vec![0.0; d];
    if lag.metric().is_invertible() {
        lag.metric().metric_mul(start.as_slice(), &f, &mut p0);
        p0.iter_mut().for_each(|v| *v = -*v);
    }
    let mut y: DVector<f64> = DVector::from_iterator(2 * d, start.iter().copied().chain(p0));
    let mut ws = FieldWorkspace::new(d);
    let mut jac = DMatrix::zeros(2 * d, 2 * d);
    // A singular constant mobility conserves Nᵀθ (N spans its null space): equilibria form a
    // continuum, and the one reached keeps Nᵀθ = Nᵀθ0. These extra rows pin it down.
    let null = lag
        .metric()
        .constant_mobility()
        .and_then(|m| null_space(&m));
    let extra = null.as_ref().map_or(0, |n| n.ncols());
    let eval = |y: &DVector<f64>, ws: &mut FieldWorkspace| -> DVector<f64> {
        let (mut a, mut b) = (vec![0.0; d], vec![0.0; d]);
        lag.field(
            0.0,
            &y.as_slice()[..d],
            &y.as_slice()[d..],
            &mut a,
            &mut b,
            ws,
        );
        let mut r = DVector::zeros(2 * d + extra);
        r.rows_mut(0, d).copy_from_slice(&a);
        r.rows_mut(d, d).copy_from_slice(&b);
        if let Some(n) = &null {
            let dtheta = DVector::from_iterator(d, (0..d).map(|j| y[j] - theta0[j]));
            r.rows_mut(2 * d, extra)
                .copy_from(&(n.transpose() * dtheta));
        }
        r
    };
    let scale = 1.0 + y.amax();
    let mut r = eval(&y, &mut ws);
    for iter in 0..100 {
        if !r.iter().all(|v| v.is_finite()) {
            return Err(SolverError::NoEquilibrium(format!(
                "the field is not finite at θ = {:?}",
                &y.as_slice()[..d]
            )));
        }
        lag.field_jacobian(
            0.0,
            &y.as_slice()[..d],
            &y.as_slice()[d..],
            &mut jac,
            &mut ws,
        );
        if r.amax() <= 1e-14 * scale {
            return Ok(Equilibrium {
                theta: DVector::from_column_slice(&y.as_slice()[..d]),
                p: DVector::from_column_slice(&y.as_slice()[d..]),
                jacobian: jac,
                iterations: iter,
            });
        }
        let step = if let Some(n) = &null {
            let mut aug = DMatrix::zeros(2 * d + extra, 2 * d);
            aug.view_mut((0, 0), (2 * d, 2 * d)).copy_from(&jac);
            aug.view_mut((2 * d, 0), (extra, d))
                .copy_from(&n.transpose());
            let svd = aug.svd(true, true);
            let sv = &svd.singular_values;
            if sv.min() <= 1e-12 * sv.max() {
                None
            } else {
                svd.solve(&(-&r), 0.0).ok()
            }
        } else if 2 * d >= crate::target::riccati::BLOCKED_MIN_ORDER {
            // faer's blocked LU: nalgebra's unblocked one took seconds at D = 1000. Singular
            // when a pivot is exactly zero, as for nalgebra's `solve`.
            use faer::linalg::solvers::Solve;
            let lu = faer::Mat::<f64>::from_fn(2 * d, 2 * d, |i, j| jac[(i, j)]).partial_piv_lu();
            let u = lu.U();
            (0..2 * d)
                .all(|i| u[(i, i)] != 0.0 && u[(i, i)].is_finite())
                .then(|| {
                    let x = lu.solve(faer::Mat::<f64>::from_fn(2 * d, 1, |i, _| -r[i]));
                    DVector::from_fn(2 * d, |i, _| x[(i, 0)])
                })
        } else {
            jac.clone().lu().solve(&(-&r))
        }
        .ok_or_else(|| {
            SolverError::NoEquilibrium(format!(
                "the field Jacobian is singular at θ = {:?} (a degenerate stationary point)",
                &y.as_slice()[..d]
            ))
        })?;
        // Backtrack on ‖F‖.
        let mut alpha = 1.0;
        let norm = r.norm();
        loop {
            let trial = &y + &step * alpha;
            let rt = eval(&trial, &mut ws);
            if rt.iter().all(|v| v.is_finite()) && rt.norm() < (1.0 - 1e-4 * alpha) * norm {
                y = trial;
                r = rt;
                break;
            }
            alpha *= 0.5;
            if alpha < 1e-10 {
                // Converged to rounding: accept if the residual is tiny.
                if norm <= 1e-10 * scale {
                    return Ok(Equilibrium {
                        theta: DVector::from_column_slice(&y.as_slice()[..d]),
                        p: DVector::from_column_slice(&y.as_slice()[d..]),
                        jacobian: jac,
                        iterations: iter,
                    });
                }
                return Err(SolverError::NoEquilibrium(format!(
                    "Newton's method stalled at θ = {:?} with |F| = {norm:.3e}",
                    &y.as_slice()[..d]
                )));
            }
        }
    }
    Err(SolverError::NoEquilibrium(
        "Newton's method did not converge in 100 iterations".into(),
    ))
}

/// Orthonormal basis of the null space of a symmetric positive semi-definite matrix, if any.
fn null_space(m: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let eig = m.clone().symmetric_eigen();
    let max = eig.eigenvalues.amax();
    let cols: Vec<usize> = (0..m.nrows())
        .filter(|&i| eig.eigenvalues[i].abs() <= 1e-12 * max * m.nrows() as f64)
        .collect();
    if cols.is_empty() {
        return None;
    }
    Some(DMatrix::from_fn(m.nrows(), cols.len(), |i, j| {
        eig.eigenvectors[(i, cols[j])]
    }))
}

/// Natural-gradient descent from `theta0` with steps small enough to follow the flow path.
pub(crate) fn descend(lag: &Lagrangian, theta0: &DVector<f64>) -> DVector<f64> {
    descend_many(lag, std::slice::from_ref(theta0))
        .pop()
        .unwrap_or_else(|| theta0.clone())
}

/// [`descend`] from each of `starts`, in lockstep: every iteration evaluates the gradients at
/// all points still descending in one batch ([`Landscape::gradients`]), and every round of the
/// line searches the losses at all trial points in one batch (one pass over an expression's
/// tape, one call into a Python loss), instead of one call per point. Each point follows
/// exactly the steps of its own descent. Stops where the solve's time budget does (the caller
/// then finds a nonzero gradient and discards the point).
///
/// [`Landscape::gradients`]: lossnav_problems::Landscape::gradients
pub(crate) fn descend_many(lag: &Lagrangian, starts: &[DVector<f64>]) -> Vec<DVector<f64>> {
    let d = lag.dim();
    let loss = lag.loss();
    let m = starts.len();
    if m == 0 || d == 0 {
        return starts.to_vec();
    }
    // Point i is theta[i·d..(i+1)·d]; `pts` holds a batch of points (the active ones, or their
    // trial steps), `g` the gradients and `vals` the losses of a batch, in batch order; all
    // are reused every iteration.
    let mut theta: Vec<f64> = starts.iter().flat_map(|s| s.iter().copied()).collect();
    let times = vec![0.0; m];
    let mut value = vec![0.0; m];
    loss.values(Points::new(&theta, d, d, &times), &mut value);
    let (mut pts, mut vals) = (vec![0.0; m * d], vec![0.0; m]);
    let mut alpha = vec![1.0_f64; m];
    let mut active: Vec<usize> = (0..m).collect();
    let mut g = vec![0.0; m * d];
    let mut dir = vec![0.0; m * d];
    let mut dir_norm = vec![0.0; m];
    let mut decrease = vec![0.0; m];
    let amax = |x: &[f64]| x.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
    let deadline = crate::budget::Budget::deadline();
    for iteration in 0..200_000 {
        if active.is_empty() {
            break;
        }
        // Every iteration: one holds a batch of gradients at every start still descending,
        // which at large D or with an expensive loss can take a while.
        if iteration > 0
            && (deadline.is_some_and(|t| std::time::Instant::now() > t)
                || crate::budget::Budget::cancelled())
        {
            break;
        }
        let k = active.len();
        for (slot, &i) in active.iter().enumerate() {
            pts[slot * d..(slot + 1) * d].copy_from_slice(&theta[i * d..(i + 1) * d]);
        }
        loss.gradients(
            Points::new(&pts[..k * d], d, d, &times[..k]),
            &mut g[..k * d],
            d,
        );
        let mut searching = Vec::with_capacity(k);
        for (slot, &i) in active.iter().enumerate() {
            let (th, gi) = (&theta[i * d..(i + 1) * d], &g[slot * d..(slot + 1) * d]);
            let di = &mut dir[i * d..(i + 1) * d];
            lag.metric().mobility_mul(th, gi, di);
            dir_norm[i] = amax(di);
            if !dir_norm[i].is_finite() || dir_norm[i] <= 1e-10 {
                continue;
            }
            // Cap the step length so the path stays close to the gradient-flow curve.
            let cap = 0.02 * (1.0 + amax(th));
            alpha[i] = (alpha[i] * 2.0).min(cap / dir_norm[i]);
            decrease[i] = gi.iter().zip(di.iter()).map(|(a, b)| a * b).sum();
            searching.push(i);
        }
        // Points that left the search stop descending; so do those whose line search ends.
        let mut next_active = Vec::with_capacity(searching.len());
        while !searching.is_empty() {
            let k = searching.len();
            for (slot, &i) in searching.iter().enumerate() {
                let trial = &mut pts[slot * d..(slot + 1) * d];
                for ((t, th), v) in trial
                    .iter_mut()
                    .zip(&theta[i * d..(i + 1) * d])
                    .zip(&dir[i * d..(i + 1) * d])
                {
                    *t = th - alpha[i] * v;
                }
            }
            loss.values(
                Points::new(&pts[..k * d], d, d, &times[..k]),
                &mut vals[..k],
            );
            let mut still = Vec::with_capacity(k);
            for (slot, &i) in searching.iter().enumerate() {
                let tv = vals[slot];
                // Sufficient decrease with c = 1/2: on a quadratic this accepts steps up to
                // 1/h (the Newton step), where the error contracts at least by half; c near 0
                // accepts steps near 2/h, where it barely contracts and a descent oscillated
                // into its minimum over a thousand iterations (Figure 1's double well).
                if tv.is_finite() && tv <= value[i] - 0.5 * alpha[i] * decrease[i] {
                    theta[i * d..(i + 1) * d].copy_from_slice(&pts[slot * d..(slot + 1) * d]);
                    value[i] = tv;
                    next_active.push(i);
                    continue;
                }
                alpha[i] *= 0.5;
                if alpha[i] * dir_norm[i] >= 1e-14 * (1.0 + amax(&theta[i * d..(i + 1) * d])) {
                    still.push(i);
                }
            }
            searching = still;
        }
        next_active.sort_unstable();
        active = next_active;
    }
    theta
        .chunks_exact(d)
        .map(DVector::from_column_slice)
        .collect()
}
