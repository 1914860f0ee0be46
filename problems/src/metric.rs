//! The metric `G(θ)` of the kinetic term, or its inverse, the mobility `M = G⁻¹`.
//!
//! The Hamiltonian field (docs/theory.md §2) needs `M p`, `∇_θ(pᵀMp)` and, for Newton's method,
//! their derivatives with respect to `θ`. The direct method needs `G v` and `∇_θ(vᵀGv)`.
//! Constant metrics return zeros for every `θ`-derivative.

use nalgebra::{DMatrix, DVector};

use crate::error::{check_finite, ProblemError, Result};
use crate::expr::{ExprFunction, Scope};
use crate::linalg::{check_psd, check_spd};

/// A metric (or mobility) with exact `θ`-derivatives of the terms the solvers use.
///
/// Evaluation is infallible: where a θ-dependent metric stops being positive definite the
/// outputs are NaN, and solvers report it.
pub trait Metric: Send + Sync {
    /// Number of parameters.
    fn dim(&self) -> usize;

    /// Whether `G` is independent of `θ`.
    fn is_constant(&self) -> bool;

    /// Whether `G = M⁻¹` exists (false for a singular mobility: partial controllability).
    fn is_invertible(&self) -> bool {
        true
    }

    /// Writes `M(θ)` into `out` (`D×D`).
    fn mobility(&self, theta: &[f64], out: &mut DMatrix<f64>);

    /// Writes `M(θ) p` into `out`.
    fn mobility_mul(&self, theta: &[f64], p: &[f64], out: &mut [f64]);

    /// Writes `∇_θ (pᵀ M(θ) p)` into `out`.
    fn mobility_quadratic_gradient(&self, theta: &[f64], p: &[f64], out: &mut [f64]);

    /// Writes `∂(M p)/∂θ` (entry `[j][i] = ∂(Mp)_j/∂θ_i`) into `dmp` and the Hessian
    /// `∂²(pᵀMp)/∂θ²` into `hess`. Both are `D×D`; `∂/∂p ∇_θ(pᵀMp) = 2 dmpᵀ`.
    fn mobility_derivatives(
        &self,
        theta: &[f64],
        p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    );

    /// Writes `G(θ) v` into `out` (NaN when `G` does not exist).
    fn metric_mul(&self, theta: &[f64], v: &[f64], out: &mut [f64]);

    /// Writes `∇_θ (vᵀ G(θ) v)` into `out` (NaN when `G` does not exist).
    fn metric_quadratic_gradient(&self, theta: &[f64], v: &[f64], out: &mut [f64]);

    /// The constant mobility `M`, when `G` does not depend on `θ` (for closed forms).
    fn constant_mobility(&self) -> Option<DMatrix<f64>> {
        None
    }

    /// A one-line description.
    fn describe(&self) -> String;
}

fn zero_derivatives(dmp: &mut DMatrix<f64>, hess: &mut DMatrix<f64>) {
    dmp.fill(0.0);
    hess.fill(0.0);
}

/// `G = I`: Euclidean geometry, the setting of plain gradient descent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Number of parameters.
    pub dim: usize,
}

impl Identity {
    /// The Euclidean metric on `dim` parameters.
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl Metric for Identity {
    fn dim(&self) -> usize {
        self.dim
    }
    fn is_constant(&self) -> bool {
        true
    }
    fn mobility(&self, _theta: &[f64], out: &mut DMatrix<f64>) {
        out.fill(0.0);
        out.fill_diagonal(1.0);
    }
    fn mobility_mul(&self, _theta: &[f64], p: &[f64], out: &mut [f64]) {
        out.copy_from_slice(p);
    }
    fn mobility_quadratic_gradient(&self, _theta: &[f64], _p: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn mobility_derivatives(
        &self,
        _theta: &[f64],
        _p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    ) {
        zero_derivatives(dmp, hess);
    }
    fn metric_mul(&self, _theta: &[f64], v: &[f64], out: &mut [f64]) {
        out.copy_from_slice(v);
    }
    fn metric_quadratic_gradient(&self, _theta: &[f64], _v: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn constant_mobility(&self) -> Option<DMatrix<f64>> {
        Some(DMatrix::identity(self.dim, self.dim))
    }
    fn describe(&self) -> String {
        "identity".to_string()
    }
}

/// `G = diag(g)`, `g > 0`: per-parameter costs of change; `O(D)` memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagonal {
    g: DVector<f64>,
}

impl Diagonal {
    /// Requires every entry finite and positive.
    pub fn new(g: Vec<f64>) -> Result<Self> {
        check_finite("metric.diag", &g)?;
        if let Some(i) = g.iter().position(|&v| v <= 0.0) {
            return Err(ProblemError::NotPositiveDefinite {
                field: "metric.diag".into(),
                message: format!(
                    "a diagonal metric needs positive entries, but entry {i} is {}",
                    g[i]
                ),
            });
        }
        Ok(Self {
            g: DVector::from_vec(g),
        })
    }

    /// The diagonal of `G`.
    pub fn diagonal(&self) -> &DVector<f64> {
        &self.g
    }
}

impl Metric for Diagonal {
    fn dim(&self) -> usize {
        self.g.len()
    }
    fn is_constant(&self) -> bool {
        true
    }
    fn mobility(&self, _theta: &[f64], out: &mut DMatrix<f64>) {
        out.fill(0.0);
        for (i, g) in self.g.iter().enumerate() {
            out[(i, i)] = 1.0 / g;
        }
    }
    fn mobility_mul(&self, _theta: &[f64], p: &[f64], out: &mut [f64]) {
        for ((o, g), p) in out.iter_mut().zip(self.g.iter()).zip(p) {
            *o = p / g;
        }
    }
    fn mobility_quadratic_gradient(&self, _theta: &[f64], _p: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn mobility_derivatives(
        &self,
        _theta: &[f64],
        _p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    ) {
        zero_derivatives(dmp, hess);
    }
    fn metric_mul(&self, _theta: &[f64], v: &[f64], out: &mut [f64]) {
        for ((o, g), v) in out.iter_mut().zip(self.g.iter()).zip(v) {
            *o = g * v;
        }
    }
    fn metric_quadratic_gradient(&self, _theta: &[f64], _v: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn constant_mobility(&self) -> Option<DMatrix<f64>> {
        Some(DMatrix::from_diagonal(&self.g.map(|g| 1.0 / g)))
    }
    fn describe(&self) -> String {
        format!("diagonal {:?}", self.g.as_slice())
    }
}

/// A constant metric or mobility given as a full matrix.
///
/// Built from `G` (symmetric positive definite) or from the mobility `M` directly (symmetric
/// positive semi-definite, possibly singular: the directions in its null space cannot be
/// moved at all, and `G` does not exist).
#[derive(Debug, Clone, PartialEq)]
pub struct Constant {
    /// `G`, when it exists.
    g: Option<DMatrix<f64>>,
    m: DMatrix<f64>,
}

impl Constant {
    /// From a symmetric positive definite `G`; `field` names it in errors.
    pub fn from_metric(field: &str, g: DMatrix<f64>) -> Result<Self> {
        check_finite(field, g.as_slice())?;
        check_spd(field, &g)?;
        let m = g
            .clone()
            .cholesky()
            .map(|c| c.inverse())
            .ok_or_else(|| ProblemError::invalid(field, "metric is not invertible"))?;
        let m = (&m + m.transpose()) * 0.5;
        Ok(Self { g: Some(g), m })
    }

    /// From a symmetric positive semi-definite mobility `M`; `field` names it in errors.
    pub fn from_mobility(field: &str, m: DMatrix<f64>) -> Result<Self> {
        check_finite(field, m.as_slice())?;
        check_psd(field, &m)?;
        let g = m.clone().cholesky().map(|c| {
            let g = c.inverse();
            (&g + g.transpose()) * 0.5
        });
        Ok(Self { g, m })
    }

    /// `G`, when the mobility is invertible.
    pub fn metric_matrix(&self) -> Option<&DMatrix<f64>> {
        self.g.as_ref()
    }
}

impl Metric for Constant {
    fn dim(&self) -> usize {
        self.m.nrows()
    }
    fn is_constant(&self) -> bool {
        true
    }
    fn is_invertible(&self) -> bool {
        self.g.is_some()
    }
    fn mobility(&self, _theta: &[f64], out: &mut DMatrix<f64>) {
        out.copy_from(&self.m);
    }
    fn mobility_mul(&self, _theta: &[f64], p: &[f64], out: &mut [f64]) {
        mat_vec(&self.m, p, out);
    }
    fn mobility_quadratic_gradient(&self, _theta: &[f64], _p: &[f64], out: &mut [f64]) {
        out.fill(0.0);
    }
    fn mobility_derivatives(
        &self,
        _theta: &[f64],
        _p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    ) {
        zero_derivatives(dmp, hess);
    }
    fn metric_mul(&self, _theta: &[f64], v: &[f64], out: &mut [f64]) {
        match &self.g {
            Some(g) => mat_vec(g, v, out),
            None => out.fill(f64::NAN),
        }
    }
    fn metric_quadratic_gradient(&self, _theta: &[f64], _v: &[f64], out: &mut [f64]) {
        out.fill(if self.g.is_some() { 0.0 } else { f64::NAN });
    }
    fn constant_mobility(&self) -> Option<DMatrix<f64>> {
        Some(self.m.clone())
    }
    fn describe(&self) -> String {
        match &self.g {
            Some(_) => format!("constant matrix (D = {})", self.dim()),
            None => format!("singular mobility (D = {})", self.dim()),
        }
    }
}

fn mat_vec(a: &DMatrix<f64>, v: &[f64], out: &mut [f64]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = a.row(i).iter().zip(v).map(|(x, y)| x * y).sum();
    }
}

/// A θ-dependent metric `G(θ)` whose entries are expressions (the Fisher information of a
/// model, say), with exact symbolic first and second derivatives.
///
/// Only the upper triangle is evaluated; the lower one must state the same expressions,
/// checked symbolically at construction ([`ExprFunction::same_function`]): a matrix that is
/// symmetric only at some points is refused, never symmetrised (the objective's quadratic form
/// would see only its symmetric part). `M = G⁻¹` is obtained by Cholesky factorisation at
/// each evaluation, and its derivatives from `∂M = -M (∂G) M`.
#[derive(Debug, Clone)]
pub struct ExprMetric {
    dim: usize,
    /// Upper triangle, row-major `D×D` (entries with `i > j` are `None`).
    entries: Vec<Option<Entry>>,
}

/// One entry of an expression metric: a constant (no coordinate in it, so nothing to
/// differentiate: the off-diagonal zeros of a diagonal Fisher metric) or an expression.
#[derive(Debug, Clone)]
enum Entry {
    Const(f64),
    Expr(Box<ExprFunction>),
}

impl Entry {
    fn text(&self) -> String {
        match self {
            Entry::Const(c) => c.to_string(),
            Entry::Expr(f) => f.text().to_string(),
        }
    }
}

/// `G`, `∂_k G` and (optionally) `∂_k ∂_l G` at one point, and what the [`Metric`] methods
/// compute from them (shared by the expression metric and [`crate::AutoDiff`] metrics).
pub(crate) struct MetricParts {
    pub(crate) g: DMatrix<f64>,
    pub(crate) dg: Vec<DMatrix<f64>>,
    /// `∂_k ∂_l G` at `k·D + l` (empty unless second derivatives were asked for).
    pub(crate) ddg: Vec<DMatrix<f64>>,
}

/// The weight of the upper-triangle entry `(i, j)` of a symmetric matrix in `vᵀ A v`: `v_i²` on
/// the diagonal, `2 v_i v_j` off it (the entry stands for both triangles).
fn pair_weight(v: &[f64], i: usize, j: usize) -> f64 {
    if i == j {
        v[i] * v[i]
    } else {
        2.0 * v[i] * v[j]
    }
}

/// `M = G⁻¹`, or NaN where `G` is not positive definite.
fn inverse(g: DMatrix<f64>) -> DMatrix<f64> {
    let d = g.nrows();
    match g.cholesky() {
        Some(c) => c.inverse(),
        None => DMatrix::from_element(d, d, f64::NAN),
    }
}

impl MetricParts {
    /// `M = G⁻¹`, or NaN where `G` is not positive definite.
    pub(crate) fn inverse(&self) -> DMatrix<f64> {
        inverse(self.g.clone())
    }

    pub(crate) fn mobility_mul(&self, p: &[f64], out: &mut [f64]) {
        let q = self.inverse() * DVector::from_column_slice(p);
        out.copy_from_slice(q.as_slice());
    }

    pub(crate) fn mobility_quadratic_gradient(&self, p: &[f64], out: &mut [f64]) {
        // ∂_k(pᵀMp) = -qᵀ (∂_k G) q with q = M p.
        let q = self.inverse() * DVector::from_column_slice(p);
        for (o, dgk) in out.iter_mut().zip(&self.dg) {
            *o = -q.dot(&(dgk * &q));
        }
    }

    pub(crate) fn mobility_derivatives(
        &self,
        p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    ) {
        // With q = Mp and w_k = (∂_k G) q:  ∂_k(Mp) = -M w_k,
        // ∂_k∂_l(pᵀMp) = 2 w_lᵀ M w_k - qᵀ (∂_k∂_l G) q.
        let d = self.g.nrows();
        let m = self.inverse();
        let q = &m * DVector::from_column_slice(p);
        let w: Vec<DVector<f64>> = self.dg.iter().map(|dgk| dgk * &q).collect();
        let mw: Vec<DVector<f64>> = w.iter().map(|wk| &m * wk).collect();
        for k in 0..d {
            dmp.column_mut(k).copy_from(&(-&mw[k]));
            for l in 0..d {
                hess[(k, l)] = 2.0 * w[l].dot(&mw[k]) - q.dot(&(&self.ddg[k * d + l] * &q));
            }
        }
    }

    pub(crate) fn metric_mul(&self, v: &[f64], out: &mut [f64]) {
        mat_vec(&self.g, v, out);
    }

    pub(crate) fn metric_quadratic_gradient(&self, v: &[f64], out: &mut [f64]) {
        let v = DVector::from_column_slice(v);
        for (o, dgk) in out.iter_mut().zip(&self.dg) {
            *o = v.dot(&(dgk * &v));
        }
    }
}

impl ExprMetric {
    /// Parses a `D×D` array of expressions; `field` names it in errors, `theta0` is where
    /// symmetry and positive definiteness are checked.
    pub fn parse(field: &str, rows: &[Vec<String>], scope: &Scope, theta0: &[f64]) -> Result<Self> {
        let dim = scope.vars().len();
        if rows.len() != dim {
            return Err(ProblemError::dimension(
                field,
                format!("{dim} rows (the dimension of theta0)"),
                format!("{} rows", rows.len()),
            ));
        }
        let mut entries = vec![None; dim * dim];
        let mut lower = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if row.len() != dim {
                return Err(ProblemError::dimension(
                    format!("{field}[{i}]"),
                    format!("{dim} entries"),
                    format!("{} entries", row.len()),
                ));
            }
            for (j, text) in row.iter().enumerate() {
                // A lower entry written as its upper one is symmetric as it stands: nothing to
                // parse or differentiate a second time.
                if i > j && rows[j].get(i) == Some(text) {
                    continue;
                }
                // Constant entries are not differentiated: a D×D metric of expressions would
                // otherwise build D² derivative programs of D² outputs each.
                let entry = match ExprFunction::constant_value(text, scope) {
                    Some(c) => Entry::Const(c),
                    None => {
                        let f = ExprFunction::parse(&format!("{field}[{i}][{j}]"), text, scope)?;
                        if f.uses_time() {
                            return Err(ProblemError::invalid(
                                format!("{field}[{i}][{j}]"),
                                "a metric may depend on the parameters but not on time `t`",
                            ));
                        }
                        Entry::Expr(Box::new(f))
                    }
                };
                if i <= j {
                    entries[i * dim + j] = Some(entry);
                } else {
                    lower.push((i, j, text, entry));
                }
            }
        }
        for (i, j, text, entry) in &lower {
            let upper = entries[j * dim + i]
                .as_ref()
                .expect("upper entries are set");
            let same = match (entry, upper) {
                // Numeric equality: `0` and `-0` are the same entry.
                (Entry::Const(a), Entry::Const(b)) => a == b,
                (_, Entry::Expr(f)) => ExprFunction::same_function(text, f.text(), scope),
                (Entry::Expr(_), Entry::Const(_)) => false,
            };
            if !same {
                return Err(ProblemError::invalid(
                    format!("{field}[{i}][{j}]"),
                    format!(
                        "the metric is not symmetric for every θ: [{i}][{j}] = \"{text}\" is not \
                         the same expression as [{j}][{i}] = \"{}\" (write the same expression \
                         in both entries)",
                        upper.text()
                    ),
                ));
            }
        }
        let metric = Self { dim, entries };
        let g0 = metric.evaluate(theta0);
        if let Some(i) = g0.iter().position(|v| !v.is_finite()) {
            return Err(ProblemError::NotFiniteAtStart {
                what: format!("{field} entry [{}][{}]", i % dim, i / dim),
                theta0: theta0.to_vec(),
                value: g0[i],
            });
        }
        check_spd(&format!("{field} (at theta0)"), &g0)?;
        Ok(metric)
    }

    /// `G(θ)` (entries written in both triangles).
    fn evaluate(&self, theta: &[f64]) -> DMatrix<f64> {
        let d = self.dim;
        let mut g = DMatrix::zeros(d, d);
        for i in 0..d {
            for j in i..d {
                let v = match &self.entries[i * d + j] {
                    Some(Entry::Expr(f)) => f.value(theta, 0.0),
                    Some(Entry::Const(c)) => *c,
                    None => continue,
                };
                g[(i, j)] = v;
                g[(j, i)] = v;
            }
        }
        g
    }

    /// Calls `visit(i, j, ∇f_ij(θ))` for each upper-triangle entry that depends on θ: the
    /// nonzero part of `∂G`, `O(E·D)` for `E` such entries where the dense tensor has `D³`
    /// values (64 MB at D = 200, zeroed at every evaluation). One gradient buffer serves all.
    fn for_each_entry_gradient(&self, theta: &[f64], mut visit: impl FnMut(usize, usize, &[f64])) {
        let d = self.dim;
        let mut grad = vec![0.0; d];
        for i in 0..d {
            for j in i..d {
                if let Some(Entry::Expr(f)) = &self.entries[i * d + j] {
                    if !f.is_constant_in_theta() {
                        f.gradient(theta, 0.0, &mut grad);
                        visit(i, j, &grad);
                    }
                }
            }
        }
    }

    /// `vᵀ(∂_k G)v` for every `k`, entry by entry.
    fn quadratic_gradient(&self, theta: &[f64], v: &[f64], out: &mut [f64]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        self.for_each_entry_gradient(theta, |i, j, grad| {
            let w = pair_weight(v, i, j);
            for (o, g) in out.iter_mut().zip(grad) {
                *o += w * g;
            }
        });
    }
}

impl Metric for ExprMetric {
    fn dim(&self) -> usize {
        self.dim
    }
    fn is_constant(&self) -> bool {
        self.entries.iter().flatten().all(|e| match e {
            Entry::Const(_) => true,
            Entry::Expr(f) => f.is_constant_in_theta(),
        })
    }
    fn mobility(&self, theta: &[f64], out: &mut DMatrix<f64>) {
        out.copy_from(&inverse(self.evaluate(theta)));
    }
    fn mobility_mul(&self, theta: &[f64], p: &[f64], out: &mut [f64]) {
        let q = inverse(self.evaluate(theta)) * DVector::from_column_slice(p);
        out.copy_from_slice(q.as_slice());
    }
    fn mobility_quadratic_gradient(&self, theta: &[f64], p: &[f64], out: &mut [f64]) {
        // ∂_k(pᵀMp) = -qᵀ (∂_k G) q with q = M p.
        let q = inverse(self.evaluate(theta)) * DVector::from_column_slice(p);
        self.quadratic_gradient(theta, q.as_slice(), out);
        out.iter_mut().for_each(|o| *o = -*o);
    }
    fn mobility_derivatives(
        &self,
        theta: &[f64],
        p: &[f64],
        dmp: &mut DMatrix<f64>,
        hess: &mut DMatrix<f64>,
    ) {
        // With q = Mp and the columns w_k = (∂_k G) q of W:  ∂_k(Mp) = -M w_k and
        // ∂_k∂_l(pᵀMp) = 2 w_lᵀ M w_k - qᵀ (∂_k∂_l G) q, both assembled entry by entry
        // (O(D²) memory; the tensors ∂G and ∂²G have D³ and D⁴ values).
        let d = self.dim;
        let m = inverse(self.evaluate(theta));
        let q = &m * DVector::from_column_slice(p);
        let mut w = DMatrix::zeros(d, d);
        self.for_each_entry_gradient(theta, |i, j, grad| {
            for (k, g) in grad.iter().enumerate() {
                w[(i, k)] += g * q[j];
                if i != j {
                    w[(j, k)] += g * q[i];
                }
            }
        });
        let mw = &m * &w;
        dmp.copy_from(&(-&mw));
        let mut curvature = DMatrix::zeros(d, d);
        let mut h = DMatrix::zeros(d, d);
        for i in 0..d {
            for j in i..d {
                if let Some(Entry::Expr(f)) = &self.entries[i * d + j] {
                    if f.is_constant_in_theta() {
                        continue;
                    }
                    f.hessian(theta, 0.0, &mut h);
                    let c = pair_weight(q.as_slice(), i, j);
                    for (ci, hi) in curvature.iter_mut().zip(h.iter()) {
                        *ci += c * hi;
                    }
                }
            }
        }
        hess.copy_from(&(2.0 * w.transpose() * &mw - curvature));
    }
    fn metric_mul(&self, theta: &[f64], v: &[f64], out: &mut [f64]) {
        mat_vec(&self.evaluate(theta), v, out);
    }
    fn metric_quadratic_gradient(&self, theta: &[f64], v: &[f64], out: &mut [f64]) {
        self.quadratic_gradient(theta, v, out);
    }
    fn constant_mobility(&self) -> Option<DMatrix<f64>> {
        if self.is_constant() {
            Some(inverse(self.evaluate(&vec![0.0; self.dim])))
        } else {
            None
        }
    }
    fn describe(&self) -> String {
        let texts: Vec<String> = self.entries.iter().flatten().map(Entry::text).collect();
        if texts.len() <= 10 {
            format!("expression metric (upper triangle {texts:?})")
        } else {
            format!(
                "expression metric (D = {}, upper triangle {:?}, …)",
                self.dim,
                &texts[..4]
            )
        }
    }
}
