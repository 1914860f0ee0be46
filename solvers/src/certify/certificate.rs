//! Second-order check of a stationary path (docs/theory.md §7): is it a strict local minimum of
//! `J`, and if not, in how many directions does `J` decrease?
//!
//! The second variation along a solution, written with the exact field Jacobian
//! `[[J₁₁, M], [J₂₁, γI − J₁₁ᵀ]]` of the Hamiltonian system (Legendre transform:
//! `ℒ_θ̇θ̇ = G`, `ℒ_θ̇θ = −G J₁₁`, `ℒ_θθ = J₂₁ + J₁₁ᵀ G J₁₁` for `ℒ = η ℓ`), is
//!
//! ```text
//! η δ²J = ∫ e^{-γt} [ (δθ̇ − J₁₁δθ)ᵀ G (δθ̇ − J₁₁δθ) + δθᵀ J₂₁ δθ ] dt + e^{-γT} η δθ(T)ᵀ ∇²Φ δθ(T)
//! ```
//!
//! with `δθ(0) = 0`, `δθ(T) = 0` for a fixed end, the Hessian of the terminal cost for a free
//! end, and the Riccati matrix `P` of the linearised tail for an infinite horizon (its value
//! beyond the truncation is `½ δθᵀ P δθ`). It is discretised by C¹ cubic Hermite elements
//! (unknowns `δθ` and `δθ̇` at the nodes), three-point Gauss quadrature per element: a
//! symmetric block-tridiagonal matrix `K` (and the mass matrix `M` of `∫ e^{-γt}|δθ|²`),
//! with each node's block row and column scaled by `e^{γt/2}` (a congruence, so the inertia is
//! unchanged) so that strong discounting does not underflow.
//!
//! A block `LDLᵀ` factorisation `S₁ = K₁₁`, `S_{j+1} = K_{j+1,j+1} − K_{j+1,j} S_j⁻¹ K_{j,j+1}`
//! decides everything at `O(N·D³)` cost:
//! - by Sylvester's law of inertia (Haynsworth's additivity), the number of negative
//!   eigenvalues of `K` is the sum over the pivots `S_j`: the descent directions of a saddle;
//! - the leading `j` blocks are the same problem with a fixed end at `t_{j+1}`, so the first
//!   pivot with a negative eigenvalue brackets the first conjugate time (Jacobi's condition);
//! - the smallest eigenvalue of `K x = λ M x` (the Rayleigh quotient `δ²J / ∫e^{-γt}|δθ|²`)
//!   by subspace (block inverse) iteration on the same factors, after bisection on the
//!   inertia for a saddle.
//!
//! The elements are C¹ cubic Hermite, so the discrete eigenvalues converge at `O(h⁶)`; they
//! are placed so that `h·ω ≤ 1` for the local frequency `ω` of the linearised system.

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut};

use lossnav_problems::{End, FieldWorkspace, Horizon, Problem};

use crate::solution::hermite;
use crate::solution::Solution;
pub use crate::solution::{Certificate, SecondOrder, Verdict};

/// Eigenvalues within this fraction of the spectrum's scale are zero to the accuracy of the
/// discretisation.
const NEAR_ZERO: f64 = 1e-10;
/// Vectors of the subspace iteration for the smallest eigenvalue.
const BLOCK_VECTORS: usize = 4;
/// Steps of the subspace iteration from σ = 0 before it shifts toward the smallest eigenvalue:
/// well-separated low eigenvalues converge in well under ten.
const UNSHIFTED_STEPS: usize = 12;
/// Steps of the subspace iteration at most. Well-separated low eigenvalues converge in well
/// under ten; a cluster (many coordinates of similar curvature) converges slowly, and the
/// reported value is then an upper bound within the cluster's spread.
const MAX_SUBSPACE_STEPS: usize = 40;
/// Element length times the local frequency `ω` of the linearised system.
const RESOLUTION: f64 = 1.0;
/// The most elements the check uses; denser meshes are capped (the verdict then rests on a
/// coarser discretisation, reported in [`Certificate::elements`]).
const MAX_ELEMENTS: usize = 40_000;
/// The fewest elements, so short meshes still resolve the second variation.
const MIN_ELEMENTS: usize = 128;
/// The check is skipped beyond this estimated cost (`elements · D³` multiply–adds per
/// factorisation, about 30 factorisations).
const MAX_WORK: f64 = 2e10;

/// The discretised second variation along a solution: `K` and `M` as symmetric
/// block-tridiagonal matrices, one `2D×2D` block per mesh node (the nodal variation `δθ_j` and
/// its scaled velocity `h_ref·δθ̇_j`).
#[derive(Debug, Clone)]
pub struct SecondVariation {
    d: usize,
    /// Element mesh.
    mesh: Vec<f64>,
    /// Velocity unknowns are `w = h_ref·δθ̇`, so all unknowns share the units of θ.
    h_ref: f64,
    k_diag: Vec<DMatrix<f64>>,
    k_off: Vec<DMatrix<f64>>,
    /// `M`'s blocks are `m ⊗ I_D` for a 2×2 pattern `m` over (θ, w), stored column-major.
    m_diag: Vec<[f64; 4]>,
    m_off: Vec<[f64; 4]>,
    /// Whether the end is free (free end or infinite horizon).
    free_end: bool,
    gamma: f64,
    /// `K` is stored divided by this, the spectrum's scale `max K_jj / M_jj` of the assembled
    /// matrix, so every factorisation sees numbers of order one whatever the problem's units
    /// (η = 10^±80 rescales the spectrum by as much); eigenvalues and shifts are converted at
    /// the public methods.
    units: f64,
}

/// A block `LDLᵀ` factorisation of `K − σM`, its blocks stored flat (`b×b` column-major each)
/// so that a factorisation allocates two buffers, not several matrices per node.
struct Factors {
    /// `S_j⁻¹`, block `j` at `j·b²`.
    s_inv: Vec<f64>,
    /// `L_j = B_jᵀ S_j⁻¹` (`B_j` the block above the diagonal at `(j, j+1)`), block `j` at `j·b²`.
    l: Vec<f64>,
    negatives: usize,
    /// First block with a negative eigenvalue.
    first_negative: Option<usize>,
    /// A pivot was singular to working precision.
    singular: bool,
    /// Every pivot block was finite. A block with a NaN or an infinity has no inertia: the
    /// counts above are then meaningless, and the check says so instead of using them.
    finite: bool,
}

/// One run of the subspace iteration: the last Ritz value (an upper bound on the smallest
/// eigenvalue; NaN if none), its M-normalised vector (node-major), whether the value converged,
/// and the limit extrapolated from its last steps when they decrease geometrically.
struct Ritz {
    lambda: f64,
    vector: Vec<f64>,
    converged: bool,
    limit: Option<f64>,
}

/// The lowest mode of the second variation: its eigenvalue, and `δθ`, `δθ̇` at the nodes of
/// [`SecondVariation::mesh`].
pub type LowestMode = (f64, Vec<Vec<f64>>, Vec<Vec<f64>>);

/// Three-point Gauss–Legendre nodes and weights on `[0, 1]` (exact for degree 5, enough for
/// the `O(h⁶)` eigenvalue accuracy of cubic elements).
const GAUSS_X: [f64; 3] = [
    0.5 - 0.387_298_334_620_741_7,
    0.5,
    0.5 + 0.387_298_334_620_741_7,
];
const GAUSS_W: [f64; 3] = [5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0];

/// Runs `$body` with `$d` bound to the problem's dimension `D`: a constant for `D ≤ 4`, so the
/// compiler unrolls the short loops over blocks of 2×2 to 8×8 (where loop overhead, not
/// arithmetic, is the cost of the subspace iteration), a variable otherwise. The kernels it
/// calls are `#[inline(always)]` so that the constant reaches them.
macro_rules! small_d {
    ($dim:expr, |$d:ident| $body:expr) => {
        match $dim {
            1 => {
                let $d: usize = 1;
                $body
            }
            2 => {
                let $d: usize = 2;
                $body
            }
            3 => {
                let $d: usize = 3;
                $body
            }
            4 => {
                let $d: usize = 4;
                $body
            }
            other => {
                let $d: usize = other;
                $body
            }
        }
    };
}

impl SecondVariation {
    /// Builds the discretised second variation of `problem` along `solution`, or says why it
    /// cannot be (a singular mobility has no Legendre condition to work with; a size beyond
    /// the check's budget).
    ///
    /// Elements are C¹ cubic Hermite (the direct method's own path space): the eigenvalues
    /// converge at `O(h⁶)`, so a near-zero eigenvalue is resolved on a mesh where `h·ω ≤ 1`.
    pub fn new(problem: &Problem, solution: &Solution) -> Result<Self, String> {
        let lag = problem.lagrangian();
        let d = lag.dim();
        if !lag.metric().is_invertible() {
            return Err(
                "a singular mobility (partial controllability): the second variation \
                 is constrained to the controllable directions, which the check does not treat"
                    .into(),
            );
        }
        let (gamma, eta) = (lag.gamma(), lag.eta());
        let n = 2 * d;
        // The cheapest mesh the check could use bounds its cost from below: refuse before the
        // per-node Jacobians (O(D²) memory, D Hessian–vector products each) are formed.
        let fewest = MIN_ELEMENTS.max(solution.t.len() / 4).max(1) as f64;
        let least_work = fewest * (2.0 * d as f64).powi(3) * 30.0;
        if least_work > MAX_WORK {
            return Err(format!(
                "the check would cost at least {least_work:.1e} multiply-adds (O(N·D³) for D = {d}); \
                 it runs below {MAX_WORK:.0e}"
            ));
        }
        let mut ws = FieldWorkspace::new(d);
        // Local frequency at the solution's nodes: how finely the elements must resolve.
        let t_sol = &solution.t;
        let mut omega = Vec::with_capacity(t_sol.len());
        let out_of_time = || "the time budget ran out during the second-order check".to_string();
        // The field Jacobians in batches (one pass over an expression's tape, one call into a
        // Python loss, per batch), each batch at most 256 nodes and 32 MB of Jacobians; the
        // budget is read between batches.
        let chunk = ((1usize << 22) / (n * n)).clamp(1, 256);
        let mut jacs = vec![0.0; chunk.min(t_sol.len()) * n * n];
        let mut ys = Vec::with_capacity(chunk.min(t_sol.len()) * n);
        for start in (0..t_sol.len()).step_by(chunk) {
            if crate::budget::Budget::expired() {
                return Err(out_of_time());
            }
            let end = (start + chunk).min(t_sol.len());
            ys.clear();
            for i in start..end {
                ys.extend_from_slice(&solution.theta[i]);
                ys.extend_from_slice(&solution.p[i]);
            }
            let count = end - start;
            lag.field_jacobians(&t_sol[start..end], &ys, &mut jacs[..count * n * n], &mut ws);
            for (k, i) in (start..end).enumerate() {
                let t = t_sol[i];
                let jac =
                    nalgebra::DMatrixView::from_slice(&jacs[k * n * n..(k + 1) * n * n], n, n);
                // A non-finite linearisation has no frequency (and nalgebra's SVD does not end
                // on one): refused here, before any norm.
                if !jac.iter().all(|v| v.is_finite()) {
                    return Err(format!(
                        "the linearised system is not finite along the path (t = {t:.4})"
                    ));
                }
                // Spectral norms of the blocks: the Frobenius norm would overstate them by up to
                // √D, and the element count with them.
                let norm = |r0: usize, c0: usize| {
                    let block = jac.view((r0, c0), (d, d));
                    match d {
                        1 => block[(0, 0)].abs(),
                        // σ_max² = (‖A‖² + √(‖A‖⁴ − 4 det²))/2 (Frobenius norm), without an SVD,
                        // on the block divided by its largest entry so that nothing over- or
                        // underflows.
                        2 => {
                            let scale = block.amax();
                            if scale == 0.0 {
                                return 0.0;
                            }
                            let a = block / scale;
                            let f2 = a.norm_squared();
                            let det = a[(0, 0)] * a[(1, 1)] - a[(0, 1)] * a[(1, 0)];
                            scale
                                * (0.5 * (f2 + (f2 * f2 - 4.0 * det * det).max(0.0).sqrt())).sqrt()
                        }
                        _ => block.into_owned().singular_values().max(),
                    }
                };
                omega.push((norm(d, 0) * norm(0, d)).sqrt() + norm(0, 0) + gamma);
            }
        }
        // Element density per solution interval: the local frequency (h·ω ≤ RESOLUTION), at
        // least MIN_ELEMENTS over the horizon, and at least one element per four intervals of
        // the solution's mesh (which is dense where the path, and so the coefficients, vary).
        // Elements are placed at equal increments of its integral.
        let span = t_sol[t_sol.len() - 1] - t_sol[0];
        let density: Vec<f64> = t_sol
            .windows(2)
            .zip(omega.windows(2))
            .map(|(t, w)| {
                let h = t[1] - t[0];
                (w[0].max(w[1]) / RESOLUTION)
                    .max(MIN_ELEMENTS as f64 / span)
                    .max(0.25 / h)
            })
            .collect();
        let integral: f64 = t_sol
            .windows(2)
            .zip(&density)
            .map(|(t, r)| (t[1] - t[0]) * r)
            .sum();
        if !integral.is_finite() {
            return Err("the linearised system is not finite along the path".into());
        }
        let total = (integral.ceil() as usize).clamp(1, MAX_ELEMENTS);
        let work = (total as f64) * (2.0 * d as f64).powi(3) * 30.0;
        if work > MAX_WORK {
            return Err(format!(
                "the check would cost about {work:.1e} multiply-adds (O(N·D³) for D = {d}); \
                 it runs below {MAX_WORK:.0e}"
            ));
        }
        let mut mesh = Vec::with_capacity(total + 1);
        mesh.push(t_sol[0]);
        let step = integral / total as f64;
        let (mut acc, mut next) = (0.0, step);
        for (t, r) in t_sol.windows(2).zip(&density) {
            let piece = (t[1] - t[0]) * r;
            while next <= acc + piece && mesh.len() < total {
                mesh.push(t[0] + (next - acc) / r);
                next += step;
            }
            acc += piece;
        }
        mesh.push(t_sol[t_sol.len() - 1]);
        let elements = mesh.len() - 1;
        let t_end = mesh[elements];
        let h_ref = (t_end - mesh[0]) / elements as f64;
        if matches!(problem.horizon(), Horizon::Infinite) && solution.tail.is_none() {
            return Err("an infinite-horizon solution without its tail".into());
        }
        let terminal = terminal_hessian(problem, solution);
        let free_end = terminal.is_some();
        let b = 2 * d;
        let zero = DMatrix::<f64>::zeros(b, b);
        let mut k_diag = vec![zero.clone(); elements + 1];
        let mut k_off = vec![zero.clone(); elements];
        let mut m_diag = vec![[0.0; 4]; elements + 1];
        let mut m_off = vec![[0.0; 4]; elements];
        let mut g = DMatrix::zeros(d, d);
        let mut mob = DMatrix::zeros(d, d);
        // A constant metric is inverted once.
        let constant_metric = lag.metric().is_constant();
        let mut have_metric = false;
        let (mut j11, mut gj, mut q) = (
            DMatrix::zeros(d, d),
            DMatrix::zeros(d, d),
            DMatrix::zeros(d, d),
        );
        // The Gauss points' field Jacobians in batches: one batch's loss Hessians come from one
        // pass over an expression's tape, and a batch holds at most ~2 MB of Jacobians.
        // At most 256 elements per batch, so the time budget is read between batches often.
        let batch = ((1usize << 18) / (3 * n * n)).clamp(1, 256);
        let mut ts = Vec::with_capacity(3 * batch.min(elements));
        let mut ys = Vec::with_capacity(3 * batch.min(elements) * n);
        let mut jacs = Vec::new();
        for first in (0..elements).step_by(batch) {
            if crate::budget::Budget::expired() {
                return Err(out_of_time());
            }
            let last = (first + batch).min(elements);
            ts.clear();
            ys.clear();
            for i in first..last {
                let (ta, tb) = (mesh[i], mesh[i + 1]);
                for &x in &GAUSS_X {
                    let t = ta + x * (tb - ta);
                    ts.push(t);
                    let at = ys.len();
                    ys.resize(at + n, 0.0);
                    solution.eval_into(t, &mut ys[at..]);
                }
            }
            jacs.resize(ts.len() * n * n, 0.0);
            lag.field_jacobians(&ts, &ys, &mut jacs, &mut ws);
            for i in first..last {
                if crate::budget::Budget::expired() {
                    return Err(out_of_time());
                }
                let (ta, tb) = (mesh[i], mesh[i + 1]);
                let h = tb - ta;
                let mid = 0.5 * (ta + tb);
                for (gp, (&x, &wq)) in GAUSS_X.iter().zip(&GAUSS_W).enumerate() {
                    let at = 3 * (i - first) + gp;
                    let t = ts[at];
                    let theta = &ys[at * n..at * n + d];
                    let jac = &jacs[at * n * n..(at + 1) * n * n];
                    if !(constant_metric && have_metric) {
                        lag.metric().mobility(theta, &mut mob);
                        let Some(chol) = mob.clone().cholesky() else {
                            return Err(format!(
                                "the metric is not positive definite along the path (t = {t:.4})"
                            ));
                        };
                        g.copy_from(&chol.inverse());
                        have_metric = true;
                    }
                    // With E_k = c'_k I − c_k J₁₁ for the four local unknowns (θ_a, w_a, θ_b,
                    // w_b), the integrand's block (k, l) is E_kᵀ G E_l + c_k c_l sym(J₂₁)
                    //   = c'_k c'_l G − c'_k c_l G J₁₁ − c_k c'_l (G J₁₁)ᵀ + c_k c_l Q,
                    // Q = J₁₁ᵀ G J₁₁ + sym(J₂₁): two products per point instead of sixteen.
                    for c in 0..d {
                        for r in 0..d {
                            j11[(r, c)] = jac[c * n + r];
                        }
                    }
                    gj.gemm(1.0, &g, &j11, 0.0);
                    q.gemm_tr(1.0, &j11, &gj, 0.0);
                    for c in 0..d {
                        for r in 0..d {
                            q[(r, c)] += 0.5 * (jac[c * n + d + r] + jac[r * n + d + c]);
                        }
                    }
                    let bv = hermite::basis(x);
                    let db = hermite::basis_derivative(x);
                    let cv = [bv[0], bv[1] * h / h_ref, bv[2], bv[3] * h / h_ref];
                    let dc = [db[0] / h, db[1] / h_ref, db[2] / h, db[3] / h_ref];
                    // Congruence scaling by e^{γt/2} per node: the discount relative to the
                    // element's nodes, e^{-γ(t − (t_a + t_b)/2)} for the coupling block.
                    let w = wq * h / eta;
                    let wm = wq * h;
                    let scale = [
                        (-gamma * (t - ta)).exp(),
                        (-gamma * (t - mid)).exp(),
                        (-gamma * (t - tb)).exp(),
                    ];
                    let (gs, gjs, qs) = (g.as_slice(), gj.as_slice(), q.as_slice());
                    for k in 0..4 {
                        for l in 0..4 {
                            let (node_k, node_l) = (k / 2, l / 2);
                            let target = match (node_k, node_l) {
                                (0, 0) => &mut k_diag[i],
                                (1, 1) => &mut k_diag[i + 1],
                                (0, 1) => &mut k_off[i],
                                // The lower coupling block is the transpose of the upper one.
                                _ => continue,
                            };
                            let ws_ = w * scale[node_k + node_l];
                            let (a, bk, cl, e) = (
                                ws_ * dc[k] * dc[l],
                                -ws_ * dc[k] * cv[l],
                                -ws_ * cv[k] * dc[l],
                                ws_ * cv[k] * cv[l],
                            );
                            let (r0, c0) = ((k % 2) * d, (l % 2) * d);
                            let out = target.as_mut_slice();
                            small_d!(d, |d| add_combination(
                                d,
                                &mut out[c0 * b + r0..],
                                [a, bk, cl, e],
                                [gs, gjs, qs]
                            ));
                            let mass = match (node_k, node_l) {
                                (0, 0) => &mut m_diag[i],
                                (1, 1) => &mut m_diag[i + 1],
                                _ => &mut m_off[i],
                            };
                            mass[(k % 2) + 2 * (l % 2)] +=
                                wm * scale[node_k + node_l] * cv[k] * cv[l];
                        }
                    }
                }
            }
        }
        if let Some(phi) = &terminal {
            // e^{-γT} ∇²Φ, scaled by e^{γT}.
            let mut v = k_diag[elements].view_mut((0, 0), (d, d));
            v += phi;
        }
        for m in k_diag.iter_mut() {
            let s = 0.5 * (m.clone() + m.transpose());
            *m = s;
        }
        for m in m_diag.iter_mut() {
            let v = 0.5 * (m[1] + m[2]);
            (m[1], m[2]) = (v, v);
        }
        // Fixed unknowns (δθ(0), and δθ(T) for a fixed end) decouple: identity in K, zero in
        // M, which adds eigenvalues at +∞ and changes no count below a finite shift.
        let fix = |node: usize, k_diag: &mut [DMatrix<f64>], m_diag: &mut [[f64; 4]]| {
            // The identity is scaled to the block it replaces: a unit entry would set the
            // spectrum's scale (and the near-zero threshold) in problems whose units make
            // every other entry tiny (η = 10⁸⁰), or be lost beside huge ones.
            let own = k_diag[node].amax();
            let unit = if own.is_finite() && own > 0.0 {
                own
            } else {
                1.0
            };
            for r in 0..d {
                for col in 0..b {
                    k_diag[node][(r, col)] = 0.0;
                    k_diag[node][(col, r)] = 0.0;
                }
                k_diag[node][(r, r)] = unit;
            }
            // The θ row and column of the pattern.
            (m_diag[node][0], m_diag[node][1], m_diag[node][2]) = (0.0, 0.0, 0.0);
        };
        fix(0, &mut k_diag, &mut m_diag);
        if !free_end {
            fix(elements, &mut k_diag, &mut m_diag);
        }
        for (i, (k, m)) in k_off.iter_mut().zip(m_off.iter_mut()).enumerate() {
            for r in 0..d {
                for col in 0..b {
                    if i == 0 {
                        k[(r, col)] = 0.0;
                    }
                    if i + 1 == elements && !free_end {
                        k[(col, r)] = 0.0;
                    }
                }
            }
            // Pattern entries: [θθ, wθ, θw, ww] (row + 2·column).
            if i == 0 {
                (m[0], m[2]) = (0.0, 0.0);
            }
            if i + 1 == elements && !free_end {
                (m[0], m[1]) = (0.0, 0.0);
            }
        }
        let mut sv = Self {
            d,
            mesh,
            h_ref,
            k_diag,
            k_off,
            m_diag,
            m_off,
            free_end,
            gamma,
            units: 1.0,
        };
        let units = sv.spectral_scale();
        if !(units.is_finite() && units > 0.0) {
            return Err(format!(
                "the second variation's scale is {units:.3e}, not a positive finite number"
            ));
        }
        for k in sv.k_diag.iter_mut().chain(sv.k_off.iter_mut()) {
            *k /= units;
        }
        sv.units = units;
        Ok(sv)
    }

    /// Number of elements.
    pub fn elements(&self) -> usize {
        self.mesh.len() - 1
    }

    /// Number of nodal blocks.
    fn blocks(&self) -> usize {
        self.k_diag.len()
    }

    /// Block size `2D`.
    fn block(&self) -> usize {
        2 * self.d
    }

    /// Block `LDLᵀ` of `K − σM`.
    fn factor(&self, sigma: f64) -> Factors {
        let nb = self.blocks();
        let bs = self.block();
        let bb = bs * bs;
        let mut s_inv = vec![0.0; nb * bb];
        let mut l = vec![0.0; nb.saturating_sub(1) * bb];
        let (mut negatives, mut first_negative, mut singular, mut finite) = (0, None, false, true);
        let mut s = self.k_diag[0].clone();
        self.sub_mass(&mut s, &self.m_diag[0], sigma);
        let mut b = DMatrix::zeros(bs, bs);
        let mut work = vec![0.0; bb];
        for j in 0..nb {
            // A non-finite pivot must stop the count, not pass it: NaN eigenvalues count as
            // neither negative nor zero.
            if !s.iter().all(|v| v.is_finite()) {
                finite = false;
                break;
            }
            let inv = &mut s_inv[j * bb..(j + 1) * bb];
            if !small_d!(self.d, |d| spd_inverse(s.as_slice(), 2 * d, &mut work, inv)) {
                let scale = s.amax().max(f64::MIN_POSITIVE);
                let eig = s.clone().symmetric_eigen();
                let mut inv_vals = eig.eigenvalues.clone();
                let mut neg = 0;
                for v in inv_vals.iter_mut() {
                    if !v.is_finite() {
                        finite = false;
                    }
                    if v.abs() <= 1e-13 * scale {
                        singular = true;
                    }
                    if *v < 0.0 {
                        neg += 1;
                    }
                    *v = 1.0 / *v;
                }
                if neg > 0 {
                    negatives += neg;
                    first_negative.get_or_insert(j);
                }
                let full = &eig.eigenvectors
                    * DMatrix::from_diagonal(&inv_vals)
                    * eig.eigenvectors.transpose();
                inv.copy_from_slice(full.as_slice());
            }
            if j + 1 < nb {
                // B = K_off − σM_off; L = Bᵀ S⁻¹; S' = K − σM − L B (symmetrised), in place.
                b.copy_from(&self.k_off[j]);
                self.sub_mass(&mut b, &self.m_off[j], sigma);
                s.copy_from(&self.k_diag[j + 1]);
                self.sub_mass(&mut s, &self.m_diag[j + 1], sigma);
                let (inv, lj) = (&s_inv[j * bb..(j + 1) * bb], &mut l[j * bb..(j + 1) * bb]);
                small_d!(self.d, |d| eliminate(
                    d,
                    b.as_slice(),
                    inv,
                    lj,
                    s.as_mut_slice()
                ));
            }
        }
        Factors {
            s_inv,
            l,
            negatives,
            first_negative,
            singular,
            finite,
        }
    }

    /// `a −= σ (m ⊗ I)` for a mass pattern `m`.
    fn sub_mass(&self, a: &mut DMatrix<f64>, m: &[f64; 4], sigma: f64) {
        let d = self.d;
        for (pr, pc) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let v = sigma * m[pr + 2 * pc];
            if v != 0.0 {
                for i in 0..d {
                    a[(pr * d + i, pc * d + i)] -= v;
                }
            }
        }
    }

    /// `M X` for `p` vectors stored node by node (node `j`'s `b×p` block, column-major, at
    /// `j·b·p`): each block of `M` is a 2×2 pattern times the identity, so `O(D)` per block
    /// and vector.
    fn mass(&self, x: &[f64], p: usize, out: &mut [f64]) {
        small_d!(self.d, |d| mass_kernel(
            d,
            p,
            &self.m_diag,
            &self.m_off,
            x,
            out
        ))
    }

    /// `max_j ‖K_jj‖ / ‖M_jj‖`: the top of the spectrum, about `(G/η)/h²`.
    fn spectral_scale(&self) -> f64 {
        self.k_diag
            .iter()
            .zip(&self.m_diag)
            .map(|(k, m)| (k, m.iter().fold(0.0_f64, |a, v| a.max(v.abs()))))
            .filter(|(_, m)| *m > 0.0)
            .map(|(k, m)| k.amax() / m)
            .fold(0.0, f64::max)
    }

    /// Number of eigenvalues of `K x = λ M x` below `sigma` (Sylvester's law of inertia on the
    /// block `LDLᵀ` of `K − σM`); `usize::MAX` when a pivot is not finite, so no caller can
    /// read a failed count as "none below".
    pub fn count_below(&self, sigma: f64) -> usize {
        self.count_below_scaled(sigma / self.units)
    }

    /// [`SecondVariation::count_below`] with `sigma` in the stored units (divided by
    /// `units`).
    fn count_below_scaled(&self, sigma: f64) -> usize {
        let f = self.factor(sigma);
        if f.finite {
            f.negatives
        } else {
            usize::MAX
        }
    }

    /// The smallest eigenpair of `K x = λ M x` by subspace (block inverse) iteration with the
    /// factors `f` of `K − σM`, `σ` strictly below the smallest eigenvalue: `p` vectors, each
    /// step `Y = (K − σM)⁻¹ M X` and a Rayleigh–Ritz projection, in which
    /// `Yᵀ(K − σM)Y = YᵀMX` needs no product with `K`. The lowest Ritz value converges at
    /// `((λ₁ − σ)/(λ_{p+1} − σ))²` per step, so clustered low eigenvalues (the x and y modes
    /// of a double well) do not slow it down. At most `max_steps` steps.
    fn lowest_pair(&self, f: &Factors, sigma: f64, max_steps: usize) -> Ritz {
        let (b, nb) = (self.block(), self.blocks());
        let n = nb * b;
        let mut p = BLOCK_VECTORS.min(n);
        // The vectors are stored node by node (node j's b×p block at j·b·p), so each sweep of
        // the block solve reads one contiguous block per node.
        // Smooth starts: the low modes are smooth in time; one per coordinate and harmonic.
        let mut x = vec![0.0; n * p];
        for j in 0..nb {
            let s = (j as f64 + 0.5) / nb as f64;
            for k in 0..p {
                let harmonic = (k / self.d + 1) as f64;
                let wave = (0.5 * std::f64::consts::PI * harmonic * s).sin();
                for part in 0..b {
                    x[(j * p + k) * b + part] = if part == k % self.d {
                        wave + 1e-3 * part as f64
                    } else if part < self.d {
                        1e-3 * (s + part as f64)
                    } else {
                        0.0
                    };
                }
            }
        }
        let mut mx = vec![0.0; n * p];
        self.mass(&x, p, &mut mx);
        let (mut y, mut my) = (vec![0.0; n * p], vec![0.0; n * p]);
        let mut lambda = f64::NAN;
        let mut converged = false;
        let mut changes = [f64::NAN; 2];
        for _ in 0..max_steps {
            y.copy_from_slice(&mx);
            self.solve_columns(f, &mut y, p);
            self.mass(&y, p, &mut my);
            let (a, bm) = small_d!(self.d, |d| (
                gram_kernel(2 * d, p, &y, &mx),
                gram_kernel(2 * d, p, &y, &my)
            ));
            // A zᵢ = μᵢ B zᵢ with μ = λ − σ.
            let Some((mu, v)) = ritz(&a, &bm) else { break };
            let q = mu.len();
            let mut order: Vec<usize> = (0..q).collect();
            order.sort_by(|&i, &j| mu[i].total_cmp(&mu[j]));
            // Ritz vectors X = Y V, in ascending order (M-orthonormal), and M X likewise.
            let coef = DMatrix::from_fn(v.nrows(), q, |r, k| v[(r, order[k])]);
            x.resize(n * q, 0.0);
            mx.resize(n * q, 0.0);
            small_d!(self.d, |d| {
                combine_kernel(2 * d, p, &coef, &y, &mut x);
                combine_kernel(2 * d, p, &coef, &my, &mut mx);
            });
            p = q;
            y.resize(n * p, 0.0);
            my.resize(n * p, 0.0);
            let rq = mu[order[0]] + sigma;
            // Seven digits: the Ritz value converges at the square of the vectors' rate, so the
            // last change bounds the remaining error by about its own size times that rate.
            let done = (rq - lambda).abs() <= 1e-7 * (rq.abs() + (rq - sigma).abs());
            changes = [changes[1], lambda - rq];
            lambda = rq;
            if done {
                converged = true;
                break;
            }
        }
        // The first vector, node-major.
        let first = (0..nb)
            .flat_map(|j| x[j * p * b..j * p * b + b].iter().copied())
            .collect();
        // Subspace iteration's Ritz values decrease geometrically toward the eigenvalue: from
        // the last two decreases, the limit (Aitken's extrapolation).
        let [older, last] = changes;
        let rate = last / older;
        let limit =
            (older > 0.0 && last > 0.0 && rate < 1.0).then(|| lambda - last * rate / (1.0 - rate));
        Ritz {
            lambda,
            vector: first,
            converged,
            limit,
        }
    }

    /// `X ← (K − σM)⁻¹ X` for `p` vectors in the node-major layout of
    /// [`SecondVariation::mass`]: each factor block is read once per sweep for all vectors.
    fn solve_columns(&self, f: &Factors, x: &mut [f64], p: usize) {
        small_d!(self.d, |d| solve_kernel(2 * d, p, f, x))
    }

    /// The certificate: inertia at 0 and at `±δ`, first conjugate time, smallest eigenvalue;
    /// or why none can be given.
    ///
    /// Fails closed: the verdict rests on the inertia counts (exact by Sylvester's law for the
    /// factored matrix), and the smallest eigenvalue from the subspace iteration must agree
    /// with them — negative for a saddle, positive for a minimum. A pivot that is not finite,
    /// a spectrum scale that is not, an eigenvalue that is NaN, or counts and eigenvalue that
    /// disagree give `Err` with the numbers, never a verdict.
    pub fn certify(&self) -> Result<Certificate, String> {
        let f = self.factor(0.0);
        if !f.finite {
            return Err(
                "the discretised second variation has a non-finite pivot (its inertia is undefined)"
                    .into(),
            );
        }
        // Eigenvalues within `δ` of zero are zero to the accuracy of the discretisation: they
        // decide nothing (a path that lingers near a hyperbolic equilibrium has a nearly free
        // time shift, say). `δ` is 1e-10 of the spectrum's scale `max K_jj / M_jj ~ 1/h²`.
        // In the stored units that scale is one (`new` divided K by it and refused a scale
        // that is not positive and finite), so δ is the fraction itself.
        let delta = NEAR_ZERO;
        // δ and eigenvalues in the problem's units, for the messages.
        let user = |v: f64| v * self.units;
        let first_conjugate_time = f
            .first_negative
            .filter(|&j| !(self.free_end && j + 1 == self.blocks()))
            .map(|j| {
                // Leading blocks 0..=j: the problem with the variation and its velocity pinned
                // at node j + 1; it first has a descent direction there, so the conjugate
                // point lies in the element (t_j, t_{j+1}].
                0.5 * (self.mesh[j] + self.mesh[j + 1])
            });
        // Counts below −δ and below δ. None below 0 means none below −δ (the count is
        // monotone in the shift), which saves a factorisation on a minimum.
        let below = if f.negatives == 0 {
            0
        } else {
            self.count_below_scaled(-delta)
        };
        let up_to = self.count_below_scaled(delta);
        if below == usize::MAX || up_to == usize::MAX {
            return Err(
                "the discretised second variation has a non-finite pivot at a shift of ±δ".into(),
            );
        }
        if up_to < below || below > f.negatives || f.negatives > up_to {
            return Err(format!(
                "the inertia counts are not monotone in the shift ({below} eigenvalues below −δ, \
                 {} below 0, {up_to} below δ = {:.3e}): the factorisation is unreliable",
                f.negatives,
                user(delta)
            ));
        }
        let near_zero = up_to - below;
        let (lambda, _) = self.smallest(&f);
        if !lambda.is_finite() {
            return Err(format!(
                "the smallest eigenvalue of the second variation did not converge in \
                 {MAX_SUBSPACE_STEPS} subspace steps while the inertia counts {below} below \
                 −δ = {:.3e}",
                -user(delta)
            ));
        }
        // The Ritz value is an upper bound on the smallest eigenvalue: with eigenvalues below
        // −δ it must be negative, and with none below δ it must be positive.
        if below > 0 && lambda >= 0.0 {
            return Err(format!(
                "the inertia counts {below} eigenvalue(s) below −δ = {:.3e} but the smallest \
                 eigenvalue found is {:.3e}: the two routes disagree",
                -user(delta),
                user(lambda)
            ));
        }
        if up_to == 0 && lambda <= 0.0 {
            return Err(format!(
                "the inertia counts no eigenvalue below δ = {:.3e} but the smallest \
                 eigenvalue found is {:.3e}: the two routes disagree",
                user(delta),
                user(lambda)
            ));
        }
        let verdict = if below > 0 {
            Verdict::Saddle
        } else if near_zero > 0 || f.singular {
            Verdict::Degenerate
        } else {
            Verdict::Minimum
        };
        Ok(Certificate {
            verdict,
            descent_directions: below,
            near_zero,
            first_conjugate_time,
            smallest_eigenvalue: lambda * self.units,
            elements: self.elements(),
        })
    }

    /// The smallest eigenvalue and its M-normalised eigenvector (node-major over the free
    /// nodes, in the scaled variables), given the factors at σ = 0.
    /// NaN when the iteration does not converge: an unconverged Ritz value is only an upper
    /// bound, and the check fails closed on it.
    fn smallest(&self, at_zero: &Factors) -> (f64, Vec<f64>) {
        let none = (f64::NAN, Vec::new());
        if at_zero.negatives == 0 && !at_zero.singular {
            let first = self.lowest_pair(at_zero, 0.0, UNSHIFTED_STEPS);
            if first.converged {
                return (first.lambda, first.vector);
            }
            // Low eigenvalues clustered far from zero (relative to their gaps) converge slowly
            // from σ = 0 (many coordinates of similar curvature): shift toward the smallest from
            // below (0 has none below it, and the Ritz value bounds it from above) and iterate
            // again.
            let lambda = first.lambda;
            if !(lambda.is_finite() && lambda > 0.0) {
                return none;
            }
            let (mut lo, mut hi) = (0.0, lambda * (1.0 + 1e-9));
            // Shifts just below the extrapolated limit, each tried by the inertia count (one
            // factorisation): the first one with no eigenvalue below it is tried as the shift
            // (usually within a few times the margin below the smallest eigenvalue, where the
            // iteration converges in a few steps) and is the lower end of the bisection if the
            // iteration does not converge there; one with some below is a tighter upper end.
            // Each bisection step is a factorisation.
            let mut accepted = false;
            if let Some(limit) = first.limit.filter(|l| *l > 0.0 && *l < hi) {
                for margin in [1e-3, 1e-2, 1e-1] {
                    let guess = limit * (1.0 - margin);
                    match self.count_below_scaled(guess) {
                        0 => {
                            lo = guess;
                            accepted = true;
                            break;
                        }
                        usize::MAX => return none,
                        _ => hi = guess,
                    }
                }
            }
            if accepted {
                let near = self.lowest_pair(&self.factor(lo), lo, UNSHIFTED_STEPS);
                if near.converged {
                    return (near.lambda, near.vector);
                }
                // The limit was not close enough for fast convergence: bisect from the shift,
                // which is still below every eigenvalue.
            }
            let lo = self.shift_below(lo, hi);
            let shifted = self.lowest_pair(&self.factor(lo), lo, MAX_SUBSPACE_STEPS);
            return if shifted.converged {
                (shifted.lambda, shifted.vector)
            } else {
                none
            };
        }
        // A shift strictly below the smallest eigenvalue: doubling down until no eigenvalue
        // is below it, then bisection toward it so the iteration converges fast.
        // In the stored units the spectrum's scale is one, so −1 is below or near the
        // smallest eigenvalue whatever the problem's units.
        let mut lo = -1.0;
        loop {
            match self.count_below_scaled(lo) {
                0 => break,
                usize::MAX => return none,
                _ if !lo.is_finite() => return none,
                _ => lo *= 2.0,
            }
        }
        let hi = if at_zero.negatives > 0 { 0.0 } else { -lo };
        let lo = self.shift_below(lo, hi);
        let shifted = self.lowest_pair(&self.factor(lo), lo, MAX_SUBSPACE_STEPS);
        if shifted.converged {
            (shifted.lambda, shifted.vector)
        } else {
            none
        }
    }

    /// Bisection between `lo` (no eigenvalue below it) and `hi` (some below it) to a shift
    /// within 1e-3 (relative) below the smallest eigenvalue, where the subspace iteration
    /// converges in a few steps. Each step is one factorisation.
    fn shift_below(&self, mut lo: f64, mut hi: f64) -> f64 {
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.count_below_scaled(mid) > 0 {
                hi = mid;
            } else {
                lo = mid;
            }
            if hi - lo <= 1e-3 * hi.abs().max(lo.abs()) {
                break;
            }
        }
        lo
    }

    /// The eigenvector of the smallest eigenvalue as a path variation: `δθ` and `δθ̇` at the
    /// nodes of [`SecondVariation::mesh`] (zero `δθ` at `t = 0` and at a fixed end), scaled to
    /// unit maximum of `δθ`, with the eigenvalue: for a saddle, the direction in which `J`
    /// decreases fastest.
    /// `None` when the eigenvalue iteration gives no finite eigenvalue.
    pub fn lowest_mode(&self) -> Option<LowestMode> {
        let f = self.factor(0.0);
        if !f.finite {
            return None;
        }
        let (lambda, x) = self.smallest(&f);
        if !lambda.is_finite() || x.len() != self.blocks() * self.block() {
            return None;
        }
        let (d, b) = (self.d, self.block());
        // The unknowns were scaled by e^{-γt/2} (K and M by e^{γ(tᵢ+tⱼ)/2}); undo it,
        // relative to the last time so nothing overflows.
        let t_last = self.mesh[self.mesh.len() - 1];
        let mut theta = Vec::with_capacity(self.mesh.len());
        let mut theta_dot = Vec::with_capacity(self.mesh.len());
        for (j, &t) in self.mesh.iter().enumerate() {
            let s = (0.5 * self.gamma * (t - t_last)).exp();
            let block = &x[j * b..(j + 1) * b];
            theta.push(block[..d].iter().map(|v| s * v).collect::<Vec<_>>());
            theta_dot.push(
                block[d..]
                    .iter()
                    .map(|v| s * v / self.h_ref)
                    .collect::<Vec<_>>(),
            );
        }
        let amax = theta
            .iter()
            .flatten()
            .fold(0.0_f64, |a: f64, v| a.max(v.abs()))
            .max(f64::MIN_POSITIVE);
        for v in theta.iter_mut().chain(theta_dot.iter_mut()).flatten() {
            *v /= amax;
        }
        Some((lambda * self.units, theta, theta_dot))
    }

    /// The element mesh.
    pub fn mesh(&self) -> &[f64] {
        &self.mesh
    }
}

/// `inv = S⁻¹` for a symmetric positive definite `b×b` matrix `s` (column-major), by Cholesky
/// in `work`; false, with `inv` unspecified, when a pivot is not positive (then `S` is not
/// positive definite, or not to working precision). Written here rather than with nalgebra's
/// `Cholesky` so that the factorisation of a long block-tridiagonal matrix allocates nothing
/// per block.
#[inline(always)]
fn spd_inverse(s: &[f64], b: usize, work: &mut [f64], inv: &mut [f64]) -> bool {
    if b > 16 {
        // Large blocks: faer's blocked Cholesky and triangular inverse, on this thread (the
        // loops below read rows of a column-major matrix, which at 100×100 costs more than
        // the arithmetic).
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::cholesky::llt;
        use faer::{MatMut, MatRef, Par};
        work.copy_from_slice(s);
        let l = MatMut::from_column_major_slice_mut(work, b, b);
        let mut buf = MemBuffer::new(
            llt::factor::cholesky_in_place_scratch::<f64>(b, Par::Seq, Default::default())
                .or(llt::inverse::inverse_scratch::<f64>(b, Par::Seq)),
        );
        let stack = MemStack::new(&mut buf);
        let factored = llt::factor::cholesky_in_place(
            l,
            Default::default(),
            Par::Seq,
            stack,
            Default::default(),
        );
        if factored.is_err() {
            return false;
        }
        let l = MatRef::from_column_major_slice(work, b, b);
        // faer writes the lower triangle of the inverse; the upper one is its mirror.
        llt::inverse::inverse(
            MatMut::from_column_major_slice_mut(inv, b, b),
            l,
            Par::Seq,
            stack,
        );
        for c in 0..b {
            for r in 0..c {
                inv[c * b + r] = inv[r * b + c];
            }
        }
        return true;
    }
    // Lower Cholesky factor L in work (column-major, lower triangle).
    work.copy_from_slice(s);
    for j in 0..b {
        let mut dj = work[j * b + j];
        for k in 0..j {
            dj -= work[k * b + j] * work[k * b + j];
        }
        // NaN fails too: nalgebra's Cholesky rejects the same pivots.
        if dj.is_nan() || dj <= 0.0 {
            return false;
        }
        let ljj = dj.sqrt();
        work[j * b + j] = ljj;
        for i in j + 1..b {
            let mut v = work[j * b + i];
            for k in 0..j {
                v -= work[k * b + i] * work[k * b + j];
            }
            work[j * b + i] = v / ljj;
        }
    }
    // L⁻¹ in the lower triangle of inv, column by column (forward substitution on eⱼ).
    inv.fill(0.0);
    for j in 0..b {
        inv[j * b + j] = 1.0 / work[j * b + j];
        for i in j + 1..b {
            let mut v = 0.0;
            for k in j..i {
                v -= work[k * b + i] * inv[j * b + k];
            }
            inv[j * b + i] = v / work[i * b + i];
        }
    }
    // S⁻¹ = L⁻ᵀ L⁻¹: entry (i, j) = Σ_{k ≥ max(i,j)} L⁻¹[k,i] L⁻¹[k,j], gathered in work (L is
    // no longer needed) and then written symmetric over L⁻¹.
    for j in 0..b {
        for i in 0..=j {
            let mut v = 0.0;
            for k in j..b {
                v += inv[i * b + k] * inv[j * b + k];
            }
            work[j * b + i] = v;
        }
    }
    for j in 0..b {
        for i in 0..=j {
            let v = work[j * b + i];
            inv[j * b + i] = v;
            inv[i * b + j] = v;
        }
    }
    true
}

/// `out[r, c] += a·G + b·GJ + c·(GJ)ᵀ + e·Q` on the `D×D` sub-block of a `2D×2D` block
/// (column-major, leading dimension `2D`) that starts at `out[0]`; `G`, `GJ`, `Q` are `D×D`
/// column-major.
#[inline(always)]
fn add_combination(d: usize, out: &mut [f64], coef: [f64; 4], m: [&[f64]; 3]) {
    let [a, bk, cl, e] = coef;
    let [g, gj, q] = m;
    let b = 2 * d;
    for col in 0..d {
        let column = &mut out[col * b..col * b + d];
        for (r, o) in column.iter_mut().enumerate() {
            *o += a * g[col * d + r]
                + bk * gj[col * d + r]
                + cl * gj[r * d + col]
                + e * q[col * d + r];
        }
    }
}

/// One step of the block elimination: `L = Bᵀ S⁻¹` into `l`, and `S' −= L B`, symmetrised, in
/// place (`S'` holds `K_{j+1} − σM_{j+1}` on entry); all `2D×2D` column-major. Small blocks by
/// plain loops, larger ones by nalgebra's blocked products.
#[inline(always)]
fn eliminate(d: usize, bmat: &[f64], inv: &[f64], l: &mut [f64], s: &mut [f64]) {
    let b = 2 * d;
    if d <= 4 {
        // L[r, c] = Σ_k B[k, r] S⁻¹[k, c].
        for c in 0..b {
            for r in 0..b {
                let mut v = 0.0;
                for k in 0..b {
                    v += bmat[r * b + k] * inv[c * b + k];
                }
                l[c * b + r] = v;
            }
        }
        // S'[r, c] −= Σ_k L[r, k] B[k, c].
        for c in 0..b {
            for k in 0..b {
                let v = bmat[c * b + k];
                for r in 0..b {
                    s[c * b + r] -= l[k * b + r] * v;
                }
            }
        }
    } else {
        let bm = DMatrixView::from_slice(bmat, b, b);
        let inv = DMatrixView::from_slice(inv, b, b);
        let mut lj = DMatrixViewMut::from_slice(l, b, b);
        lj.gemm_tr(1.0, &bm, &inv, 0.0);
        let mut sm = DMatrixViewMut::from_slice(s, b, b);
        sm.gemm(-1.0, &lj, &bm, 1.0);
    }
    for c in 0..b {
        for r in 0..c {
            let v = 0.5 * (s[c * b + r] + s[r * b + c]);
            s[c * b + r] = v;
            s[r * b + c] = v;
        }
    }
}

/// `out = M X` for `p` vectors in the node-major layout (node `j`'s `2D×p` block at
/// `j·2D·p`), `M`'s blocks being 2×2 patterns times `I_D`.
#[inline(always)]
fn mass_kernel(
    d: usize,
    p: usize,
    m_diag: &[[f64; 4]],
    m_off: &[[f64; 4]],
    x: &[f64],
    out: &mut [f64],
) {
    let b = 2 * d;
    let bp = b * p;
    let nb = m_diag.len();
    // o += (m ⊗ I) xs, or (mᵀ ⊗ I) xs, for one node's block of p vectors.
    #[inline(always)]
    fn add(d: usize, p: usize, o: &mut [f64], m: &[f64; 4], xs: &[f64], transpose: bool) {
        let b = 2 * d;
        let m = if transpose {
            [m[0], m[2], m[1], m[3]]
        } else {
            *m
        };
        for k in 0..p {
            let (o, xs) = (&mut o[k * b..(k + 1) * b], &xs[k * b..(k + 1) * b]);
            let (o_theta, o_w) = o.split_at_mut(d);
            let (x_theta, x_w) = xs.split_at(d);
            for i in 0..d {
                o_theta[i] += m[0] * x_theta[i] + m[2] * x_w[i];
                o_w[i] += m[1] * x_theta[i] + m[3] * x_w[i];
            }
        }
    }
    for j in 0..nb {
        let o = &mut out[j * bp..(j + 1) * bp];
        o.fill(0.0);
        add(d, p, o, &m_diag[j], &x[j * bp..(j + 1) * bp], false);
        if j + 1 < nb {
            add(d, p, o, &m_off[j], &x[(j + 1) * bp..(j + 2) * bp], false);
        }
        if j > 0 {
            add(d, p, o, &m_off[j - 1], &x[(j - 1) * bp..j * bp], true);
        }
    }
}

/// `Uᵀ V` (symmetrised) for two blocks of `p` vectors in the node-major layout, `b` values per
/// node and vector.
#[inline(always)]
fn gram_kernel(b: usize, p: usize, u: &[f64], v: &[f64]) -> DMatrix<f64> {
    let mut g = DMatrix::zeros(p, p);
    for (uj, vj) in u.chunks_exact(b * p).zip(v.chunks_exact(b * p)) {
        for k in 0..p {
            let uk = &uj[k * b..(k + 1) * b];
            for l in 0..p {
                let vl = &vj[l * b..(l + 1) * b];
                let mut dot = 0.0;
                for i in 0..b {
                    dot += uk[i] * vl[i];
                }
                g[(k, l)] += dot;
            }
        }
    }
    0.5 * (&g + g.transpose())
}

/// `X = Y C` for `p` vectors `Y` in the node-major layout and a `p×q` matrix `C` (`X` holds
/// `q` vectors in the same layout).
#[inline(always)]
fn combine_kernel(b: usize, p: usize, coef: &DMatrix<f64>, y: &[f64], x: &mut [f64]) {
    let q = coef.ncols();
    for (yj, xj) in y.chunks_exact(b * p).zip(x.chunks_exact_mut(b * q)) {
        for k in 0..q {
            let xk = &mut xj[k * b..(k + 1) * b];
            xk.fill(0.0);
            for m in 0..p {
                let (c, ym) = (coef[(m, k)], &yj[m * b..(m + 1) * b]);
                for i in 0..b {
                    xk[i] += c * ym[i];
                }
            }
        }
    }
}

/// `X ← (K − σM)⁻¹ X` by the block `LDLᵀ` factors `f`, for `p` vectors in the node-major
/// layout with `b` values per node and vector.
#[inline(always)]
fn solve_kernel(b: usize, p: usize, f: &Factors, x: &mut [f64]) {
    let (bb, bp) = (b * b, b * p);
    let nb = x.len() / bp;
    // out ± A X and out ± Aᵀ X for a b×b block A (column-major) and p vectors.
    #[inline(always)]
    fn mul_sub(b: usize, p: usize, a: &[f64], x: &[f64], out: &mut [f64]) {
        for k in 0..p {
            let (o, xk) = (&mut out[k * b..(k + 1) * b], &x[k * b..(k + 1) * b]);
            for c in 0..b {
                let (v, col) = (xk[c], &a[c * b..(c + 1) * b]);
                for r in 0..b {
                    o[r] -= col[r] * v;
                }
            }
        }
    }
    #[inline(always)]
    fn mul_transpose_sub(b: usize, p: usize, a: &[f64], x: &[f64], out: &mut [f64]) {
        for k in 0..p {
            let (o, xk) = (&mut out[k * b..(k + 1) * b], &x[k * b..(k + 1) * b]);
            for r in 0..b {
                let col = &a[r * b..(r + 1) * b];
                let mut dot = 0.0;
                for c in 0..b {
                    dot += col[c] * xk[c];
                }
                o[r] -= dot;
            }
        }
    }
    for j in 0..nb.saturating_sub(1) {
        let (head, tail) = x.split_at_mut((j + 1) * bp);
        mul_sub(
            b,
            p,
            &f.l[j * bb..(j + 1) * bb],
            &head[j * bp..],
            &mut tail[..bp],
        );
    }
    let mut tmp = vec![0.0; bp];
    for j in 0..nb {
        let xj = &mut x[j * bp..(j + 1) * bp];
        tmp.fill(0.0);
        for k in 0..p {
            let (o, xk) = (&mut tmp[k * b..(k + 1) * b], &xj[k * b..(k + 1) * b]);
            let s = &f.s_inv[j * bb..(j + 1) * bb];
            for c in 0..b {
                let (v, col) = (xk[c], &s[c * b..(c + 1) * b]);
                for r in 0..b {
                    o[r] += col[r] * v;
                }
            }
        }
        xj.copy_from_slice(&tmp);
    }
    for j in (0..nb.saturating_sub(1)).rev() {
        let (head, tail) = x.split_at_mut((j + 1) * bp);
        mul_transpose_sub(
            b,
            p,
            &f.l[j * bb..(j + 1) * bb],
            &tail[..bp],
            &mut head[j * bp..],
        );
    }
}

/// The Rayleigh–Ritz step `A z = μ B z` of the subspace iteration: the values `μ` and the
/// coefficients `V` (columns `B`-orthonormal), or `None` when `B` has no usable direction.
///
/// `B = YᵀMY` is factored by Cholesky as usual. With a shift very close to the smallest
/// eigenvalue one step of inverse iteration can make the block numerically rank one (every
/// column dominated by the lowest mode); `B` is then not numerically positive definite, and
/// the step is taken on the eigenvectors of `B` whose eigenvalues are above `1e-10` of its
/// largest: the subspace shrinks to the directions it still resolves, rather than the
/// iteration stopping with no eigenvalue at all.
fn ritz(a: &DMatrix<f64>, b: &DMatrix<f64>) -> Option<(Vec<f64>, DMatrix<f64>)> {
    if !(a.iter().all(|v| v.is_finite()) && b.iter().all(|v| v.is_finite())) {
        return None;
    }
    if let Some(chol) = b.clone().cholesky() {
        if let Some(linv) = chol.l().try_inverse() {
            // B = LLᵀ, C = L⁻¹AL⁻ᵀ, V = L⁻ᵀZ.
            let c = &linv * a * linv.transpose();
            let eig = (0.5 * (&c + c.transpose())).symmetric_eigen();
            if eig.eigenvalues.iter().all(|v| v.is_finite()) {
                let v = linv.transpose() * &eig.eigenvectors;
                return Some((eig.eigenvalues.iter().copied().collect(), v));
            }
        }
    }
    let eb = b.clone().symmetric_eigen();
    let top = eb.eigenvalues.iter().fold(0.0_f64, |m, v| m.max(*v));
    if !(top > 0.0 && top.is_finite()) {
        return None;
    }
    let keep: Vec<usize> = (0..b.nrows())
        .filter(|&i| eb.eigenvalues[i] > 1e-10 * top)
        .collect();
    // W = U_k Λ_k^{-1/2}: WᵀBW = I on the kept directions.
    let w = DMatrix::from_fn(b.nrows(), keep.len(), |r, k| {
        eb.eigenvectors[(r, keep[k])] / eb.eigenvalues[keep[k]].sqrt()
    });
    let c = w.transpose() * a * &w;
    let eig = (0.5 * (&c + c.transpose())).symmetric_eigen();
    if !eig.eigenvalues.iter().all(|v| v.is_finite()) {
        return None;
    }
    Some((
        eig.eigenvalues.iter().copied().collect(),
        w * &eig.eigenvectors,
    ))
}

/// The Hessian of the terminal value at the end of `solution`: `∇²Φ` for a free end (zero
/// without a terminal cost), the tail's Riccati matrix `P` on an infinite horizon, `None` for a
/// fixed end.
pub fn terminal_hessian(problem: &Problem, solution: &Solution) -> Option<DMatrix<f64>> {
    match (problem.horizon(), problem.end()) {
        (Horizon::Infinite, _) => solution.tail.as_ref().map(|t| t.riccati.clone()),
        (_, End::Free { terminal_cost }) => {
            let d = problem.dim();
            let mut h = DMatrix::zeros(d, d);
            if let Some(c) = terminal_cost {
                let end = solution.theta.last().unwrap_or(&[]);
                c.hessian(end, solution.end_time(), &mut h);
            }
            Some(h)
        }
        _ => None,
    }
}

/// The second-order status of `solution` as a solution of `problem`.
pub fn check(problem: &Problem, solution: &Solution) -> SecondOrder {
    match SecondVariation::new(problem, solution) {
        Ok(sv) => match sv.certify() {
            Ok(c) => SecondOrder::Checked(c),
            Err(why) => SecondOrder::Unchecked(why),
        },
        Err(why) => SecondOrder::Unchecked(why),
    }
}

impl Solution {
    /// The solution with its second-order check against `problem` (the problem it solves).
    pub(crate) fn checked(mut self, problem: &Problem) -> Self {
        self.second_order = check(problem, &self);
        self
    }
}
