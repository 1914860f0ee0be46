//! The Hamiltonian vector field of the optimality conditions (docs/theory.md §2), its exact
//! Jacobian, and the current-value Hamiltonian.
//!
//! State `y = (θ, p)` with `p = G(θ)(θ̇ - f)`:
//!
//! ```text
//! θ̇ = f + M p
//! ṗ = γ p - Dfᵀ p - ½ ∇_θ(pᵀMp) + η k ∇L
//! ```
//!
//! Jacobian blocks, with `A = ∂(Mp)/∂θ`, `B = ∂²(pᵀMp)/∂θ²`, `C = Σ_k p_k ∇²f_k`:
//!
//! ```text
//! ∂θ̇/∂θ = Df + A          ∂θ̇/∂p = M
//! ∂ṗ/∂θ = -C - ½B + ηkH    ∂ṗ/∂p = γI - Dfᵀ - Aᵀ
//! ```

use nalgebra::DMatrix;

use crate::lagrangian::{dot, Lagrangian};
use crate::landscape::Points;
use crate::linalg::with_scratch;

/// Scratch space for field and Jacobian evaluations, so pointwise evaluations
/// ([`Lagrangian::field`], [`Lagrangian::field_jacobian`]) do not allocate.
#[derive(Debug, Clone)]
pub struct FieldWorkspace {
    v1: Vec<f64>,
    v2: Vec<f64>,
    v3: Vec<f64>,
    m: DMatrix<f64>,
    df: DMatrix<f64>,
    dmp: DMatrix<f64>,
    b: DMatrix<f64>,
    c: DMatrix<f64>,
    h: DMatrix<f64>,
    /// Loss Hessians of [`Lagrangian::field_jacobians`], `D²` values per point.
    hs: Vec<f64>,
}

impl FieldWorkspace {
    /// Workspace for `D` parameters: `O(D)` memory for field evaluations; the six `D×D`
    /// matrices of the Jacobian route are allocated on the first Jacobian evaluation, so the
    /// large-`D` routes that only evaluate the field never hold them.
    pub fn new(dim: usize) -> Self {
        let z = DMatrix::zeros(0, 0);
        Self {
            v1: vec![0.0; dim],
            v2: vec![0.0; dim],
            v3: vec![0.0; dim],
            m: z.clone(),
            df: z.clone(),
            dmp: z.clone(),
            b: z.clone(),
            c: z.clone(),
            h: z,
            hs: Vec::new(),
        }
    }

    /// Allocates the Jacobian route's matrices for `D` parameters, if not yet done.
    fn ensure_matrices(&mut self, dim: usize) {
        if self.m.shape() != (dim, dim) {
            let z = DMatrix::zeros(dim, dim);
            self.m = z.clone();
            self.df = z.clone();
            self.dmp = z.clone();
            self.b = z.clone();
            self.c = z.clone();
            self.h = z;
        }
    }
}

impl Lagrangian {
    /// Writes `(θ̇, ṗ)` at `(t, θ, p)` into `dtheta` and `dp`.
    ///
    /// Uses only vector operations of the loss, metric and drift (`O(D)` extra memory for
    /// diagonal metrics and linear-time drifts).
    pub fn field(
        &self,
        t: f64,
        theta: &[f64],
        p: &[f64],
        dtheta: &mut [f64],
        dp: &mut [f64],
        ws: &mut FieldWorkspace,
    ) {
        self.loss().gradient(theta, t, dp);
        self.field_from_gradient(t, theta, p, dtheta, dp, ws);
    }

    /// [`Lagrangian::field`] at several states: `y` and `f` hold `(θ, p)` and `(θ̇, ṗ)` node-major
    /// (`2D` values per point), `t` one time per point. The loss gradients are evaluated
    /// together ([`Landscape::gradients`]: one pass over an expression's tape for all points);
    /// the values are those of `field`, bit for bit.
    ///
    /// [`Landscape::gradients`]: crate::Landscape::gradients
    pub fn field_batch(&self, t: &[f64], y: &[f64], f: &mut [f64], ws: &mut FieldWorkspace) {
        let d = self.dim();
        let n = 2 * d;
        assert!(
            y.len() == t.len() * n && f.len() == y.len(),
            "states and fields must hold 2D values per time"
        );
        if t.is_empty() {
            return;
        }
        // ∇L into the p-part of each point's output, then the rest of the field around it.
        self.loss()
            .gradients(Points::new(y, d, n, t), &mut f[d..], n);
        for ((&tj, yj), fj) in t.iter().zip(y.chunks_exact(n)).zip(f.chunks_exact_mut(n)) {
            let (theta, p) = yj.split_at(d);
            let (dtheta, dp) = fj.split_at_mut(d);
            self.field_from_gradient(tj, theta, p, dtheta, dp, ws);
        }
    }

    /// The field given `∇L(θ, t)` in `dp` (overwritten with `ṗ`).
    #[inline]
    fn field_from_gradient(
        &self,
        t: f64,
        theta: &[f64],
        p: &[f64],
        dtheta: &mut [f64],
        dp: &mut [f64],
        ws: &mut FieldWorkspace,
    ) {
        let (metric, drift) = (self.metric(), self.drift());
        let ek = self.eta() * self.k();
        // Terms that vanish identically (no drift, constant metric) are skipped, not computed
        // as zeros: the field is the innermost evaluation of every solver.
        let (with_drift, with_geometry) = (!drift.is_zero(), !metric.is_constant());
        // θ̇ = f + Mp
        if with_drift {
            drift.value(theta, t, dtheta);
            metric.mobility_mul(theta, p, &mut ws.v1);
            for (o, m) in dtheta.iter_mut().zip(&ws.v1) {
                *o += m;
            }
        } else {
            metric.mobility_mul(theta, p, dtheta);
        }
        // ṗ = γp - Dfᵀp - ½∇(pᵀMp) + ηk∇L
        let gamma = self.gamma();
        for (o, &pi) in dp.iter_mut().zip(p) {
            *o = gamma * pi + ek * *o;
        }
        if with_drift {
            drift.jacobian_transpose_mul(theta, t, p, &mut ws.v2);
            for (o, v) in dp.iter_mut().zip(&ws.v2) {
                *o -= v;
            }
        }
        if with_geometry {
            metric.mobility_quadratic_gradient(theta, p, &mut ws.v3);
            for (o, v) in dp.iter_mut().zip(&ws.v3) {
                *o -= 0.5 * v;
            }
        }
    }

    /// Writes the exact `2D×2D` Jacobian `∂(θ̇, ṗ)/∂(θ, p)` into `jac`.
    pub fn field_jacobian(
        &self,
        t: f64,
        theta: &[f64],
        p: &[f64],
        jac: &mut DMatrix<f64>,
        ws: &mut FieldWorkspace,
    ) {
        ws.ensure_matrices(theta.len());
        let n = 2 * theta.len();
        assert_eq!(jac.shape(), (n, n), "field Jacobian must be 2D×2D");
        let mut h = std::mem::replace(&mut ws.h, DMatrix::zeros(0, 0));
        let mut m = std::mem::replace(&mut ws.m, DMatrix::zeros(0, 0));
        self.loss().hessian(theta, t, &mut h);
        self.metric().mobility(theta, &mut m);
        self.field_jacobian_from_parts(
            t,
            theta,
            p,
            h.as_slice(),
            m.as_slice(),
            jac.as_mut_slice(),
            ws,
        );
        ws.h = h;
        ws.m = m;
    }

    /// [`Lagrangian::field_jacobian`] at several states: `y` holds `(θ, p)` node-major (`2D`
    /// values per point), `t` one time per point, `jacs` one `2D×2D` matrix per point
    /// (column-major, `4D²` values each, contiguous). The loss
    /// Hessians are evaluated together ([`Landscape::hessians`]: one pass over an expression's
    /// tape for all points); the values are those of `field_jacobian`, bit for bit. Holds
    /// `D²` values per point of scratch.
    ///
    /// [`Landscape::hessians`]: crate::Landscape::hessians
    ///
    /// # Panics
    /// If `y` does not hold `2D` values per time, or `jacs` `4D²` per time.
    pub fn field_jacobians(&self, t: &[f64], y: &[f64], jacs: &mut [f64], ws: &mut FieldWorkspace) {
        let d = self.dim();
        let n = 2 * d;
        assert!(
            y.len() == t.len() * n && jacs.len() == t.len() * n * n,
            "states must hold 2D values and Jacobians 4D² per time"
        );
        if t.is_empty() {
            return;
        }
        ws.ensure_matrices(d);
        let mut hs = std::mem::take(&mut ws.hs);
        let mut m = std::mem::replace(&mut ws.m, DMatrix::zeros(0, 0));
        hs.resize(t.len() * d * d, 0.0);
        self.loss().hessians(Points::new(y, d, n, t), &mut hs);
        // A constant metric's mobility once for all points.
        let constant = self.metric().is_constant();
        if constant {
            self.metric().mobility(&y[..d], &mut m);
        }
        for (((&tj, yj), h), jac) in t
            .iter()
            .zip(y.chunks_exact(n))
            .zip(hs.chunks_exact(d * d))
            .zip(jacs.chunks_exact_mut(n * n))
        {
            let (theta, p) = yj.split_at(d);
            if !constant {
                self.metric().mobility(theta, &mut m);
            }
            self.field_jacobian_from_parts(tj, theta, p, h, m.as_slice(), jac, ws);
        }
        ws.hs = hs;
        ws.m = m;
    }

    /// The field Jacobian (column-major, `4D²` values) given the loss Hessian `h` and the
    /// mobility `m` at `(θ, t)` (column-major, `D²` values each); `ws` must hold the Jacobian
    /// route's matrices.
    #[allow(clippy::too_many_arguments)]
    fn field_jacobian_from_parts(
        &self,
        t: f64,
        theta: &[f64],
        p: &[f64],
        h: &[f64],
        m: &[f64],
        out: &mut [f64],
        ws: &mut FieldWorkspace,
    ) {
        let d = theta.len();
        let n = 2 * d;
        let (metric, drift) = (self.metric(), self.drift());
        let ek = self.eta() * self.k();
        let (with_drift, with_geometry) = (!drift.is_zero(), !metric.is_constant());
        // Column-major blocks written directly, a column slice at a time (no per-entry bounds
        // checks); vanishing terms skipped (see `field`).
        let gamma = self.gamma();
        for (j, (hj, mj)) in h.chunks_exact(d).zip(m.chunks_exact(d)).enumerate() {
            let (left, right) = out.split_at_mut((j + d) * n);
            let (zero, hess) = left[j * n..(j + 1) * n].split_at_mut(d);
            zero.fill(0.0);
            for (o, &v) in hess.iter_mut().zip(hj) {
                *o = ek * v;
            }
            let (mob, decay) = right[..n].split_at_mut(d);
            mob.copy_from_slice(mj);
            decay.fill(0.0);
            decay[j] = gamma;
        }
        if with_geometry {
            metric.mobility_derivatives(theta, p, &mut ws.dmp, &mut ws.b);
        }
        if with_drift {
            drift.jacobian(theta, t, &mut ws.df);
            drift.contracted_hessian(theta, t, p, &mut ws.c);
        }
        if with_drift || with_geometry {
            for i in 0..d {
                for j in 0..d {
                    let (mut a, mut b) = (0.0, 0.0);
                    if with_drift {
                        a += ws.df[(i, j)];
                        b += ws.c[(i, j)];
                    }
                    if with_geometry {
                        a += ws.dmp[(i, j)];
                        b += 0.5 * ws.b[(i, j)];
                    }
                    // ∂θ̇/∂θ = Df + A; ∂ṗ/∂θ -= C + ½B; ∂ṗ/∂p -= (Df + A)ᵀ
                    out[i + j * n] = a;
                    out[d + i + j * n] -= b;
                    out[d + j + (d + i) * n] -= a;
                }
            }
        }
    }

    /// The current-value Hamiltonian `ℋ = kL - (1/2η) pᵀMp - (1/η) pᵀf`.
    ///
    /// For autonomous problems `dℋ/dt = -(γ/η) pᵀθ̇` along optimal trajectories; it is
    /// conserved when `γ = 0`.
    pub fn hamiltonian(&self, t: f64, theta: &[f64], p: &[f64]) -> f64 {
        self.hamiltonian_parts(t, theta, p).2
    }

    /// `(L, kinetic, ℋ)` at one point — the loss, `(1/2η) pᵀMp` and the current-value
    /// Hamiltonian — sharing their evaluations (a path's diagnostics need all three).
    pub fn hamiltonian_parts(&self, t: f64, theta: &[f64], p: &[f64]) -> (f64, f64, f64) {
        let loss = self.loss().value(theta, t);
        let (kinetic, h) = self.kinetic_and_hamiltonian(t, theta, p, loss);
        (loss, kinetic, h)
    }

    /// The kinetic term and ℋ at `(θ, p)` given the loss there (evaluated by the caller, for
    /// instance for many points in one batch): the rest of [`Lagrangian::hamiltonian_parts`].
    pub fn kinetic_and_hamiltonian(
        &self,
        t: f64,
        theta: &[f64],
        p: &[f64],
        loss: f64,
    ) -> (f64, f64) {
        let drift_power = if self.drift().is_zero() {
            0.0
        } else {
            with_scratch(theta.len(), |f| {
                self.drift().value(theta, t, f);
                dot(p, f)
            })
        };
        let kinetic = self.kinetic_from_momentum(theta, p);
        let h = self.k() * loss - kinetic - drift_power / self.eta();
        (kinetic, h)
    }
}
