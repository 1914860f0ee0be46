//! Banded LU factorisation with partial pivoting (the LAPACK `gbtrf`/`gbtrs` algorithm).
//!
//! The collocation Jacobian is block-banded: each interval's residual couples only the two
//! nodes at its ends. Stored as a band it costs `O(n·(kl+ku))` memory and `O(n·kl·(kl+ku))`
//! flops to factor, where a dense matrix would cost `O(n²)` and `O(n³)`. Written here because
//! neither faer nor nalgebra has a banded solver, and a general sparse LU spends more on
//! symbolic analysis than on arithmetic at the sizes a boundary-value solve has (hundreds to
//! tens of thousands of unknowns with a band of a few dozen).

/// An `n×n` matrix with `kl` sub- and `ku` super-diagonals, factored in place.
#[derive(Debug, Clone, Default)]
pub struct BandedLu {
    n: usize,
    kl: usize,
    ku: usize,
    /// Column-major band storage with `kl` extra rows for fill-in: `ld = 2kl + ku + 1`.
    ab: Vec<f64>,
    ipiv: Vec<usize>,
    factored: bool,
}

/// The matrix was singular: the pivot of column `column` vanished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Singular {
    /// The column whose pivot is zero.
    pub column: usize,
}

impl BandedLu {
    /// A zero matrix with the given band.
    pub fn zeros(n: usize, kl: usize, ku: usize) -> Self {
        Self {
            n,
            kl,
            ku,
            ab: vec![0.0; (2 * kl + ku + 1) * n],
            ipiv: vec![0; n],
            factored: false,
        }
    }

    /// Makes this a zero `n×n` matrix with the given band, reusing the storage: a solver that
    /// factors many matrices (one per Newton step and mesh) touches fresh memory only when the
    /// mesh grows.
    pub fn reset(&mut self, n: usize, kl: usize, ku: usize) {
        (self.n, self.kl, self.ku) = (n, kl, ku);
        self.ab.clear();
        self.ab.resize((2 * kl + ku + 1) * n, 0.0);
        self.ipiv.clear();
        self.ipiv.resize(n, 0);
        self.factored = false;
    }

    /// Order of the matrix.
    pub fn n(&self) -> usize {
        self.n
    }

    fn ld(&self) -> usize {
        2 * self.kl + self.ku + 1
    }

    #[inline]
    fn idx(&self, i: usize, j: usize) -> usize {
        (self.kl + self.ku + i - j) + j * self.ld()
    }

    /// Clears to zero for re-assembly.
    pub fn clear(&mut self) {
        self.ab.fill(0.0);
        self.factored = false;
    }

    /// Whether `(i, j)` lies inside the stored band.
    pub fn in_band(&self, i: usize, j: usize) -> bool {
        i < self.n && j < self.n && i <= j + self.kl && j <= i + self.ku
    }

    /// Adds `v` to entry `(i, j)`, which must lie in the band.
    #[inline]
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        debug_assert!(self.in_band(i, j), "({i}, {j}) outside the band");
        let k = self.idx(i, j);
        self.ab[k] += v;
    }

    /// Entries `(i0..i0 + len, j)` of column `j` (contiguous in the band storage), which must
    /// lie in the band.
    #[inline]
    pub fn column_mut(&mut self, i0: usize, j: usize, len: usize) -> &mut [f64] {
        debug_assert!(self.in_band(i0, j) && self.in_band(i0 + len - 1, j));
        let k = self.idx(i0, j);
        &mut self.ab[k..k + len]
    }

    /// Entry `(i, j)` (zero outside the band); meaningful before factorisation.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        if self.in_band(i, j) {
            self.ab[self.idx(i, j)]
        } else {
            0.0
        }
    }

    /// Factors in place with partial pivoting.
    pub fn factor(&mut self) -> Result<(), Singular> {
        // The bands of the collocation matrices of small `D` (`kl = ku = 3D - 1`) get their
        // own instances, where constant loop bounds let the compiler unroll and vectorise the
        // few-element inner loops (their overhead otherwise exceeds their arithmetic).
        let result = match (self.kl, self.ku) {
            (2, 2) => factor_band(&mut self.ab, &mut self.ipiv, self.n, 2, 2),
            (5, 5) => factor_band(&mut self.ab, &mut self.ipiv, self.n, 5, 5),
            (8, 8) => factor_band(&mut self.ab, &mut self.ipiv, self.n, 8, 8),
            (11, 11) => factor_band(&mut self.ab, &mut self.ipiv, self.n, 11, 11),
            (kl, ku) => factor_band(&mut self.ab, &mut self.ipiv, self.n, kl, ku),
        };
        self.factored = true;
        result
    }

    /// Solves `A x = b` in place using the factorisation.
    pub fn solve(&self, b: &mut [f64]) {
        assert!(self.factored, "solve called before factor");
        assert_eq!(b.len(), self.n, "right-hand side of the wrong length");
        match (self.kl, self.ku) {
            (2, 2) => solve_band(&self.ab, &self.ipiv, b, 2, 2),
            (5, 5) => solve_band(&self.ab, &self.ipiv, b, 5, 5),
            (8, 8) => solve_band(&self.ab, &self.ipiv, b, 8, 8),
            (11, 11) => solve_band(&self.ab, &self.ipiv, b, 11, 11),
            (kl, ku) => solve_band(&self.ab, &self.ipiv, b, kl, ku),
        }
    }
}

impl BandedLu {
    /// Solves `Aᵀ x = b` in place (LAPACK `gbtrs` with `trans = 'T'`): `Uᵀ` forward, then `Lᵀ`
    /// backward with the row interchanges undone in reverse order. For adjoints: one
    /// transposed solve gives the gradient of a scalar functional of the solution.
    pub fn solve_transpose(&self, b: &mut [f64]) {
        assert!(self.factored, "solve called before factor");
        assert_eq!(b.len(), self.n, "right-hand side of the wrong length");
        let n = self.n;
        let (kl, ku) = (self.kl, self.ku);
        let kv = kl + ku;
        let ld = 2 * kl + ku + 1;
        let ab = &self.ab;
        // Uᵀ y = b: row j of Uᵀ is column j of U, rows max(0, j − kv)..j above the diagonal.
        for j in 0..n {
            let col = j * ld;
            let lo = j.saturating_sub(kv);
            let u = &ab[kv + col - (j - lo)..kv + col];
            let s: f64 = u.iter().zip(&b[lo..j]).map(|(uij, bi)| uij * bi).sum();
            b[j] = (b[j] - s) / ab[kv + col];
        }
        // Lᵀ x = y, with the interchanges of the factorisation applied last to first.
        for j in (0..n.saturating_sub(1)).rev() {
            let lm = kl.min(n - 1 - j);
            let base = kv + j * ld;
            let s: f64 = ab[base + 1..=base + lm]
                .iter()
                .zip(&b[j + 1..=j + lm])
                .map(|(l, bi)| l * bi)
                .sum();
            b[j] -= s;
            let jp = self.ipiv[j];
            if jp != j {
                b.swap(j, jp);
            }
        }
    }
}

/// `gbtrf` on band storage `ab` (leading dimension `2kl + ku + 1`). Inlined into callers that
/// pass constant `kl`, `ku`.
#[inline(always)]
#[allow(clippy::needless_range_loop)] // `j` is the column: it indexes the band, not just `ipiv`
fn factor_band(
    ab: &mut [f64],
    ipiv: &mut [usize],
    n: usize,
    kl: usize,
    ku: usize,
) -> Result<(), Singular> {
    let kv = kl + ku;
    let ld = 2 * kl + ku + 1;
    let mut ju = 0usize;
    let mut singular = None;
    for j in 0..n {
        let km = kl.min(n - 1 - j);
        // Pivot search in column j, rows j..=j+km.
        let base = kv + j * ld;
        let mut jp = 0;
        let mut best = ab[base].abs();
        for r in 1..=km {
            let v = ab[base + r].abs();
            if v > best {
                best = v;
                jp = r;
            }
        }
        ipiv[j] = j + jp;
        if best == 0.0 || !best.is_finite() {
            singular.get_or_insert(Singular { column: j });
            continue;
        }
        ju = ju.max((j + ku + jp).min(n - 1));
        if jp != 0 {
            // Row j and row j + jp across columns j..=ju: entry (j, c) sits (c − j)(ld − 1)
            // after the diagonal entry (j, j).
            for k in (base..=base + (ju - j) * (ld - 1)).step_by(ld - 1) {
                ab.swap(k, k + jp);
            }
        }
        if km == 0 {
            continue;
        }
        let inv = 1.0 / ab[base];
        // Rank-one update of the trailing columns: column c (rows j+1..=j+km) minus
        // multiplier column × pivot-row entry. Column c's rows start at an offset of
        // (c − j)(ld − 1) below the pivot column's in the band storage.
        let (pivot_col, rest) = ab.split_at_mut(base + km + 1);
        let l = &mut pivot_col[base + 1..];
        if km == kl {
            // Interior columns: every slice has the constant length `kl`.
            let l: &mut [f64] = &mut l[..kl];
            for v in l.iter_mut() {
                *v *= inv;
            }
            for c in (j + 1)..=ju {
                let col = (c - j) * (ld - 1) - km - 1;
                let ajc = rest[col];
                for (a, li) in rest[col + 1..col + 1 + kl].iter_mut().zip(&*l) {
                    *a -= li * ajc;
                }
            }
        } else {
            for v in l.iter_mut() {
                *v *= inv;
            }
            for c in (j + 1)..=ju {
                let col = (c - j) * (ld - 1) - km - 1;
                let ajc = rest[col];
                for (a, li) in rest[col + 1..=col + km].iter_mut().zip(&*l) {
                    *a -= li * ajc;
                }
            }
        }
    }
    match singular {
        None => Ok(()),
        Some(s) => Err(s),
    }
}

/// `gbtrs` for one right-hand side, using [`factor_band`]'s output. Inlined like it.
#[inline(always)]
fn solve_band(ab: &[f64], ipiv: &[usize], b: &mut [f64], kl: usize, ku: usize) {
    let n = b.len();
    let kv = kl + ku;
    let ld = 2 * kl + ku + 1;
    for j in 0..n.saturating_sub(1) {
        let lm = kl.min(n - 1 - j);
        let jp = ipiv[j];
        if jp != j {
            b.swap(j, jp);
        }
        let bj = b[j];
        let base = kv + j * ld;
        if lm == kl {
            let l = &ab[base + 1..base + 1 + kl];
            for (bi, li) in b[j + 1..j + 1 + kl].iter_mut().zip(l) {
                *bi -= li * bj;
            }
        } else {
            for (bi, li) in b[j + 1..=j + lm].iter_mut().zip(&ab[base + 1..]) {
                *bi -= li * bj;
            }
        }
    }
    for j in (0..n).rev() {
        let col = j * ld;
        b[j] /= ab[kv + col];
        let bj = b[j];
        if j >= kv {
            // Rows j−kv..j of column j sit just above its diagonal entry.
            let u = &ab[col..col + kv];
            for (bi, uij) in b[j - kv..j].iter_mut().zip(u) {
                *bi -= uij * bj;
            }
        } else {
            let u = &ab[kv + col - j..kv + col];
            for (bi, uij) in b[..j].iter_mut().zip(u) {
                *bi -= uij * bj;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    /// A pseudo-random banded matrix with small diagonal so that pivoting is exercised.
    fn random_band(n: usize, kl: usize, ku: usize, seed: u64) -> (BandedLu, DMatrix<f64>) {
        let mut rnd = lossnav_problems::testbed::uniform(seed);
        let mut band = BandedLu::zeros(n, kl, ku);
        let mut dense = DMatrix::zeros(n, n);
        for i in 0..n {
            for j in i.saturating_sub(kl)..(i + ku + 1).min(n) {
                let v = if i == j { 0.01 * rnd() } else { rnd() };
                band.add(i, j, v);
                dense[(i, j)] = v;
            }
        }
        (band, dense)
    }

    #[test]
    fn matches_dense_lu_with_pivoting() {
        for (n, kl, ku, seed) in [
            (1, 0, 0, 1),
            (7, 2, 1, 2),
            (40, 5, 5, 3),
            (60, 3, 7, 4),
            (25, 0, 3, 5),
            // The constant-band instances (collocation bands of D = 1, 3, 4) and their tails.
            (30, 2, 2, 6),
            (50, 8, 8, 7),
            (60, 11, 11, 8),
            (9, 11, 11, 9),
        ] {
            let (mut band, dense) = random_band(n, kl, ku, seed);
            let x_true = DVector::from_fn(n, |i, _| (i as f64 * 0.37).sin() + 0.5);
            let b = &dense * &x_true;
            band.factor().unwrap();
            let mut x = b.as_slice().to_vec();
            band.solve(&mut x);
            let x_dense = dense.clone().lu().solve(&b).unwrap();
            let x = DVector::from_vec(x);
            // Both are backward stable: residuals at rounding level relative to |A||x|, and
            // solutions equal to (condition number × ε).
            let scale = dense.amax() * x.amax();
            let res = (&dense * &x - &b).amax() / scale;
            assert!(res < 1e-14, "n={n} kl={kl} ku={ku}: residual {res:e}");
            let cond = dense.clone().svd(false, false).singular_values;
            let cond = cond.max() / cond.min();
            let err = (&x - &x_dense).amax() / x_dense.amax();
            assert!(
                err < cond * 1e-14,
                "n={n} kl={kl} ku={ku}: |x - x_dense| = {err:e}, cond {cond:e}"
            );
        }
    }

    /// `Aᵀ x = b` against the dense transpose, with pivoting exercised (small diagonals).
    #[test]
    fn transposed_solve_matches_dense() {
        for (n, kl, ku, seed) in [
            (1, 0, 0, 11),
            (7, 2, 1, 12),
            (40, 5, 5, 13),
            (60, 3, 7, 14),
            (30, 11, 11, 15),
        ] {
            let (mut band, dense) = random_band(n, kl, ku, seed);
            let x_true = DVector::from_fn(n, |i, _| (i as f64 * 0.61).cos() - 0.2);
            let b = dense.transpose() * &x_true;
            band.factor().unwrap();
            let mut x = b.as_slice().to_vec();
            band.solve_transpose(&mut x);
            let x = DVector::from_vec(x);
            let res = (dense.transpose() * &x - &b).amax() / (dense.amax() * x.amax());
            assert!(res < 1e-14, "n={n} kl={kl} ku={ku}: residual {res:e}");
        }
    }

    #[test]
    fn reports_singular_column() {
        let mut band = BandedLu::zeros(3, 1, 1);
        band.add(0, 0, 1.0);
        band.add(1, 0, 1.0);
        band.add(0, 1, 1.0);
        band.add(1, 1, 1.0);
        band.add(2, 2, 1.0);
        assert_eq!(band.factor(), Err(Singular { column: 1 }));
    }
}

/// Cholesky factorisation `A = C Cᵀ` of a symmetric positive definite band matrix with `bw`
/// sub-diagonals (`C` lower triangular with the same band). Used to precondition the direct
/// method: `O(n·bw²)` to factor, `O(n·bw)` per triangular solve.
#[derive(Debug, Clone)]
pub struct BandedCholesky {
    n: usize,
    bw: usize,
    /// Row `i` holds `C[i][i-bw..=i]` at offsets `0..=bw` (entry `j` at `bw + j - i`).
    c: Vec<f64>,
}

impl BandedCholesky {
    /// Factors the symmetric matrix whose lower band is given by `entry(i, j)` for
    /// `i - bw <= j <= i`. `None` if it is not positive definite.
    pub fn new(n: usize, bw: usize, entry: impl Fn(usize, usize) -> f64) -> Option<Self> {
        let w = bw + 1;
        let mut c = vec![0.0; n * w];
        for i in 0..n {
            let lo = i.saturating_sub(bw);
            for j in lo..=i {
                let mut s = entry(i, j);
                let lo2 = lo.max(j.saturating_sub(bw));
                for k in lo2..j {
                    s -= c[i * w + bw + k - i] * c[j * w + bw + k - j];
                }
                if i == j {
                    if s.is_nan() || s <= 0.0 {
                        return None;
                    }
                    c[i * w + bw] = s.sqrt();
                } else {
                    c[i * w + bw + j - i] = s / c[j * w + bw];
                }
            }
        }
        Some(Self { n, bw, c })
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.c[i * (self.bw + 1) + self.bw + j - i]
    }

    /// `x ← C⁻¹ x` (forward substitution).
    pub fn solve_lower(&self, x: &mut [f64]) {
        for i in 0..self.n {
            let lo = i.saturating_sub(self.bw);
            let s = x[i]
                - (lo..i)
                    .zip(&x[lo..i])
                    .map(|(j, xj)| self.at(i, j) * xj)
                    .sum::<f64>();
            x[i] = s / self.at(i, i);
        }
    }

    /// `x ← C⁻ᵀ x` (back substitution).
    pub fn solve_upper(&self, x: &mut [f64]) {
        for i in (0..self.n).rev() {
            let hi = (i + self.bw + 1).min(self.n);
            let s = x[i]
                - ((i + 1)..hi)
                    .zip(&x[i + 1..hi])
                    .map(|(j, xj)| self.at(j, i) * xj)
                    .sum::<f64>();
            x[i] = s / self.at(i, i);
        }
    }

    /// `X ← C⁻¹ X` for `X` of `n` rows of `width` values (row `i` at `x[i·width..]`): the
    /// solve of [`BandedCholesky::solve_lower`] for every column at once, streaming whole rows
    /// (contiguous, so it vectorises, where column by column would be a chain of dependent
    /// operations with a strided access each).
    pub fn solve_lower_rows(&self, x: &mut [f64], width: usize) {
        assert_eq!(
            x.len(),
            self.n * width,
            "X must have n rows of `width` values"
        );
        for i in 0..self.n {
            let (done, rest) = x.split_at_mut(i * width);
            let row = &mut rest[..width];
            for j in i.saturating_sub(self.bw)..i {
                let c = self.at(i, j);
                for (r, v) in row.iter_mut().zip(&done[j * width..(j + 1) * width]) {
                    *r -= c * v;
                }
            }
            let diag = self.at(i, i);
            row.iter_mut().for_each(|r| *r /= diag);
        }
    }

    /// `X ← C⁻ᵀ X`, row-wise as [`BandedCholesky::solve_lower_rows`].
    pub fn solve_upper_rows(&self, x: &mut [f64], width: usize) {
        assert_eq!(
            x.len(),
            self.n * width,
            "X must have n rows of `width` values"
        );
        for i in (0..self.n).rev() {
            let (head, later) = x.split_at_mut((i + 1) * width);
            let row = &mut head[i * width..];
            for j in (i + 1)..(i + self.bw + 1).min(self.n) {
                let c = self.at(j, i);
                let rj = &later[(j - i - 1) * width..(j - i) * width];
                for (r, v) in row.iter_mut().zip(rj) {
                    *r -= c * v;
                }
            }
            let diag = self.at(i, i);
            row.iter_mut().for_each(|r| *r /= diag);
        }
    }

    /// `X ← Cᵀ X`, row-wise as [`BandedCholesky::solve_lower_rows`].
    pub fn mul_upper_rows(&self, x: &mut [f64], width: usize) {
        assert_eq!(
            x.len(),
            self.n * width,
            "X must have n rows of `width` values"
        );
        for i in 0..self.n {
            let (head, later) = x.split_at_mut((i + 1) * width);
            let row = &mut head[i * width..];
            let diag = self.at(i, i);
            row.iter_mut().for_each(|r| *r *= diag);
            for j in (i + 1)..(i + self.bw + 1).min(self.n) {
                let c = self.at(j, i);
                let rj = &later[(j - i - 1) * width..(j - i) * width];
                for (r, v) in row.iter_mut().zip(rj) {
                    *r += c * v;
                }
            }
        }
    }

    /// `x ← Cᵀ x`.
    pub fn mul_upper(&self, x: &mut [f64]) {
        for i in 0..self.n {
            let hi = (i + self.bw + 1).min(self.n);
            x[i] = self.at(i, i) * x[i]
                + ((i + 1)..hi)
                    .zip(&x[i + 1..hi])
                    .map(|(j, xj)| self.at(j, i) * xj)
                    .sum::<f64>();
        }
    }
}

#[cfg(test)]
mod cholesky_tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn banded_cholesky_matches_dense() {
        let n = 30;
        let bw = 3;
        let a = DMatrix::from_fn(n, n, |i, j| {
            let d = i.abs_diff(j);
            if d == 0 {
                4.0 + i as f64 * 0.1
            } else if d <= bw {
                1.0 / (1.0 + d as f64 + (i + j) as f64 * 0.01)
            } else {
                0.0
            }
        });
        let c = BandedCholesky::new(n, bw, |i, j| a[(i, j)]).unwrap();
        let dense = a.clone().cholesky().unwrap().l();
        for i in 0..n {
            for j in i.saturating_sub(bw)..=i {
                assert!((c.at(i, j) - dense[(i, j)]).abs() < 1e-13);
            }
        }
        // Cᵀ then C⁻ᵀ is the identity; C⁻¹ C⁻ᵀ solves A x = b.
        let x0: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let mut x = x0.clone();
        c.mul_upper(&mut x);
        c.solve_upper(&mut x);
        assert!(x.iter().zip(&x0).all(|(a, b)| (a - b).abs() < 1e-13));
        let b = &a * nalgebra::DVector::from_vec(x0.clone());
        let mut y = b.as_slice().to_vec();
        c.solve_lower(&mut y);
        c.solve_upper(&mut y);
        assert!(y.iter().zip(&x0).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    /// The row-wise solves and product equal the one-vector ones applied to each column
    /// (same operations in the same order: equal to rounding of the final division).
    #[test]
    fn row_wise_operations_match_column_by_column() {
        let (n, bw, width) = (17, 3, 5);
        let c = BandedCholesky::new(n, bw, |i, j| {
            if i == j {
                5.0 + 0.3 * i as f64
            } else {
                1.0 / (1.0 + (i - j) as f64 + 0.1 * j as f64)
            }
        })
        .unwrap();
        let x0: Vec<f64> = (0..n * width).map(|k| (0.7 * k as f64).sin()).collect();
        type Op = (
            fn(&BandedCholesky, &mut [f64]),
            fn(&BandedCholesky, &mut [f64], usize),
        );
        let ops: [Op; 3] = [
            (
                BandedCholesky::solve_lower,
                BandedCholesky::solve_lower_rows,
            ),
            (
                BandedCholesky::solve_upper,
                BandedCholesky::solve_upper_rows,
            ),
            (BandedCholesky::mul_upper, BandedCholesky::mul_upper_rows),
        ];
        for (single, rows) in ops {
            let mut x = x0.clone();
            rows(&c, &mut x, width);
            for k in 0..width {
                let mut col: Vec<f64> = (0..n).map(|i| x0[i * width + k]).collect();
                single(&c, &mut col);
                for i in 0..n {
                    let (a, b) = (col[i], x[i * width + k]);
                    assert!((a - b).abs() <= 1e-14 * a.abs().max(1.0), "{a} vs {b}");
                }
            }
        }
    }
}
