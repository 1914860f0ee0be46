//! The collocation equations of the Hamiltonian boundary-value problem, their exact Jacobian,
//! and a damped Newton iteration, for the two schemes of [`crate::scheme`].
//!
//! Unknowns: `y_i = (θ_i, p_i)` at the mesh nodes, node-major. On each interval
//! `[t_i, t_i + h]`, with `f_i = F(t_i, y_i)`, the fourth-order scheme (three-stage Lobatto
//! IIIA, Simpson collocation) reads
//!
//! ```text
//! y_m = (y_i + y_{i+1})/2 - h/8 (f_{i+1} - f_i),   f_m = F(t_i + h/2, y_m)
//! r_i = y_{i+1} - y_i - h/6 (f_i + 4 f_m + f_{i+1}) = 0
//! ```
//!
//! which says that the cubic Hermite interpolant of the nodal values and slopes satisfies the
//! ODE at both ends and at the midpoint; the sixth-order scheme has three internal stages,
//! explicit in `y_i`, `y_{i+1}` like this one ([`crate::scheme`]). Rows are ordered `[θ(0) = θ0 (D rows); r_0; …;
//! r_{N-1}; end condition (D rows)]`, giving a band of `3D - 1` sub- and super-diagonals
//! (factored as such for small `D`, panel by panel beyond: [`NewtonMatrix`]).

use std::sync::Arc;

use nalgebra::DMatrix;

use lossnav_problems::{FieldWorkspace, Lagrangian, Landscape};

use crate::banded::{BandedLu, Singular};
use crate::error::SolverError;
use crate::scheme::mirk6;
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
#[derive(Clone, Copy)]
pub(crate) struct System<'a> {
    pub lag: &'a Lagrangian,
    pub theta0: &'a [f64],
    pub end: &'a EndCondition,
    /// When set, the field `F` is replaced by its linearisation `F(t, y_r) + ∂F(t, y_r)(y − y_r)`
    /// about a reference state: a linear problem whose solution is an initial guess for the
    /// full one.
    pub linearised: Option<&'a Linearisation>,
    /// Whether the equations are those of the sixth-order scheme (else the fourth-order one).
    pub order6: bool,
    /// Whether the full field is affine ([`Lagrangian::has_affine_field`]): its Jacobian is
    /// then evaluated once per assembly and every interval's blocks are polynomials in it.
    pub affine: bool,
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
    /// Sixth-order scheme: second derivatives `∂F·F` at the nodes, node-major
    /// ([`System::eval_curvatures`]); empty for the fourth-order scheme.
    pub a: Vec<f64>,
    /// Field Jacobians at the two ends of the current interval.
    jn: [DMatrix<f64>; 2],
    jm: DMatrix<f64>,
    jm_ji: DMatrix<f64>,
    jm_jn: DMatrix<f64>,
    ym: Vec<f64>,
    /// The sixth-order scheme's stage blocks, allocated on first use.
    six: Option<Box<StageBlocks>>,
    /// Times, states and fields of the points evaluated together by [`System::eval_many`]
    /// (interval midpoints, error-estimate points), reused between calls.
    pub(crate) batch_t: Vec<f64>,
    pub(crate) batch_y: Vec<f64>,
    pub(crate) batch_f: Vec<f64>,
    /// The sixth-order scheme's middle stages (times, states, fields), evaluated after the
    /// quarter-point stages in `batch_*`.
    stage_t: Vec<f64>,
    stage_y: Vec<f64>,
    stage_f: Vec<f64>,
    /// Field Jacobians evaluated together ([`System::eval_jacobians`]), column-major one after
    /// another: the nodes and stages of a chunk of intervals, about
    /// [`JACOBIAN_BATCH_VALUES`] values in all (one Jacobian more).
    jacs: Vec<f64>,
    newton: NewtonBuffers,
}

/// Most values held by the field Jacobians of one batch (256 KiB): small systems evaluate all
/// the Jacobians of a mesh's Newton matrix in a few passes over the Hessian's tape, large ones
/// (where a batch would hold fewer than two intervals) one point at a time with no extra
/// `O(D²)` memory.
const JACOBIAN_BATCH_VALUES: usize = 1 << 15;

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
            a: Vec::new(),
            six: None,
            jn: [DMatrix::zeros(2 * d, 2 * d), DMatrix::zeros(2 * d, 2 * d)],
            jm: DMatrix::zeros(2 * d, 2 * d),
            jm_ji: DMatrix::zeros(2 * d, 2 * d),
            jm_jn: DMatrix::zeros(2 * d, 2 * d),
            ym: vec![0.0; 2 * d],
            batch_t: Vec::new(),
            batch_y: Vec::new(),
            batch_f: Vec::new(),
            stage_t: Vec::new(),
            stage_y: Vec::new(),
            stage_f: Vec::new(),
            jacs: Vec::new(),
            newton: NewtonBuffers::default(),
        }
    }
}

/// The sixth-order scheme's per-interval work: stage states, fields and Jacobians, and the
/// chain-rule products of the stage Jacobians with the nodal ones.
struct StageBlocks {
    y3: Vec<f64>,
    y4: Vec<f64>,
    y5: Vec<f64>,
    k3: Vec<f64>,
    k4: Vec<f64>,
    j3: DMatrix<f64>,
    j4: DMatrix<f64>,
    j5: DMatrix<f64>,
    chain: ChainProducts,
}

/// The chain-rule products of one interval's sixth-order blocks.
struct ChainProducts {
    /// `∂Y₅/∂y` of the current end.
    a5: DMatrix<f64>,
    p3: DMatrix<f64>,
    p4: DMatrix<f64>,
    /// `J₅·∂Y₅/∂y`.
    p5: DMatrix<f64>,
}

impl StageBlocks {
    fn new(n: usize) -> Self {
        let m = || DMatrix::zeros(n, n);
        Self {
            y3: vec![0.0; n],
            y4: vec![0.0; n],
            y5: vec![0.0; n],
            k3: vec![0.0; n],
            k4: vec![0.0; n],
            j3: m(),
            j4: m(),
            j5: m(),
            chain: ChainProducts {
                a5: m(),
                p3: m(),
                p4: m(),
                p5: m(),
            },
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
            order6: false,
            affine: lag.has_affine_field(),
        }
    }

    /// Whether `∂F` is the same matrix everywhere (an affine field, or the linearisation of an
    /// autonomous one).
    fn constant_jacobian(&self) -> bool {
        match self.linearised {
            Some(lin) => lin.autonomous.is_some(),
            None => self.affine,
        }
    }

    /// Whether the field does not depend on time explicitly: the sixth-order scheme's
    /// continuous extension uses `y'' = ∂F·F`, which leaves out `∂F/∂t`.
    pub fn autonomous(lag: &Lagrangian) -> bool {
        !(lag.loss().is_time_dependent() || lag.drift().is_time_dependent())
    }

    /// Second derivatives `y'' = ∂F(y_i)·F(y_i)` at every node into `ws.a` (node fields must be
    /// in `ws.f`); cleared for the fourth-order scheme, whose interpolant does not use them.
    pub fn eval_curvatures(&self, t: &[f64], y: &[f64], ws: &mut Workspace) {
        ws.a.clear();
        if !self.order6 {
            return;
        }
        let n = 2 * self.d();
        ws.a.resize(t.len() * n, 0.0);
        let constant = self.constant_jacobian();
        let chunk = JACOBIAN_BATCH_VALUES / (n * n);
        if !constant && chunk >= 2 {
            // The node Jacobians evaluated `chunk` at a time (the same values, bit for bit).
            ws.jacs.resize(chunk.min(t.len()) * n * n, 0.0);
            for first in (0..t.len()).step_by(chunk) {
                let last = (first + chunk).min(t.len());
                let jacs = &mut ws.jacs[..(last - first) * n * n];
                let (tc, yc) = (&t[first..last], &y[first * n..last * n]);
                self.eval_jacobians(tc, yc, jacs, &mut ws.field);
                let fc = &ws.f[first * n..last * n];
                let ac = &mut ws.a[first * n..last * n];
                for ((jac, f), a) in jacs
                    .chunks_exact(n * n)
                    .zip(fc.chunks_exact(n))
                    .zip(ac.chunks_exact_mut(n))
                {
                    matrix_vector(jac, f, a);
                }
            }
            return;
        }
        for (i, &ti) in t.iter().enumerate() {
            let mut jac = std::mem::take(&mut ws.jn[0]);
            if i == 0 || !constant {
                self.eval_jacobian(ti, &y[i * n..(i + 1) * n], &mut jac, &mut ws.field);
            }
            let f = &ws.f[i * n..(i + 1) * n];
            matrix_vector(jac.as_slice(), f, &mut ws.a[i * n..(i + 1) * n]);
            ws.jn[0] = jac;
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

    /// `∂F` at several states (node-major `y`, one time each), one column-major matrix per
    /// state (`4D²` values each): the full field's loss Hessians are evaluated together
    /// ([`Lagrangian::field_jacobians`]).
    fn eval_jacobians(&self, t: &[f64], y: &[f64], out: &mut [f64], ws: &mut FieldWorkspace) {
        match self.linearised {
            None => self.lag.field_jacobians(t, y, out, ws),
            Some(lin) => {
                let n = 2 * self.d();
                for (&tj, o) in t.iter().zip(out.chunks_exact_mut(n * n)) {
                    o.copy_from_slice(lin.at(self.lag, tj).1.as_slice());
                }
            }
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

    /// [`System::eval_many`], with the first non-finite field value as an error at its time.
    fn eval_finite(
        &self,
        t: &[f64],
        y: &[f64],
        out: &mut [f64],
        ws: &mut FieldWorkspace,
    ) -> Result<(), SolverError> {
        self.eval_many(t, y, out, ws);
        match first_non_finite(out, 2 * self.d()) {
            Some(i) => Err(SolverError::NonFinite {
                what: "the Hamiltonian field".into(),
                t: t[i],
            }),
            None => Ok(()),
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
        if self.order6 {
            self.interval_residuals6(t, y, ws, res)?;
        } else {
            self.interval_residuals4(t, y, ws, res)?;
        }
        let last = &y[intervals * n..];
        let row = d + intervals * n;
        self.end_residual(t[intervals], last, &mut res[row..row + d])?;
        Ok(())
    }

    /// Rows `r_i` of the fourth-order scheme.
    fn interval_residuals4(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        res: &mut [f64],
    ) -> Result<(), SolverError> {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
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
        self.eval_finite(&ws.batch_t, &ws.batch_y, &mut ws.batch_f, &mut ws.field)?;
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
        Ok(())
    }

    /// Rows `r_i` of the sixth-order scheme ([`crate::scheme`]): the quarter-point stages of
    /// every interval evaluated together, then the middle stages.
    fn interval_residuals6(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        res: &mut [f64],
    ) -> Result<(), SolverError> {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
        let [w0, w1, w2] = mirk6::WEIGHTS;
        quarter_stages_of(t, y, &ws.f, 0..intervals, &mut ws.batch_t, &mut ws.batch_y);
        ws.batch_f.resize(intervals * 2 * n, 0.0);
        self.eval_finite(&ws.batch_t, &ws.batch_y, &mut ws.batch_f, &mut ws.field)?;
        ws.stage_t.clear();
        ws.stage_y.resize(intervals * n, 0.0);
        ws.stage_f.resize(intervals * n, 0.0);
        for (i, y5) in ws.stage_y.chunks_exact_mut(n).enumerate() {
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
            let (k3, k4) = ws.batch_f[i * 2 * n..(i + 1) * 2 * n].split_at(n);
            middle_stage(h, y0, y1, f0, f1, k3, k4, y5);
            ws.stage_t.push(t[i] + 0.5 * h);
        }
        self.eval_finite(&ws.stage_t, &ws.stage_y, &mut ws.stage_f, &mut ws.field)?;
        for i in 0..intervals {
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
            let (k3, k4) = ws.batch_f[i * 2 * n..(i + 1) * 2 * n].split_at(n);
            let k5 = &ws.stage_f[i * n..(i + 1) * n];
            let row = d + i * n;
            for j in 0..n {
                res[row + j] =
                    y1[j] - y0[j] - h * (w0 * (f0[j] + f1[j]) + w1 * (k3[j] + k4[j]) + w2 * k5[j]);
            }
        }
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
        for j in 0..self.d() {
            jac.add(j, j, 1.0);
        }
        if self.constant_jacobian() {
            self.interval_jacobians_constant(t, y, ws, jac);
        } else {
            self.interval_jacobians(t, y, ws, jac);
        }
        self.end_jacobian(t, y, jac);
    }

    /// The interval blocks when `∂F = J` everywhere: `J²` (and for the sixth-order scheme
    /// `J³`) once, then each block `±I − h (c₁ J + c₂ J² + c₃ J³)` in `O(D²)` instead of the
    /// stage Jacobians and block products of [`System::interval_jacobians`] (`O(D³)` per
    /// interval).
    fn interval_jacobians_constant(
        &self,
        t: &[f64],
        y: &[f64],
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let d = self.d();
        let n = 2 * d;
        self.eval_jacobian(t[0], &y[..n], &mut ws.jn[0], &mut ws.field);
        product(&ws.jn[0], &ws.jn[0], &mut ws.jm_ji);
        if self.order6 {
            product(&ws.jm_ji, &ws.jn[0], &mut ws.jm_jn);
        }
        let (j1, j2, j3) = (
            ws.jn[0].as_slice(),
            ws.jm_ji.as_slice(),
            ws.jm_jn.as_slice(),
        );
        for i in 0..t.len() - 1 {
            let h = t[i + 1] - t[i];
            let row = d + i * n;
            for (node, eye) in [(0, -1.0), (1, 1.0)] {
                let [c1, c2, c3] = constant_block(h, node == 1, self.order6);
                for b in 0..n {
                    let col = b * n..(b + 1) * n;
                    let out = jac.column_mut(row, (i + node) * n + b, n);
                    let (x1, x2) = (&j1[col.clone()], &j2[col.clone()]);
                    if self.order6 {
                        let x3 = &j3[col];
                        for (a, v) in out.iter_mut().enumerate() {
                            let identity = if a == b { eye } else { 0.0 };
                            *v += identity - h * (c1 * x1[a] + c2 * x2[a] + c3 * x3[a]);
                        }
                    } else {
                        for (a, v) in out.iter_mut().enumerate() {
                            let identity = if a == b { eye } else { 0.0 };
                            *v += identity - h * (c1 * x1[a] + c2 * x2[a]);
                        }
                    }
                }
            }
        }
    }

    /// The interval blocks from the Jacobians at every node and stage.
    fn interval_jacobians(&self, t: &[f64], y: &[f64], ws: &mut Workspace, jac: &mut NewtonMatrix) {
        let n = 2 * self.d();
        // Per interval: three stage Jacobians and (shared with the next) one node Jacobian.
        let chunk = (JACOBIAN_BATCH_VALUES / (4 * n * n)).min(t.len() - 1);
        self.interval_jacobians_in(t, y, chunk, ws, jac);
    }

    /// [`System::interval_jacobians`], the sixth-order scheme's Jacobians evaluated `chunk`
    /// intervals at a time if `chunk ≥ 2`, else (and for the fourth-order scheme) point by point.
    fn interval_jacobians_in(
        &self,
        t: &[f64],
        y: &[f64],
        chunk: usize,
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
        if self.order6 && chunk >= 2 {
            self.interval_jacobians6_batched(t, y, chunk, ws, jac);
            return;
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
            if self.order6 {
                self.interval_jacobian6(t, y, i, ws, jac);
                continue;
            }
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
    }

    /// The rows of the end condition.
    fn end_jacobian(&self, t: &[f64], y: &[f64], jac: &mut NewtonMatrix) {
        let d = self.d();
        let n = 2 * d;
        let intervals = t.len() - 1;
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

    /// The blocks `∂r_i/∂y_i`, `∂r_i/∂y_{i+1}` of the sixth-order scheme (node Jacobians in
    /// `ws.jn`, node fields in `ws.f`), by the chain rule through the stages:
    ///
    /// ```text
    /// P₃ = J₃ ∂Y₃/∂y,  P₄ = J₄ ∂Y₄/∂y,  ∂Y₅/∂y = I/2 + h (m J_y + 2/3 (P₃ − P₄)),
    /// ∂r/∂y = s I − h (7/90 J_y + 16/45 (P₃ + P₄) + 2/15 J₅ ∂Y₅/∂y)
    /// ```
    ///
    /// (`m = −5/24`, `s = −1` for `y = y_i`; `m = 5/24`, `s = 1` for `y = y_{i+1}`)
    ///
    /// with `∂Y₃/∂y_i = 27/32 I + 9h/64 J_i`, `∂Y₃/∂y_{i+1} = 5/32 I − 3h/64 J_{i+1}` and `Y₄`
    /// mirrored.
    fn interval_jacobian6(
        &self,
        t: &[f64],
        y: &[f64],
        i: usize,
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        let h = t[i + 1] - t[i];
        let sb = &mut **ws.six.get_or_insert_with(|| Box::new(StageBlocks::new(n)));
        let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
        let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
        quarter_stages(h, y0, y1, f0, f1, &mut sb.y3, &mut sb.y4);
        let (t3, t4, t5) = (t[i] + 0.25 * h, t[i] + 0.75 * h, t[i] + 0.5 * h);
        self.eval(t3, &sb.y3, &mut sb.k3, &mut ws.field);
        self.eval(t4, &sb.y4, &mut sb.k4, &mut ws.field);
        middle_stage(h, y0, y1, f0, f1, &sb.k3, &sb.k4, &mut sb.y5);
        self.eval_jacobian(t3, &sb.y3, &mut sb.j3, &mut ws.field);
        self.eval_jacobian(t4, &sb.y4, &mut sb.j4, &mut ws.field);
        self.eval_jacobian(t5, &sb.y5, &mut sb.j5, &mut ws.field);
        let nodes = [ws.jn[0].as_slice(), ws.jn[1].as_slice()];
        let stages = [sb.j3.as_slice(), sb.j4.as_slice(), sb.j5.as_slice()];
        self.interval_blocks6(h, i, nodes, stages, &mut sb.chain, jac);
    }

    /// The sixth-order blocks of every interval ([`System::interval_jacobian6`]), `chunk`
    /// intervals at a time: their stages computed and their fields and node and stage
    /// Jacobians evaluated together ([`System::eval_many`], [`System::eval_jacobians`]), the
    /// same values as interval by interval, bit for bit.
    fn interval_jacobians6_batched(
        &self,
        t: &[f64],
        y: &[f64],
        chunk: usize,
        ws: &mut Workspace,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        let intervals = t.len() - 1;
        let nn = n * n;
        // Every entry is written before it is read.
        ws.jacs.resize((4 * chunk + 1) * nn, 0.0);
        let chain = &mut ws
            .six
            .get_or_insert_with(|| Box::new(StageBlocks::new(n)))
            .chain;
        for first in (0..intervals).step_by(chunk) {
            let last = (first + chunk).min(intervals);
            let c = last - first;
            // Quarter-point stages, then their fields.
            quarter_stages_of(t, y, &ws.f, first..last, &mut ws.batch_t, &mut ws.batch_y);
            ws.batch_f.resize(c * 2 * n, 0.0);
            self.eval_many(&ws.batch_t, &ws.batch_y, &mut ws.batch_f, &mut ws.field);
            // All three stages of each interval, `(Y₃, Y₄, Y₅)`, for their Jacobians.
            ws.stage_t.clear();
            ws.stage_y.resize(c * 3 * n, 0.0);
            for (k, stages) in ws.stage_y.chunks_exact_mut(3 * n).enumerate() {
                let i = first + k;
                let h = t[i + 1] - t[i];
                let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
                let (f0, f1) = (&ws.f[i * n..(i + 1) * n], &ws.f[(i + 1) * n..(i + 2) * n]);
                let (k3, k4) = ws.batch_f[k * 2 * n..(k + 1) * 2 * n].split_at(n);
                let (y34, y5) = stages.split_at_mut(2 * n);
                y34.copy_from_slice(&ws.batch_y[k * 2 * n..(k + 1) * 2 * n]);
                middle_stage(h, y0, y1, f0, f1, k3, k4, y5);
                ws.stage_t
                    .extend([t[i] + 0.25 * h, t[i] + 0.75 * h, t[i] + 0.5 * h]);
            }
            // A chunk's first node Jacobian is its predecessor's last, evaluated again: one
            // point per chunk, where most meshes of small systems are one chunk.
            let (node_j, stage_j) = ws.jacs.split_at_mut((c + 1) * nn);
            let nodes_y = &y[first * n..(last + 1) * n];
            self.eval_jacobians(&t[first..=last], nodes_y, node_j, &mut ws.field);
            let stage_j = &mut stage_j[..3 * c * nn];
            self.eval_jacobians(&ws.stage_t, &ws.stage_y, stage_j, &mut ws.field);
            let (node_j, stage_j) = (&*node_j, &*stage_j);
            let node = |k: usize| &node_j[k * nn..(k + 1) * nn];
            let stage = |k: usize| &stage_j[k * nn..(k + 1) * nn];
            for k in 0..c {
                let i = first + k;
                let h = t[i + 1] - t[i];
                let nodes = [node(k), node(k + 1)];
                let stages = [stage(3 * k), stage(3 * k + 1), stage(3 * k + 2)];
                self.interval_blocks6(h, i, nodes, stages, chain, jac);
            }
        }
    }

    /// Adds interval `i`'s blocks to `jac` from its node Jacobians `J_i`, `J_{i+1}` and stage
    /// Jacobians `J₃`, `J₄`, `J₅` (see [`System::interval_jacobian6`]), all column-major.
    fn interval_blocks6(
        &self,
        h: f64,
        i: usize,
        nodes: [&[f64]; 2],
        [j3, j4, j5]: [&[f64]; 3],
        sb: &mut ChainProducts,
        jac: &mut NewtonMatrix,
    ) {
        let n = 2 * self.d();
        let [q0, q1, q2, q3] = mirk6::QUARTER;
        let [m0, _, m2, _] = mirk6::MIDDLE;
        let [w0, w1, w2] = mirk6::WEIGHTS;
        let row = self.d() + i * n;
        // (node Jacobian, column offset, ∂Y₃ weights, ∂Y₄ weights, Y₅'s weight of J_y, ±I)
        let sides = [
            (0, i * n, [q0, q2], [q1, -q3], m0, -1.0),
            (1, (i + 1) * n, [q1, q3], [q0, -q2], -m0, 1.0),
        ];
        for (node, c0, [a3, b3], [a4, b4], m, eye) in sides {
            let jy = nodes[node];
            product_of(j3, jy, &mut sb.p3);
            product_of(j4, jy, &mut sb.p4);
            // P₃ = a₃ J₃ + b₃ h J₃ J_y (and P₄), then ∂Y₅/∂y.
            for (((p3, p4), (&j3, &j4)), (a5, &x)) in sb
                .p3
                .as_mut_slice()
                .iter_mut()
                .zip(sb.p4.as_mut_slice().iter_mut())
                .zip(j3.iter().zip(j4))
                .zip(sb.a5.as_mut_slice().iter_mut().zip(jy))
            {
                *p3 = a3 * j3 + b3 * h * *p3;
                *p4 = a4 * j4 + b4 * h * *p4;
                *a5 = h * (m * x + m2 * (*p3 - *p4));
            }
            for k in 0..n {
                sb.a5[(k, k)] += 0.5;
            }
            product_of(j5, sb.a5.as_slice(), &mut sb.p5);
            let (p3, p4, p5) = (sb.p3.as_slice(), sb.p4.as_slice(), sb.p5.as_slice());
            for b in 0..n {
                let col = b * n..(b + 1) * n;
                let out = jac.column_mut(row, c0 + b, n);
                for (a, (v, q)) in out.iter_mut().zip(col).enumerate() {
                    let identity = if a == b { eye } else { 0.0 };
                    *v += identity - h * (w0 * jy[q] + w1 * (p3[q] + p4[q]) + w2 * p5[q]);
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

/// `(c₁, c₂, c₃)` of an interval block `±I − h (c₁ J + c₂ J² + c₃ J³)` for a constant field
/// Jacobian `J` (the left block, `∂r/∂y_i`, or the right one): the chain rule of
/// [`System::interval_jacobian6`] (or of the fourth-order midpoint) with every stage
/// Jacobian equal to `J`.
fn constant_block(h: f64, right: bool, order6: bool) -> [f64; 3] {
    if !order6 {
        // −I − h/6 (3J + h/2 J²) on the left, I − h/6 (3J − h/2 J²) on the right.
        let c2 = if right { -h / 12.0 } else { h / 12.0 };
        return [0.5, c2, 0.0];
    }
    let [q0, q1, q2, q3] = mirk6::QUARTER;
    let [m0, _, m2, _] = mirk6::MIDDLE;
    let [w0, w1, w2] = mirk6::WEIGHTS;
    // The side coefficients of `interval_jacobian6`.
    let ([a3, b3], [a4, b4], m) = if right {
        ([q1, q3], [q0, -q2], -m0)
    } else {
        ([q0, q2], [q1, -q3], m0)
    };
    [
        w0 + w1 * (a3 + a4) + 0.5 * w2,
        h * (w1 * (b3 + b4) + w2 * (m + m2 * (a3 - a4))),
        h * h * w2 * m2 * (b3 - b4),
    ]
}

/// The sixth-order scheme's quarter-point stages `Y₃`, `Y₄` ([`crate::scheme`]).
fn quarter_stages(
    h: f64,
    y0: &[f64],
    y1: &[f64],
    f0: &[f64],
    f1: &[f64],
    y3: &mut [f64],
    y4: &mut [f64],
) {
    let [q0, q1, q2, q3] = mirk6::QUARTER;
    for j in 0..y3.len() {
        y3[j] = q0 * y0[j] + q1 * y1[j] + h * (q2 * f0[j] + q3 * f1[j]);
        y4[j] = q1 * y0[j] + q0 * y1[j] - h * (q3 * f0[j] + q2 * f1[j]);
    }
}

/// `out = J·f` for a column-major `n×n` matrix `J` (`n = f.len()`), summed column by column.
fn matrix_vector(jac: &[f64], f: &[f64], out: &mut [f64]) {
    out.fill(0.0);
    for (col, &fb) in jac.chunks_exact(f.len()).zip(f) {
        for (o, &v) in out.iter_mut().zip(col) {
            *o += v * fb;
        }
    }
}

/// The quarter-point stages `(Y₃, Y₄)` of `intervals` into `ys` (two states per interval,
/// `2D` values each) and their times into `ts`, from the node states `y` and fields `f`.
fn quarter_stages_of(
    t: &[f64],
    y: &[f64],
    f: &[f64],
    intervals: std::ops::Range<usize>,
    ts: &mut Vec<f64>,
    ys: &mut Vec<f64>,
) {
    let n = y.len() / t.len();
    ts.clear();
    ys.resize(intervals.len() * 2 * n, 0.0);
    for (i, stages) in intervals.zip(ys.chunks_exact_mut(2 * n)) {
        let h = t[i + 1] - t[i];
        let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
        let (f0, f1) = (&f[i * n..(i + 1) * n], &f[(i + 1) * n..(i + 2) * n]);
        let (y3, y4) = stages.split_at_mut(n);
        quarter_stages(h, y0, y1, f0, f1, y3, y4);
        ts.push(t[i] + 0.25 * h);
        ts.push(t[i] + 0.75 * h);
    }
}

/// The sixth-order scheme's middle stage `Y₅` from the quarter-point fields `K₃`, `K₄`.
#[allow(clippy::too_many_arguments)]
fn middle_stage(
    h: f64,
    y0: &[f64],
    y1: &[f64],
    f0: &[f64],
    f1: &[f64],
    k3: &[f64],
    k4: &[f64],
    y5: &mut [f64],
) {
    let [m0, m1, m2, m3] = mirk6::MIDDLE;
    for j in 0..y5.len() {
        y5[j] = 0.5 * (y0[j] + y1[j]) + h * (m0 * f0[j] + m1 * f1[j] + m2 * k3[j] + m3 * k4[j]);
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
    product_of(a.as_slice(), b.as_slice(), out);
}

/// [`product`] of column-major `n×n` matrices `a`, `b` given as slices (`out` is `n×n`).
fn product_of(sa: &[f64], sb: &[f64], out: &mut DMatrix<f64>) {
    fn fixed<const N: usize>(a: &[f64], b: &[f64], out: &mut [f64]) {
        let a = nalgebra::SMatrix::<f64, N, N>::from_column_slice(a);
        let b = nalgebra::SMatrix::<f64, N, N>::from_column_slice(b);
        out.copy_from_slice((a * b).as_slice());
    }
    let n = out.nrows();
    match n {
        2 => return fixed::<2>(sa, sb, out.as_mut_slice()),
        4 => return fixed::<4>(sa, sb, out.as_mut_slice()),
        6 => return fixed::<6>(sa, sb, out.as_mut_slice()),
        _ if n > 16 => {
            let a = nalgebra::DMatrixView::from_slice(sa, n, n);
            let b = nalgebra::DMatrixView::from_slice(sb, n, n);
            out.gemm(1.0, &a, &b, 0.0);
            return;
        }
        _ => {}
    }
    let so = out.as_mut_slice();
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
    /// both schemes, every end condition and (for the affine fields) both assemblies, on a nonlinear problem (`D = 2`, scalar band) and a coupled
    /// quadratic (`D = 8`, dense panels), on a nonuniform mesh.
    /// The sixth-order blocks assembled from Jacobians evaluated in chunks of intervals (with a
    /// partial last chunk) equal those evaluated point by point, bit for bit: the same
    /// arithmetic in another order of evaluation.
    #[test]
    fn chunked_jacobian_assembly_matches_pointwise_bit_for_bit() {
        let t = [0.0, 0.3, 0.5, 1.1, 1.4, 1.5, 2.0];
        let well: Arc<dyn Landscape> = Arc::new(AutoDiff(DoubleWell::figure1()));
        let s = lossnav_problems::expr::Scope::new(
            vec!["a".into(), "b".into(), "c".into()],
            Default::default(),
        )
        .unwrap();
        let expr: Arc<dyn Landscape> = Arc::new(
            lossnav_problems::ExprLoss::parse("loss", "a^4 - a*b + sin(b*c) + c^2*t", &s).unwrap(),
        );
        // The expression loss also with a nonlinear drift and a state-dependent metric (the
        // Jacobian blocks beyond the loss Hessian), and as the linearised system (the copied
        // Jacobians of a non-autonomous linearisation).
        let rows = vec![
            vec!["1 + 0.5*b^2".into(), "0.1*a*b".into(), "0".into()],
            vec!["0.1*a*b".into(), "1 + 0.3*a^2".into(), "0".into()],
            vec!["0".into(), "0".into(), "1 + 0.2*sin(c)".into()],
        ];
        let texts: Vec<String> = vec![
            "-0.3*b + 0.1*sin(a*c)".into(),
            "0.2*a".into(),
            "-c^3".into(),
        ];
        let metric = lossnav_problems::ExprMetric::parse("metric", &rows, &s, &[0.1; 3]).unwrap();
        let drift = lossnav_problems::ExprDrift::parse("drift", &texts, &s).unwrap();
        let plain = |loss: &Arc<dyn Landscape>| Lagrangian::from_arc(loss.clone()).with_gamma(0.3);
        let cases = [
            (plain(&well), 2usize, false),
            (plain(&expr), 3, false),
            (plain(&expr).with_metric(metric).with_drift(drift), 3, false),
            (plain(&expr), 3, true),
        ];
        for (lag, d, linearised) in cases {
            let theta0 = vec![0.1; d];
            let end = EndCondition::Fixed(vec![1.0; d]);
            let lin = Linearisation::new(&lag, vec![0.2; 2 * d]);
            assert!(!linearised || lin.autonomous.is_none());
            let sys = System {
                order6: true,
                linearised: linearised.then_some(&lin),
                ..System::new(&lag, &theta0, &end)
            };
            let m = t.len() * 2 * d;
            let y: Vec<f64> = (0..m).map(|k| 0.3 * ((k as f64) * 0.7).sin()).collect();
            let assembled = |chunk: usize| {
                let mut ws = Workspace::new(d);
                sys.eval_nodes(&t, &y, &mut ws).unwrap();
                let mut jac = NewtonMatrix::default();
                jac.reset(d, t.len() - 1);
                sys.interval_jacobians_in(&t, &y, chunk, &mut ws, &mut jac);
                (0..m)
                    .flat_map(|i| (0..m).map(move |j| (i, j)))
                    .map(|(i, j)| jac.get(i, j).to_bits())
                    .collect::<Vec<_>>()
            };
            let pointwise = assembled(1);
            assert!(pointwise.iter().any(|&b| b != 0));
            for chunk in [2, 4, 6] {
                assert!(assembled(chunk) == pointwise, "D = {d}, chunks of {chunk}");
            }
        }
    }

    #[test]
    fn jacobian_matches_finite_differences_of_the_residual() {
        let t = [0.0, 0.3, 0.5, 1.1, 1.4];
        let well: Arc<dyn Landscape> = Arc::new(AutoDiff(DoubleWell::figure1()));
        let h8 = DMatrix::from_fn(8, 8, |i, j| if i == j { 2.0 + i as f64 } else { 0.1 });
        let quad: Arc<dyn Landscape> =
            Arc::new(Quadratic::new(h8, nalgebra::DVector::zeros(8)).unwrap());
        let h3 = DMatrix::from_fn(3, 3, |i, j| if i == j { 1.5 + i as f64 } else { -0.2 });
        let quad3: Arc<dyn Landscape> =
            Arc::new(Quadratic::new(h3, nalgebra::DVector::from_element(3, 0.3)).unwrap());
        // The third case is affine with every ingredient: a rotation-plus-decay drift with an
        // offset and a diagonal metric (`D = 3`, scalar band).
        for (loss, d) in [(well, 2usize), (quad, 8), (quad3, 3)] {
            let mut lag = Lagrangian::from_arc(loss.clone()).with_gamma(0.3);
            if d == 3 {
                let a = DMatrix::from_row_slice(
                    3,
                    3,
                    &[-0.2, 0.5, 0.0, -0.5, -0.2, 0.1, 0.0, -0.1, -0.3],
                );
                lag = lag
                    .with_drift(
                        lossnav_problems::Affine::new(a, nalgebra::dvector![0.1, 0.0, -0.2])
                            .unwrap(),
                    )
                    .with_metric(lossnav_problems::Diagonal::new(vec![0.5, 1.0, 2.0]).unwrap());
                assert!(lag.has_affine_field());
            }
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
            // Every end condition, both schemes, and for the quadratic both the general
            // assembly and the constant-Jacobian one.
            let cases = ends.iter().flat_map(|e| {
                [(false, false), (true, false), (false, true), (true, true)]
                    .map(|(order6, general)| (e, order6, general))
            });
            for (end, order6, general) in cases {
                let sys = System {
                    order6,
                    affine: !general && lag.has_affine_field(),
                    ..System::new(&lag, &theta0, end)
                };
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
                            "D = {d}, order 6 {order6}, general {general}, ({row}, {col}): exact {exact} vs difference {fd}"
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
