//! The collocation equations of the three-stage Lobatto IIIA scheme (Simpson collocation,
//! order 4) for the Hamiltonian boundary-value problem, their exact Jacobian, and a damped
//! Newton iteration.
//!
//! Unknowns: `y_i = (θ_i, p_i)` at the mesh nodes, node-major. On each interval
//! `[t_i, t_i + h]`, with `f_i = F(t_i, y_i)`:
//!
//! ```text
//! y_m = (y_i + y_{i+1})/2 - h/8 (f_{i+1} - f_i),   f_m = F(t_i + h/2, y_m)
//! r_i = y_{i+1} - y_i - h/6 (f_i + 4 f_m + f_{i+1}) = 0
//! ```
//!
//! which says that the cubic Hermite interpolant of the nodal values and slopes satisfies the
//! ODE at both ends and at the midpoint. Rows are ordered `[θ(0) = θ0 (D rows); r_0; …;
//! r_{N-1}; end condition (D rows)]`, giving a band of `3D - 1` sub- and super-diagonals
//! (factored as such for small `D`, panel by panel beyond: [`NewtonMatrix`]).

use std::sync::Arc;

use nalgebra::DMatrix;

use lossnav_problems::{FieldWorkspace, Lagrangian, Landscape};

use crate::banded::{BandedLu, Singular};
use crate::error::SolverError;
use crate::staircase::StaircaseLu;

/// The condition at the end of the (possibly truncated) horizon.
#[derive(Clone)]
pub(crate) enum EndCondition {
    /// `θ(T) = θ_T`.
    Fixed(Vec<f64>),
    /// `p(T) + η ∇Φ(θ(T)) = 0` (`Φ = 0` when absent).
    Free {
        eta: f64,
        cost: Option<Arc<dyn Landscape>>,
    },
    /// `p(T) - p* + η P (θ(T) - θ*) = 0`: the stable manifold of the linearisation.
    Projection {
        theta_star: Vec<f64>,
        p_star: Vec<f64>,
        /// `η P`.
        eta_p: DMatrix<f64>,
    },
}

/// The discretised boundary-value problem on a given mesh.
pub(crate) struct System<'a> {
    pub lag: &'a Lagrangian,
    pub theta0: &'a [f64],
    pub end: &'a EndCondition,
    /// When set, the field `F` is replaced by its linearisation `F(t, y_r) + ∂F(t, y_r)(y − y_r)`
    /// about a reference state: a linear problem whose solution is an initial guess for the
    /// full one.
    pub linearised: Option<&'a Linearisation>,
}

/// The reference state of a linearised field, with `F` and `∂F` there precomputed when they do
/// not depend on time.
pub(crate) struct Linearisation {
    reference: Vec<f64>,
    autonomous: Option<(Vec<f64>, DMatrix<f64>)>,
}

impl Linearisation {
    /// Linearisation of `lag`'s field about `reference = (θ_r, p_r)`.
    pub fn new(lag: &Lagrangian, reference: Vec<f64>) -> Self {
        let time_dependent = lag.loss().is_time_dependent() || lag.drift().is_time_dependent();
        let autonomous = (!time_dependent).then(|| Self::evaluate(lag, &reference, 0.0));
        Self {
            reference,
            autonomous,
        }
    }

    fn evaluate(lag: &Lagrangian, yr: &[f64], t: f64) -> (Vec<f64>, DMatrix<f64>) {
        let d = lag.dim();
        let mut ws = FieldWorkspace::new(d);
        let mut f = vec![0.0; 2 * d];
        let mut jac = DMatrix::zeros(2 * d, 2 * d);
        let (dth, dp) = f.split_at_mut(d);
        lag.field(t, &yr[..d], &yr[d..], dth, dp, &mut ws);
        lag.field_jacobian(t, &yr[..d], &yr[d..], &mut jac, &mut ws);
        (f, jac)
    }

    /// `F(t, y_r)` and `∂F(t, y_r)`.
    fn at(&self, lag: &Lagrangian, t: f64) -> std::borrow::Cow<'_, (Vec<f64>, DMatrix<f64>)> {
        match &self.autonomous {
            Some(fixed) => std::borrow::Cow::Borrowed(fixed),
            // Only initial guesses take this route, on a coarse mesh: allocating is fine.
            None => std::borrow::Cow::Owned(Self::evaluate(lag, &self.reference, t)),
        }
    }
}

/// Reusable buffers.
pub(crate) struct Workspace {
    pub field: FieldWorkspace,
    /// Field values at the nodes, node-major (`2D` per node).
    pub f: Vec<f64>,
    /// Field Jacobians at the two ends of the current interval.
    jn: [DMatrix<f64>; 2],
    jm: DMatrix<f64>,
    jm_ji: DMatrix<f64>,
    jm_jn: DMatrix<f64>,
    ym: Vec<f64>,
    /// Times, states and fields of the points evaluated together by [`System::eval_many`]
    /// (interval midpoints, error-estimate points), reused between calls.
    pub(crate) batch_t: Vec<f64>,
    pub(crate) batch_y: Vec<f64>,
    pub(crate) batch_f: Vec<f64>,
    newton: NewtonBuffers,
}

/// Parameters from which the Newton matrix is factored panel by panel with dense kernels
/// ([`StaircaseLu`]) rather than as a scalar band ([`BandedLu`]): below it, calls into the
/// dense kernels cost more than the arithmetic of few-by-few blocks (crossover measured in
/// `docs/benchmarks.md`).
const STAIRCASE_MIN_DIM: usize = 8;

/// The Newton matrix of the collocation equations, in the storage its size calls for.
#[derive(Debug)]
pub(crate) enum NewtonMatrix {
    Band(BandedLu),
    Staircase(StaircaseLu),
}

impl Default for NewtonMatrix {
    fn default() -> Self {
        NewtonMatrix::Band(BandedLu::default())
    }
}

impl NewtonMatrix {
    /// A zero matrix for `intervals` intervals and `d` parameters, reusing storage.
    fn reset(&mut self, d: usize, intervals: usize) {
        let m = (intervals + 1) * 2 * d;
        match self {
            NewtonMatrix::Band(b) if d < STAIRCASE_MIN_DIM => b.reset(m, 3 * d - 1, 3 * d - 1),
            NewtonMatrix::Staircase(s) if d >= STAIRCASE_MIN_DIM => s.reset(d, intervals),
            _ if d < STAIRCASE_MIN_DIM => {
                *self = NewtonMatrix::Band(BandedLu::zeros(m, 3 * d - 1, 3 * d - 1))
            }
            _ => *self = NewtonMatrix::Staircase(StaircaseLu::zeros(d, intervals)),
        }
    }

    fn clear(&mut self) {
        match self {
            NewtonMatrix::Band(b) => b.clear(),
            NewtonMatrix::Staircase(s) => s.clear(),
        }
    }

    fn add(&mut self, i: usize, j: usize, v: f64) {
        match self {
            NewtonMatrix::Band(b) => b.add(i, j, v),
            NewtonMatrix::Staircase(s) => s.add(i, j, v),
        }
    }

    fn column_mut(&mut self, i0: usize, j: usize, len: usize) -> &mut [f64] {
        match self {
            NewtonMatrix::Band(b) => b.column_mut(i0, j, len),
            NewtonMatrix::Staircase(s) => s.column_mut(i0, j, len),
        }
    }

    fn factor(&mut self) -> Result<(), Singular> {
        match self {
            NewtonMatrix::Band(b) => b.factor(),
            NewtonMatrix::Staircase(s) => s.factor(),
        }
    }

    fn solve(&self, x: &mut [f64]) {
        match self {
            NewtonMatrix::Band(b) => b.solve(x),
            NewtonMatrix::Staircase(s) => s.solve(x),
        }
    }

    #[cfg(test)]
    fn get(&self, i: usize, j: usize) -> f64 {
        match self {
            NewtonMatrix::Band(b) => b.get(i, j),
            NewtonMatrix::Staircase(s) => s.get(i, j),
        }
    }
}

/// Newton's matrix and vectors, kept across calls so that repeated solves reuse memory.
#[derive(Default)]
struct NewtonBuffers {
    jac: NewtonMatrix,
    res: Vec<f64>,
    step: Vec<f64>,
    trial: Vec<f64>,
    trial_res: Vec<f64>,
    simplified: Vec<f64>,
}

impl Workspace {
    pub fn new(d: usize) -> Self {
        Self {
            field: FieldWorkspace::new(d),
            f: Vec::new(),
            jn: [DMatrix::zeros(2 * d, 2 * d), DMatrix::zeros(2 * d, 2 * d)],
            jm: DMatrix::zeros(2 * d, 2 * d),
            jm_ji: DMatrix::zeros(2 * d, 2 * d),
            jm_jn: DMatrix::zeros(2 * d, 2 * d),
            ym: vec![0.0; 2 * d],
            batch_t: Vec::new(),
            batch_y: Vec::new(),
            batch_f: Vec::new(),
            newton: NewtonBuffers::default(),
        }
    }
}

/// Outcome of a converged Newton solve.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewtonReport {
    pub iterations: usize,
}

/// Newton options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewtonOptions {
    /// Converged when every step component is below `tol · (1 + |y|)`.
    pub tol: f64,
    pub max_iterations: usize,
    /// Wall-clock budget of the whole solve.
    pub deadline: Option<std::time::Instant>,
}

impl<'a> System<'a> {
    fn d(&self) -> usize {
        self.lag.dim()
    }

    /// A system for `lag` with the full (not linearised) field.
    pub fn new(lag: &'a Lagrangian, theta0: &'a [f64], end: &'a EndCondition) -> Self {
        Self {
            lag,
            theta0,
            end,
            linearised: None,
        }
    }

    /// `F(t, y)` for one node-sized state.
    pub fn eval(&self, t: f64, y: &[f64], out: &mut [f64], ws: &mut FieldWorkspace) {
        let d = self.d();
        match self.linearised {
            None => {
                let (dth, dp) = out.split_at_mut(d);
                self.lag.field(t, &y[..d], &y[d..], dth, dp, ws);
            }
            Some(lin) => {
                let yr = &lin.reference;
                let fj = lin.at(self.lag, t);
                let (f, jac) = (&fj.0, &fj.1);
                for (a, o) in out.iter_mut().enumerate() {
                    *o = f[a]
                        + (0..2 * d)
                            .map(|b| jac[(a, b)] * (y[b] - yr[b]))
                            .sum::<f64>();
                }
            }
        }
    }

    /// `∂F(t, y)` for one node-sized state.
    fn eval_jacobian(&self, t: f64, y: &[f64], out: &mut DMatrix<f64>, ws: &mut FieldWorkspace) {
        let d = self.d();
        match self.linearised {
            None => self.lag.field_jacobian(t, &y[..d], &y[d..], out, ws),
            Some(lin) => out.copy_from(&lin.at(self.lag, t).1),
        }
    }

    /// `F` at several states (node-major `y`, one time each) into `out`: the full field's loss
    /// gradients are evaluated together ([`Lagrangian::field_batch`]).
    ///
    /// # Panics
    /// If `y` and `out` do not hold `2D` values per time.
    pub fn eval_many(&self, t: &[f64], y: &[f64], out: &mut [f64], ws: &mut FieldWorkspace) {
        let n = 2 * self.d();
        match self.linearised {
            None => self.lag.field_batch(t, y, out, ws),
            Some(_) => {
                assert!(
                    y.len() == t.len() * n && out.len() == y.len(),
                    "states and fields must hold 2D values per time"
                );
                for ((&tj, yj), oj) in t.iter().zip(y.chunks_exact(n)).zip(out.chunks_exact_mut(n))
                {
                    self.eval(tj, yj, oj, ws);
                }
            }
        }
    }

    /// Field values at every node into `ws.f`.
    pub fn eval_nodes(&self, t: &[f64], y: &[f64], ws: &mut Workspace) -> Result<(), SolverError> {
        let n = 2 * self.d();
        ws.f.resize(t.len() * n, 0.0);
        self.eval_many(t, y, &mut ws.f, &mut ws.field);
        first_non_finite(&ws.f, n).map_or(Ok(()), |i| {
            let theta = &y[i * n..i * n + self.d()];
            Err(SolverError::NonFinite {
                what: match crate::error::culprit(self.lag, theta, t[i]) {
                    Some(c) => format!("the Hamiltonian field ({c})"),
                    None => "the Hamiltonian field".into(),
                },
                t: t[i],
            })
        })
    }

    /// Residual of all equations (node fields must be in `ws.f`).
    pub fn residual(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        res: &mut [f64],
    ) -> Result<(), SolverError> {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
        for j in 0..d {
            res[j] = y[j] - self.theta0[j];
        }
        // The field at every interval's midpoint, evaluated together.
        ws.batch_t.clear();
        ws.batch_y.resize(intervals * n, 0.0);
        ws.batch_f.resize(intervals * n, 0.0);
        for (i, ym) in ws.batch_y.chunks_exact_mut(n).enumerate() {
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
            midpoint(h, y0, y1, f0, f1, ym);
            ws.batch_t.push(t[i] + 0.5 * h);
        }
        self.eval_many(&ws.batch_t, &ws.batch_y, &mut ws.batch_f, &mut ws.field);
        if let Some(i) = first_non_finite(&ws.batch_f, n) {
            return Err(SolverError::NonFinite {
                what: "the Hamiltonian field".into(),
                t: ws.batch_t[i],
            });
        }
        for i in 0..intervals {
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
            let fm = &ws.batch_f[i * n..(i + 1) * n];
            let row = d + i * n;
            for j in 0..n {
                res[row + j] = y1[j] - y0[j] - h / 6.0 * (f0[j] + 4.0 * fm[j] + f1[j]);
            }
        }
        let last = &y[intervals * n..];
        let row = d + intervals * n;
        self.end_residual(t[intervals], last, &mut res[row..row + d])?;
        Ok(())
    }

    /// The end condition at the final time `t_end` (a terminal cost may depend on time).
    fn end_residual(&self, t_end: f64, y_end: &[f64], out: &mut [f64]) -> Result<(), SolverError> {
        let d = self.d();
        let (th, p) = (&y_end[..d], &y_end[d..]);
        match self.end {
            EndCondition::Fixed(target) => {
                for j in 0..d {
                    out[j] = th[j] - target[j];
                }
            }
            EndCondition::Free { eta, cost } => {
                let mut g = vec![0.0; d];
                if let Some(c) = cost {
                    c.gradient(th, t_end, &mut g);
                }
                for j in 0..d {
                    out[j] = p[j] + eta * g[j];
                }
            }
            EndCondition::Projection {
                theta_star,
                p_star,
                eta_p,
            } => {
                for j in 0..d {
                    let mut v = p[j] - p_star[j];
                    for k in 0..d {
                        v += eta_p[(j, k)] * (th[k] - theta_star[k]);
                    }
                    out[j] = v;
                }
            }
        }
        if out.iter().all(|v| v.is_finite()) {
            Ok(())
        } else {
            Err(SolverError::NonFinite {
                what: "the end condition".into(),
                t: f64::NAN,
            })
        }
    }

    /// Assembles the exact Jacobian of [`System::residual`] into `jac`, which must be zero
    /// (node fields must be in `ws.f`).
    pub fn jacobian(&self, t: &[f64], y: &[f64], ws: &mut Workspace, jac: &mut NewtonMatrix) {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
        for j in 0..d {
            jac.add(j, j, 1.0);
        }
        // Node Jacobians are computed once each, carried from an interval's right end to the
        // next interval's left end.
        self.eval_jacobian(t[0], &y[..n], &mut ws.jn[0], &mut ws.field);
        for i in 0..intervals {
            if i > 0 {
                ws.jn.swap(0, 1);
            }
            self.eval_jacobian(
                t[i + 1],
                &y[(i + 1) * n..(i + 2) * n],
                &mut ws.jn[1],
                &mut ws.field,
            );
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
            midpoint(h, y0, y1, f0, f1, &mut ws.ym);
            let tm = t[i] + 0.5 * h;
            self.eval_jacobian(tm, &ws.ym, &mut ws.jm, &mut ws.field);
            // ∂y_m/∂y_i = I/2 + h/8 J_i,  ∂y_m/∂y_{i+1} = I/2 - h/8 J_{i+1}
            // ∂r/∂y_i = -I - h/6 (J_i + 4 J_m ∂y_m/∂y_i)
            // ∂r/∂y_{i+1} = I - h/6 (J_{i+1} + 4 J_m ∂y_m/∂y_{i+1})
            product(&ws.jm, &ws.jn[0], &mut ws.jm_ji);
            product(&ws.jm, &ws.jn[1], &mut ws.jm_jn);
            let row = d + i * n;
            let (c0, c1) = (i * n, (i + 1) * n);
            // Column by column: a column of a block is contiguous both in the column-major
            // blocks and in the band storage.
            let (ji, jn1, jm) = (ws.jn[0].as_slice(), ws.jn[1].as_slice(), ws.jm.as_slice());
            let (jm_ji, jm_jn) = (ws.jm_ji.as_slice(), ws.jm_jn.as_slice());
            for b in 0..n {
                let col = b * n..(b + 1) * n;
                let left = jac.column_mut(row, c0 + b, n);
                for (a, ((v, (&x, &m)), &p)) in left
                    .iter_mut()
                    .zip(ji[col.clone()].iter().zip(&jm[col.clone()]))
                    .zip(&jm_ji[col.clone()])
                    .enumerate()
                {
                    let eye = if a == b { 1.0 } else { 0.0 };
                    *v += -eye - h / 6.0 * (x + 2.0 * m + h / 2.0 * p);
                }
                let right = jac.column_mut(row, c1 + b, n);
                for (a, ((v, (&x, &m)), &p)) in right
                    .iter_mut()
                    .zip(jn1[col.clone()].iter().zip(&jm[col.clone()]))
                    .zip(&jm_jn[col])
                    .enumerate()
                {
                    let eye = if a == b { 1.0 } else { 0.0 };
                    *v += eye - h / 6.0 * (x + 2.0 * m - h / 2.0 * p);
                }
            }
        }
        let row = d + intervals * n;
        let col = intervals * n;
        let y_end = &y[col..];
        match self.end {
            EndCondition::Fixed(_) => {
                for j in 0..d {
                    jac.add(row + j, col + j, 1.0);
                }
            }
            EndCondition::Free { eta, cost } => {
                if let Some(c) = cost {
                    let mut h = DMatrix::zeros(d, d);
                    c.hessian(&y_end[..d], t[intervals], &mut h);
                    for a in 0..d {
                        for b in 0..d {
                            jac.add(row + a, col + b, eta * h[(a, b)]);
                        }
                    }
                }
                for j in 0..d {
                    jac.add(row + j, col + d + j, 1.0);
                }
            }
            EndCondition::Projection { eta_p, .. } => {
                for a in 0..d {
                    for b in 0..d {
                        jac.add(row + a, col + b, eta_p[(a, b)]);
                    }
                    jac.add(row + a, col + d + a, 1.0);
                }
            }
        }
    }

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

    fn newton_with(
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
        for iter in 0..opts.max_iterations {
            if opts.deadline.is_some_and(|d| std::time::Instant::now() > d) {
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
                let ok = self.eval_nodes(t, trial, ws).is_ok()
                    && self.residual(t, trial, ws, trial_res).is_ok();
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
                        // A tiny full step that cannot decrease further: rounding level.
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
                    return Err(self.newton_failure(t, y, ws, iter + 1, scaled));
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
        Err(self.newton_failure(t, y, ws, opts.max_iterations, last_step))
    }

    fn newton_failure(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        iterations: usize,
        step: f64,
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
        }
    }
}

/// The collocation midpoint `y_m = (y_0 + y_1)/2 − h/8 (f_1 − f_0)`: the cubic Hermite
/// interpolant at the middle of the interval.
fn midpoint(h: f64, y0: &[f64], y1: &[f64], f0: &[f64], f1: &[f64], out: &mut [f64]) {
    for j in 0..out.len() {
        out[j] = 0.5 * (y0[j] + y1[j]) - h / 8.0 * (f1[j] - f0[j]);
    }
}

/// `out = a·b` for the square blocks of one interval: fixed-size kernels for the smallest
/// blocks (`D ≤ 3`, fully unrolled), plain loops below a size where nalgebra's general product
/// (dispatch, packing) costs more than the arithmetic, `gemm` beyond.
fn product(a: &DMatrix<f64>, b: &DMatrix<f64>, out: &mut DMatrix<f64>) {
    fn fixed<const N: usize>(a: &[f64], b: &[f64], out: &mut [f64]) {
        let a = nalgebra::SMatrix::<f64, N, N>::from_column_slice(a);
        let b = nalgebra::SMatrix::<f64, N, N>::from_column_slice(b);
        out.copy_from_slice((a * b).as_slice());
    }
    let n = a.nrows();
    let (sa, sb, so) = (a.as_slice(), b.as_slice(), out.as_mut_slice());
    match n {
        2 => return fixed::<2>(sa, sb, so),
        4 => return fixed::<4>(sa, sb, so),
        6 => return fixed::<6>(sa, sb, so),
        _ if n > 16 => {
            out.gemm(1.0, a, b, 0.0);
            return;
        }
        _ => {}
    }
    for (j, col) in so.chunks_exact_mut(n).enumerate() {
        col.fill(0.0);
        for (k, &bkj) in sb[j * n..(j + 1) * n].iter().enumerate() {
            for (o, &aik) in col.iter_mut().zip(&sa[k * n..(k + 1) * n]) {
                *o += aik * bkj;
            }
        }
    }
}

/// The first of the `n`-value states in `f` with a non-finite entry.
fn first_non_finite(f: &[f64], n: usize) -> Option<usize> {
    f.chunks_exact(n)
        .position(|fi| !fi.iter().all(|v| v.is_finite()))
}

/// `max_k |s_k| / (1 + |y_k|)`.
pub(crate) fn scaled_norm(s: &[f64], y: &[f64]) -> f64 {
    s.iter()
        .zip(y)
        .fold(0.0_f64, |m, (a, b)| m.max(a.abs() / (1.0 + b.abs())))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lossnav_problems::{AutoDiff, DoubleWell, Landscape, Quadratic};

    fn field(sys: &System, y: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; y.len()];
        sys.eval(0.3, y, &mut out, &mut FieldWorkspace::new(y.len() / 2));
        out
    }

    /// The assembled collocation Jacobian matches central differences of the residual, for
    /// every end condition, on a nonlinear problem (`D = 2`, scalar band) and a coupled
    /// quadratic (`D = 8`, dense panels), on a nonuniform mesh.
    #[test]
    fn jacobian_matches_finite_differences_of_the_residual() {
        let t = [0.0, 0.3, 0.5, 1.1, 1.4];
        let well: Arc<dyn Landscape> = Arc::new(AutoDiff(DoubleWell::figure1()));
        let h8 = DMatrix::from_fn(8, 8, |i, j| if i == j { 2.0 + i as f64 } else { 0.1 });
        let quad: Arc<dyn Landscape> =
            Arc::new(Quadratic::new(h8, nalgebra::DVector::zeros(8)).unwrap());
        for (loss, d) in [(well, 2usize), (quad, 8)] {
            let lag = Lagrangian::from_arc(loss.clone()).with_gamma(0.3);
            let theta0 = vec![0.1; d];
            let ends = [
                EndCondition::Fixed(vec![1.0; d]),
                EndCondition::Free {
                    eta: 1.0,
                    cost: Some(loss.clone()),
                },
                EndCondition::Projection {
                    theta_star: vec![1.0; d],
                    p_star: vec![0.05; d],
                    eta_p: DMatrix::from_fn(d, d, |i, j| if i == j { 2.0 } else { 0.3 }),
                },
            ];
            let m = t.len() * 2 * d;
            let y: Vec<f64> = (0..m).map(|k| 0.3 * ((k as f64) * 0.7).sin()).collect();
            for end in &ends {
                let sys = System::new(&lag, &theta0, end);
                let mut ws = Workspace::new(d);
                let residual = |y: &[f64], ws: &mut Workspace| {
                    let mut r = vec![0.0; m];
                    sys.eval_nodes(&t, y, ws).unwrap();
                    sys.residual(&t, y, ws, &mut r).unwrap();
                    r
                };
                sys.eval_nodes(&t, &y, &mut ws).unwrap();
                let mut jac = NewtonMatrix::default();
                jac.reset(d, t.len() - 1);
                sys.jacobian(&t, &y, &mut ws, &mut jac);
                let eps = 1e-6;
                for col in 0..m {
                    let (mut up, mut down) = (y.clone(), y.clone());
                    up[col] += eps;
                    down[col] -= eps;
                    let (ru, rd) = (residual(&up, &mut ws), residual(&down, &mut ws));
                    for row in 0..m {
                        let fd = (ru[row] - rd[row]) / (2.0 * eps);
                        // Central differences: O(eps²) ≈ 1e-12 truncation plus ~1e-10 rounding.
                        let exact = jac.get(row, col);
                        assert!(
                            (fd - exact).abs() < 1e-8,
                            "D = {d}, ({row}, {col}): exact {exact} vs difference {fd}"
                        );
                    }
                }
            }
        }
    }

    /// Newton's stopping rule (a small predicted remainder after a contracting correction)
    /// returns an iterate within the tolerance of the exact solution of the collocation
    /// equations: the Figure 1 problem on a fixed mesh, from a straight line with its constant
    /// velocity's momentum and from rest (a larger first step), against the same iteration run
    /// to near rounding level.
    #[test]
    fn newton_stops_within_tolerance_of_the_collocation_solution() {
        let lag = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.1);
        let (theta0, target) = (vec![-0.6, 0.55], vec![1.0625, 0.0]);
        let end = EndCondition::Fixed(target.clone());
        let sys = System::new(&lag, &theta0, &end);
        let t: Vec<f64> = (0..=60).map(|i| 4.0 * i as f64 / 60.0).collect();
        for momentum in [1.0, 0.0] {
            let start: Vec<f64> = t
                .iter()
                .flat_map(|&ti| {
                    let s = ti / 4.0;
                    let th = [0, 1].map(|j| theta0[j] + s * (target[j] - theta0[j]));
                    let p = [0, 1].map(|j| momentum * (target[j] - theta0[j]) / 4.0);
                    [th[0], th[1], p[0], p[1]]
                })
                .collect();
            let solve = |tol: f64| {
                let mut y = start.clone();
                let opts = NewtonOptions {
                    tol,
                    max_iterations: 50,
                    deadline: None,
                };
                sys.newton(&t, &mut y, opts, &mut Workspace::new(2))
                    .unwrap();
                y
            };
            let exact = solve(1e-13);
            for tol in [1e-4, 1e-6, 1e-9, 1e-11] {
                let y = solve(tol);
                let diff: Vec<f64> = y.iter().zip(&exact).map(|(a, b)| a - b).collect();
                let error = scaled_norm(&diff, &exact);
                // The tolerance bounds the scaled error of the returned iterate (the reference
                // is within 1e-13 of the solution).
                assert!(
                    error <= tol,
                    "start {momentum}, tol {tol:e}: error {error:e}"
                );
            }
        }
    }

    /// The linearised field is exact for a quadratic loss (an affine field), and for a
    /// nonlinear one its error shrinks as the square of the distance to the reference.
    #[test]
    fn linearised_field_is_first_order_exact() {
        let end = EndCondition::Fixed(vec![0.0, 0.0]);
        let theta0 = [0.0, 0.0];
        let reference = [0.4, -0.2, 0.1, 0.3];
        let direction = [0.3, -0.7, 0.5, 0.2];
        let quad = Lagrangian::new(Quadratic::diagonal(vec![1.0, 3.0], vec![0.5, 0.0]).unwrap())
            .with_gamma(0.5);
        let well = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.5);
        for (lag, affine) in [(&quad, true), (&well, false)] {
            let full = System::new(lag, &theta0, &end);
            let lin = Linearisation::new(lag, reference.to_vec());
            let linear = System {
                linearised: Some(&lin),
                ..System::new(lag, &theta0, &end)
            };
            let mut errors = Vec::new();
            for eps in [1e-1, 5e-2] {
                let y: Vec<f64> = reference
                    .iter()
                    .zip(&direction)
                    .map(|(r, v)| r + eps * v)
                    .collect();
                let (a, b) = (field(&full, &y), field(&linear, &y));
                errors.push(
                    a.iter()
                        .zip(&b)
                        .fold(0.0_f64, |m, (x, z)| m.max((x - z).abs())),
                );
            }
            if affine {
                // Rounding only: a handful of operations on O(1) numbers.
                assert!(errors.iter().all(|&e| e < 1e-14), "{errors:?}");
            } else {
                // Halving the distance quarters a second-order error (ratio 4, up to the
                // third-order term's share at these distances).
                let ratio = errors[0] / errors[1];
                assert!(
                    (ratio - 4.0).abs() < 0.3,
                    "ratio {ratio}, errors {errors:?}"
                );
            }
        }
    }

    /// Evaluating many states at once gives the pointwise field bit for bit, for the full
    /// field (batched loss gradients) and the linearised one (point by point).
    #[test]
    fn many_states_match_pointwise_evaluation() {
        let end = EndCondition::Fixed(vec![0.0, 0.0]);
        let theta0 = [0.0, 0.0];
        let lag = Lagrangian::new(AutoDiff(DoubleWell::figure1())).with_gamma(0.5);
        let lin = Linearisation::new(&lag, vec![0.4, -0.2, 0.1, 0.3]);
        let full = System::new(&lag, &theta0, &end);
        let linear = System {
            linearised: Some(&lin),
            ..System::new(&lag, &theta0, &end)
        };
        let t = [0.0, 0.3, 0.9, 1.7];
        let y: Vec<f64> = (0..16).map(|i| (i as f64 * 0.61).cos()).collect();
        for sys in [&full, &linear] {
            let mut ws = FieldWorkspace::new(2);
            let mut many = vec![0.0; 16];
            sys.eval_many(&t, &y, &mut many, &mut ws);
            for (j, &tj) in t.iter().enumerate() {
                let mut one = [0.0; 4];
                sys.eval(tj, &y[4 * j..4 * j + 4], &mut one, &mut ws);
                assert_eq!(many[4 * j..4 * j + 4], one, "state {j}");
            }
        }
    }
}
