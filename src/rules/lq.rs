//! General linear–quadratic problems: `L = ½(θ-μ)ᵀH(θ-μ)`, constant metric (or mobility `M`),
//! affine drift `f = Aθ + b` (docs/theory.md §4).
//!
//! The value function is quadratic, `V(θ) = V(θ*) - p*ᵀ(θ-θ*)/η + ½(θ-θ*)ᵀP(θ-θ*)`, where `P`
//! is the stabilising solution of the discounted algebraic Riccati equation
//!
//! ```text
//! (A - γ/2 I)ᵀ P + P (A - γ/2 I) - η P M P + k H = 0
//! ```
//!
//! and the optimal learning rule is the linear policy `θ̇ = (A - ηMP)(θ - θ*)`.
//!
//! `P` is computed here from the eigenvectors of the Hamiltonian matrix
//! `Z = [[A, M], [ηkH, γI - Aᵀ]]` (faer's dense eigendecomposition): the `D` eigenvectors with
//! eigenvalues left of `γ/2` span the stable subspace `[X; Y]`, and `P = -Y X⁻¹ / η`. This is
//! deliberately a different algorithm from the solvers' matrix-sign-function route, so the two
//! check each other. The Riccati residual is reported.

use nalgebra::{Complex, DMatrix, DVector};

use lossnav_problems::{Horizon, Problem};

/// Why a problem has no closed-form linear–quadratic rule.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuleError {
    /// The problem is not linear–quadratic; says which piece.
    #[error("not a linear–quadratic problem: {0}")]
    NotLinearQuadratic(String),
    /// The Hamiltonian matrix has no stable/unstable splitting.
    #[error("no stabilising Riccati solution: {0}")]
    NoStabilisingSolution(String),
    /// An explicit time step of a Monte Carlo would be unstable: the simulated paths would
    /// blow up instead of estimating anything.
    #[error(
        "the Euler–Maruyama step dt = {dt} is unstable for {what}: dt × (its fastest rate \
         {rate:.3e}) = {:.3} ≥ 2; use a time step below {:.3e}",
        dt * rate,
        2.0 / rate
    )]
    UnstableStep {
        /// What the rate belongs to (the rule, the filter).
        what: &'static str,
        /// The time step.
        dt: f64,
        /// The largest modulus of the rate matrix's eigenvalues.
        rate: f64,
    },
    /// Simulated paths diverged (a non-finite cost): no estimate.
    #[error(
        "{diverged} of {paths} Monte Carlo paths diverged (non-finite cost; first: path \
         {first}): no estimate"
    )]
    Diverged {
        /// Paths whose cost is not finite.
        diverged: usize,
        /// Paths simulated.
        paths: usize,
        /// The first such path (its index in the seed's streams).
        first: usize,
    },
    /// A Monte Carlo would take more time steps, or hold more per-step data, than allowed.
    #[error(
        "the Monte Carlo needs {steps:.3e} time steps of the {dim}×{dim} filter gain \
         ({:.1} GB, limit {:.1} GB): use a larger time step or a larger γ (the horizon is 40/γ)",
        *steps * (*dim * *dim * 8) as f64 / 1e9,
        *limit as f64 / 1e9
    )]
    TooManySteps {
        /// Time steps the horizon needs.
        steps: f64,
        /// Number of parameters.
        dim: usize,
        /// The memory limit ([`MAX_GAIN_TABLE_BYTES`]).
        limit: usize,
    },
    /// An integration would take more steps than allowed.
    #[error(
        "{what} needs {steps:.3e} steps, more than the {limit:.0e} allowed: use a larger γ \
         (the horizon is 40/γ)"
    )]
    TooLong {
        /// What would be integrated.
        what: &'static str,
        /// Steps it needs.
        steps: f64,
        /// The limit.
        limit: f64,
    },
    /// The closed-form rule is dense and this problem is too large for it.
    #[error(
        "the closed-form rule works with dense D×D matrices: D = {dim} needs about {:.1} GB \
         and {:.1e} flops (limits {:.1} GB, {:.0e} flops; solve it with `lossnav solve \
         --method direct`, which stores O(N·D))",
        *bytes as f64 / 1e9,
        25.0 * (2.0 * *dim as f64).powi(3),
        *limit as f64 / 1e9,
        MAX_RULE_FLOPS
    )]
    TooLarge {
        /// Number of parameters.
        dim: usize,
        /// Estimated bytes of the dense computation.
        bytes: usize,
        /// The limit ([`MAX_RULE_BYTES`]).
        limit: usize,
    },
}

/// The largest table of per-step filter gains a Monte Carlo of an observed problem may hold.
pub const MAX_GAIN_TABLE_BYTES: usize = 2 << 30;

/// Dense `D×D` matrices the closed-form rule holds at once (`H`, `M`, `A`, the `2D×2D`
/// Hamiltonian matrix and its eigenvectors, the Riccati matrix, the policy, work copies).
pub const DENSE_RULE_MATRICES: usize = 16;
/// The most memory the closed-form rule may take; above it the rule is refused before any
/// `D×D` matrix is formed.
pub const MAX_RULE_BYTES: usize = 8 << 30;
/// The most floating-point work the closed-form rule may take (about two minutes, `D ≈ 2000`).
pub const MAX_RULE_FLOPS: f64 = 2e12;

/// The data of a linear–quadratic problem.
#[derive(Debug, Clone, PartialEq)]
pub struct LqData {
    /// Drift matrix `A`.
    pub a: DMatrix<f64>,
    /// Drift offset `b`.
    pub b: DVector<f64>,
    /// Mobility `M = G⁻¹`.
    pub m: DMatrix<f64>,
    /// Loss Hessian `H`.
    pub h: DMatrix<f64>,
    /// Loss minimum `μ`.
    pub mu: DVector<f64>,
    /// η.
    pub eta: f64,
    /// k.
    pub k: f64,
    /// γ.
    pub gamma: f64,
}

impl LqData {
    /// Extracts the data, or says which piece is not linear–quadratic.
    pub fn from_problem(problem: &Problem) -> Result<Self, RuleError> {
        let lag = problem.lagrangian();
        // Every reason the spec is not linear–quadratic, at once (a user fixes them together).
        let mut reasons: Vec<String> = Vec::new();
        if problem.horizon() != Horizon::Infinite {
            reasons.push(
                "the closed-form rule is the stationary (infinite-horizon) policy; \
                 set \"horizon\": \"infinite\""
                    .into(),
            );
        }
        let d = problem.dim();
        let bytes = d.saturating_mul(d).saturating_mul(8 * DENSE_RULE_MATRICES);
        // Work: eigen- and Schur decompositions of the 2D×2D Hamiltonian matrix, about 25
        // (2D)³ flops (D = 1000: 12 s); the memory bound alone would let D = 8000 run for hours.
        let work = 25.0 * (2.0 * d as f64).powi(3);
        if bytes > MAX_RULE_BYTES || work > MAX_RULE_FLOPS {
            // The structure checks below build dense matrices: not at this size.
            if !reasons.is_empty() {
                return Err(RuleError::NotLinearQuadratic(reasons.join("; ")));
            }
            return Err(RuleError::TooLarge {
                dim: d,
                bytes,
                limit: MAX_RULE_BYTES,
            });
        }
        let q = lag.loss().as_quadratic();
        if q.is_none() {
            reasons.push(format!(
                "the loss is {}, not a quadratic (use \"quadratic\")",
                lag.loss().describe()
            ));
        }
        let m = lag.metric().constant_mobility();
        if m.is_none() {
            reasons.push(format!(
                "the metric {} depends on θ",
                lag.metric().describe()
            ));
        }
        let affine = lag.drift().as_affine();
        if affine.is_none() {
            reasons.push(format!(
                "the drift {} is not affine",
                lag.drift().describe()
            ));
        }
        let (Some(q), Some(m), Some((a, b)), true) = (q, m, affine, reasons.is_empty()) else {
            return Err(RuleError::NotLinearQuadratic(reasons.join("; ")));
        };
        Ok(Self {
            a,
            b,
            m,
            h: q.hessian,
            mu: q.minimum,
            eta: lag.eta(),
            k: lag.k(),
            gamma: lag.gamma(),
        })
    }

    /// Number of parameters.
    pub fn dim(&self) -> usize {
        self.mu.len()
    }

    /// The Hamiltonian matrix `Z` of the linear field.
    pub fn hamiltonian_matrix(&self) -> DMatrix<f64> {
        let d = self.dim();
        let mut z = DMatrix::zeros(2 * d, 2 * d);
        z.view_mut((0, 0), (d, d)).copy_from(&self.a);
        z.view_mut((0, d), (d, d)).copy_from(&self.m);
        z.view_mut((d, 0), (d, d))
            .copy_from(&(&self.h * (self.eta * self.k)));
        z.view_mut((d, d), (d, d))
            .copy_from(&(DMatrix::identity(d, d) * self.gamma - self.a.transpose()));
        z
    }

    /// Residual of the discounted Riccati equation at `p`, relative to `‖kH‖ + ‖P‖`.
    pub fn riccati_residual(&self, p: &DMatrix<f64>) -> f64 {
        let d = self.dim();
        let shifted = &self.a - DMatrix::identity(d, d) * (self.gamma / 2.0);
        let r =
            shifted.transpose() * p + p * &shifted - p * &self.m * p * self.eta + &self.h * self.k;
        r.norm() / ((&self.h * self.k).norm() + p.norm()).max(f64::MIN_POSITIVE)
    }
}

/// The closed-form optimal learning rule of a linear–quadratic problem.
#[derive(Debug, Clone)]
pub struct LqRule {
    /// `θ*`.
    pub equilibrium: DVector<f64>,
    /// `p*`.
    pub p_equilibrium: DVector<f64>,
    /// `P`.
    pub riccati: DMatrix<f64>,
    /// `K = A - ηMP`: `θ̇ = K (θ - θ*)`.
    pub policy: DMatrix<f64>,
    /// Closed-loop eigenvalues of `K` as `(re, im)`: decay rates and rotation frequencies.
    pub rates: Vec<(f64, f64)>,
    /// Riccati residual (relative).
    pub residual: f64,
    /// Running cost `ℓ*` of resting at the equilibrium.
    pub equilibrium_running_cost: f64,
    data: LqData,
}

impl LqRule {
    /// Solves the Riccati equation and the equilibrium; `theta0` fixes the conserved
    /// coordinates when the mobility is singular.
    pub fn new(data: &LqData, theta0: &DVector<f64>) -> Result<Self, RuleError> {
        let d = data.dim();
        let z = data.hamiltonian_matrix();
        let zf = faer::Mat::<f64>::from_fn(2 * d, 2 * d, |i, j| z[(i, j)]);
        let evd = zf.eigen().map_err(|e| {
            RuleError::NoStabilisingSolution(format!("eigendecomposition failed: {e:?}"))
        })?;
        let values: Vec<Complex<f64>> = (0..2 * d)
            .map(|i| {
                let v = evd.S().column_vector()[i];
                Complex::new(v.re, v.im)
            })
            .collect();
        let stable: Vec<usize> = (0..2 * d)
            .filter(|&i| values[i].re < data.gamma / 2.0)
            .collect();
        if stable.len() != d {
            return Err(RuleError::NoStabilisingSolution(format!(
                "{} of {} eigenvalues lie left of γ/2 (need exactly {d}): eigenvalues on the line Re = γ/2",
                stable.len(),
                2 * d
            )));
        }
        // P = -Y X⁻¹ / η from the stable eigenvectors [X; Y], by faer's blocked LU:
        // Xᵀ Pᵀ = -Yᵀ / η (nalgebra's unblocked complex inverse was most of the time at D = 500).
        let u = evd.U();
        let xt = faer::Mat::<faer::c64>::from_fn(d, d, |i, j| u[(j, stable[i])]);
        let mut pt = faer::Mat::<faer::c64>::from_fn(d, d, |i, j| u[(d + j, stable[i])]);
        {
            use faer::linalg::solvers::Solve;
            xt.partial_piv_lu().solve_in_place(pt.as_mut());
        }
        if (0..d).any(|j| (0..d).any(|i| !(pt[(i, j)].re.is_finite() && pt[(i, j)].im.is_finite())))
        {
            return Err(RuleError::NoStabilisingSolution(
                "the stable subspace is not a graph over θ (uncontrollable and unstable directions)".into(),
            ));
        }
        let riccati_raw = DMatrix::from_fn(d, d, |i, j| -pt[(j, i)].re / data.eta);
        let riccati = (&riccati_raw + riccati_raw.transpose()) * 0.5;
        let residual = data.riccati_residual(&riccati);
        let policy = &data.a - &data.m * &riccati * data.eta;
        let rates = to_faer(&policy)
            .eigenvalues()
            .map_err(|e| {
                RuleError::NoStabilisingSolution(format!("eigenvalues of the policy: {e:?}"))
            })?
            .iter()
            .map(|c| (c.re, c.im))
            .collect();
        let (equilibrium, p_equilibrium) = equilibrium(data, theta0)?;
        let mp = &data.m * &p_equilibrium;
        let delta = &equilibrium - &data.mu;
        let equilibrium_running_cost = data.k * 0.5 * delta.dot(&(&data.h * &delta))
            + p_equilibrium.dot(&mp) / (2.0 * data.eta);
        Ok(Self {
            equilibrium,
            p_equilibrium,
            riccati,
            policy,
            rates,
            residual,
            equilibrium_running_cost,
            data: data.clone(),
        })
    }

    /// `θ(t) = θ* + e^{Kt}(θ0 - θ*)`.
    pub fn theta(&self, theta0: &DVector<f64>, t: f64) -> DVector<f64> {
        &self.equilibrium + (&self.policy * t).exp() * (theta0 - &self.equilibrium)
    }

    /// `p = p* - ηP(θ - θ*)` at `θ`.
    pub fn momentum(&self, theta: &DVector<f64>) -> DVector<f64> {
        &self.p_equilibrium - &self.riccati * (theta - &self.equilibrium) * self.data.eta
    }

    /// `J*` from `θ0`: `ℓ*/γ - p*ᵀδ/η + ½δᵀPδ`, `δ = θ0 - θ*`. With `γ = 0` the resting term
    /// is dropped: the cost relative to resting at the equilibrium (as the solvers report it).
    pub fn cost(&self, theta0: &DVector<f64>) -> f64 {
        let delta = theta0 - &self.equilibrium;
        let rest = if self.data.gamma > 0.0 {
            self.equilibrium_running_cost / self.data.gamma
        } else {
            0.0
        };
        rest - self.p_equilibrium.dot(&delta) / self.data.eta
            + 0.5 * delta.dot(&(&self.riccati * &delta))
    }
}

/// `(θ*, p*)`: the linear equilibrium `Z [θ*; p*] = [-b; ηkHμ]`, with the conserved
/// coordinates `Nᵀθ* = Nᵀθ0` added when the mobility is singular (least squares, consistent).
fn equilibrium(
    data: &LqData,
    theta0: &DVector<f64>,
) -> Result<(DVector<f64>, DVector<f64>), RuleError> {
    let d = data.dim();
    let z = data.hamiltonian_matrix();
    // faer's blocked decompositions: nalgebra's unblocked SVD of this 2D × 2D system took most
    // of `rule`'s time at D in the hundreds.
    let eig = to_faer(&data.m)
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| RuleError::NoStabilisingSolution(format!("eigenvalues of M: {e:?}")))?;
    let values = eig.S().column_vector();
    let max = (0..d).fold(0.0_f64, |m, i| m.max(values[i].abs()));
    let null: Vec<usize> = (0..d)
        .filter(|&i| values[i].abs() <= 1e-12 * max * d as f64)
        .collect();
    let rows = 2 * d + null.len();
    let mut lhs = faer::Mat::<f64>::zeros(rows, 2 * d);
    for j in 0..2 * d {
        for i in 0..2 * d {
            lhs[(i, j)] = z[(i, j)];
        }
    }
    let mut rhs = vec![0.0; rows];
    let hmu = &data.h * &data.mu * (data.eta * data.k);
    for i in 0..d {
        rhs[i] = -data.b[i];
        rhs[d + i] = hmu[i];
    }
    let vectors = eig.U();
    for (r, &i) in null.iter().enumerate() {
        for j in 0..d {
            lhs[(2 * d + r, j)] = vectors[(j, i)];
        }
        rhs[2 * d + r] = (0..d).map(|j| vectors[(j, i)] * theta0[j]).sum();
    }
    // Column-pivoted QR: rank-revealing (|R₁₁| ≥ |R₂₂| ≥ …, the smallest |Rₖₖ| bounds the
    // smallest singular value from above), and a least-squares solver for the consistent
    // rectangular system; it replaced a thin SVD (at D = 1000 the rule: 16.1 s → 12.4 s).
    let qr = lhs.col_piv_qr();
    let r = qr.thin_R();
    let (rmax, rmin) = (0..2 * d).fold((0.0_f64, f64::INFINITY), |(a, b), i| {
        (a.max(r[(i, i)].abs()), b.min(r[(i, i)].abs()))
    });
    if rmin.is_nan() || rmin <= 1e-12 * rmax {
        return Err(RuleError::NoStabilisingSolution(
            "the equilibrium is not unique: its equations are singular (a flat direction of \
             the loss or k = 0 along a controllable direction, or curvatures too disparate \
             to resolve in double precision)"
                .into(),
        ));
    }
    let mut x = faer::Mat::<f64>::from_fn(rows, 1, |i, _| rhs[i]);
    {
        use faer::linalg::solvers::SolveLstsq;
        qr.solve_lstsq_in_place(x.as_mut());
    }
    let sol = DVector::from_fn(2 * d, |i, _| x[(i, 0)]);
    Ok((sol.rows(0, d).into_owned(), sol.rows(d, d).into_owned()))
}

/// The same matrix as a faer matrix.
fn to_faer(m: &DMatrix<f64>) -> faer::Mat<f64> {
    faer::Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)])
}
