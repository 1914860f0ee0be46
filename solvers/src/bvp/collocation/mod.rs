//! The collocation equations of the Hamiltonian boundary-value problem, their exact Jacobian,
//! and a damped Newton iteration, for the two schemes of [`crate::bvp::scheme`].
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
//! explicit in `y_i`, `y_{i+1}` like this one ([`crate::bvp::scheme`]). Rows are ordered `[θ(0) = θ0 (D rows); r_0; …;
//! r_{N-1}; end condition (D rows)]`, giving a band of `3D - 1` sub- and super-diagonals
//! (factored as such for small `D`, panel by panel beyond: [`NewtonMatrix`]).

use std::sync::Arc;

use nalgebra::DMatrix;

use lossnav_problems::{FieldWorkspace, Lagrangian, Landscape};

use crate::bvp::scheme::mirk6;
use crate::error::SolverError;
use crate::linalg::banded::{BandedLu, Singular};
use crate::linalg::staircase::StaircaseLu;

mod jacobian;
mod newton;

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
    pub(crate) fn reset(&mut self, d: usize, intervals: usize) {
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

    pub(crate) fn factor(&mut self) -> Result<(), Singular> {
        match self {
            NewtonMatrix::Band(b) => b.factor(),
            NewtonMatrix::Staircase(s) => s.factor(),
        }
    }

    pub(crate) fn solve(&self, x: &mut [f64]) {
        match self {
            NewtonMatrix::Band(b) => b.solve(x),
            NewtonMatrix::Staircase(s) => s.solve(x),
        }
    }

    /// `x ← A⁻ᵀ x` where the factorisation offers it (the band, `D < 8`); `false` otherwise.
    pub(crate) fn solve_transpose(&self, x: &mut [f64]) -> bool {
        match self {
            NewtonMatrix::Band(b) => {
                b.solve_transpose(x);
                true
            }
            NewtonMatrix::Staircase(_) => false,
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

    /// Rows `r_i` of the sixth-order scheme ([`crate::bvp::scheme`]): the quarter-point stages of
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

/// The sixth-order scheme's quarter-point stages `Y₃`, `Y₄` ([`crate::bvp::scheme`]).
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
mod tests;
