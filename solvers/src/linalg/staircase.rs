//! LU factorisation of the collocation Jacobian's staircase structure by alternate column and
//! row elimination (Varah 1976; Diaz, Fairweather & Keast, ACM TOMS 9, 1983, the algorithm
//! of COLROW/ABDPACK), node by node with dense kernels (faer).
//!
//! The rows are `d` start conditions on `y_0`, then `n = 2d` collocation equations per interval
//! `k` on `(y_k, y_{k+1})` (blocks `[A_k | B_k]`), then `d` end conditions on `y_N`. Node `k`'s
//! unknowns are eliminated in two halves:
//!
//! - the `d` rows that reach node `k` from above (the start conditions, or the rows interval
//!   `k − 1` has left over) by **column** elimination with column pivoting, `T P = Uᵀ [L₁ᵀ L₂ᵀ]`,
//!   which changes node `k`'s variables to `z = [L₁ᵀ L₂ᵀ; 0 I] Pᵀ y` and only rewrites the
//!   columns of node `k` in interval `k`'s block;
//! - the other `d` of node `k`'s variables by **row** elimination with partial pivoting among
//!   interval `k`'s `n` rows, which rewrites only those rows; the `d` rows left over are the
//!   next node's `T`.
//!
//! Neither step creates fill outside the blocks, so the factors overwrite the matrix: `8d²`
//! values per interval, against `12d²` (`10d²` without its zero rows) for block row
//! elimination with partial pivoting over `3d` rows, and fewer flops (about `18d³` per
//! interval against `25d³`). The elimination breaks down only on a singular matrix: a
//! rank-deficient `T` or pivot column means `d + 1` rows, or columns, of the (transformed)
//! matrix in `d` dimensions. Its stability is that of partial pivoting (Varah). For small `d`
//! the scalar band ([`crate::linalg::banded::BandedLu`]) wins: kernel calls cost more than the
//! arithmetic of a few-by-few block, so the solver chooses by size.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::{Accum, Mat, MatMut, Par};

use crate::linalg::banded::Singular;

/// The staircase matrix of a mesh with `N` intervals and `d` parameters, factored in place.
#[derive(Debug, Clone)]
pub struct StaircaseLu {
    d: usize,
    intervals: usize,
    /// The start conditions (`d × n`, node 0). Factored: node 0's column elimination,
    /// `[Uᵀ\L₁ᵀ | L₂ᵀ]` (lower triangle with the diagonal `Uᵀ`, strict upper `L₁ᵀ`).
    top: Mat<f64>,
    /// Interval `k`'s rows (`n × 2n`): columns `0..n` of node `k`, `n..2n` of node `k + 1`.
    /// Factored: columns `0..d` hold `X₁ = A₁ L₁⁻ᵀ` (node `k`'s first variables, in `z`),
    /// columns `d..n` the row LU of `X₂` (`L₃\U₃` over `L₄`); columns `n..2n` the pivot rows'
    /// `L₃⁻¹ (P B)₀..d` (in `y_{k+1}`) over node `k + 1`'s column elimination, as in `top`.
    blocks: Vec<Mat<f64>>,
    /// The end conditions (`d × n`, node `N`). Factored as an interval block's node columns.
    bottom: Mat<f64>,
    /// Column permutation of node `k`'s elimination: column `i` of `T P` is column
    /// `col_perm[k][i]` of `T`.
    col_perm: Vec<Vec<usize>>,
    /// Row permutation of interval `k`'s (or, for `k = N`, the end conditions') elimination:
    /// row `i` of `P X₂` is row `row_perm[k][i]` of `X₂`.
    row_perm: Vec<Vec<usize>>,
    factored: bool,
}

impl Default for StaircaseLu {
    fn default() -> Self {
        Self {
            d: 0,
            intervals: 0,
            top: Mat::new(),
            blocks: Vec::new(),
            bottom: Mat::new(),
            col_perm: Vec::new(),
            row_perm: Vec::new(),
            factored: false,
        }
    }
}

impl StaircaseLu {
    /// A zero matrix for `intervals` intervals and `d` parameters (order `(N + 1)·2d`).
    pub fn zeros(d: usize, intervals: usize) -> Self {
        let mut s = Self::default();
        s.reset(d, intervals);
        s
    }

    /// Makes this a zero matrix of the given shape, reusing storage where the shape allows.
    pub fn reset(&mut self, d: usize, intervals: usize) {
        let n = 2 * d;
        if self.d != d {
            self.blocks.clear();
        }
        (self.d, self.intervals) = (d, intervals);
        self.blocks.resize_with(intervals, Mat::new);
        self.col_perm.resize_with(intervals + 1, Vec::new);
        self.row_perm.resize_with(intervals + 1, Vec::new);
        for (block, rows, cols) in std::iter::once((&mut self.top, d, n))
            .chain(std::iter::once((&mut self.bottom, d, n)))
            .chain(self.blocks.iter_mut().map(|b| (b, n, 2 * n)))
        {
            if block.nrows() != rows || block.ncols() != cols {
                *block = Mat::zeros(rows, cols);
            } else {
                block.fill(0.0);
            }
        }
        self.factored = false;
    }

    /// Clears to zero for re-assembly.
    pub fn clear(&mut self) {
        self.top.fill(0.0);
        self.bottom.fill(0.0);
        for b in &mut self.blocks {
            b.fill(0.0);
        }
        self.factored = false;
    }

    /// Order of the matrix.
    pub fn n(&self) -> usize {
        (self.intervals + 1) * 2 * self.d
    }

    /// Where global row `i` and column `j` live: `(block, local row, local column)` with
    /// block `0` the start conditions, `k + 1` interval `k`, `N + 1` the end conditions; or
    /// `None` outside the structure.
    fn locate(&self, i: usize, j: usize) -> Option<(usize, usize, usize)> {
        let (d, n, big_n) = (self.d, 2 * self.d, self.intervals);
        let (node, col) = (j / n, j % n);
        if i < d {
            return (node == 0).then_some((0, i, col));
        }
        let r = i - d;
        if r < big_n * n {
            let (k, row) = (r / n, r % n);
            return match node {
                _ if node == k => Some((k + 1, row, col)),
                _ if node == k + 1 => Some((k + 1, row, n + col)),
                _ => None,
            };
        }
        let row = r - big_n * n;
        (node == big_n && row < d).then_some((big_n + 1, row, col))
    }

    fn block_mut(&mut self, b: usize) -> &mut Mat<f64> {
        match b {
            0 => &mut self.top,
            _ if b == self.intervals + 1 => &mut self.bottom,
            _ => &mut self.blocks[b - 1],
        }
    }

    /// Adds `v` to entry `(i, j)`, which must lie in the structure.
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        self.column_mut(i, j, 1)[0] += v;
    }

    /// Entries `(i0..i0 + len, j)`, which must lie in one block of the structure.
    pub fn column_mut(&mut self, i0: usize, j: usize, len: usize) -> &mut [f64] {
        let (b, row, col) = self
            .locate(i0, j)
            .expect("entry outside the staircase structure");
        &mut self.block_mut(b).col_as_slice_mut(col)[row..row + len]
    }

    /// Entry `(i, j)` (zero outside the structure); meaningful before factorisation.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        match self.locate(i, j) {
            Some((0, row, col)) => self.top[(row, col)],
            Some((b, row, col)) if b == self.intervals + 1 => self.bottom[(row, col)],
            Some((b, row, col)) => self.blocks[b - 1][(row, col)],
            None => 0.0,
        }
    }

    /// Factors in place. A zero or non-finite pivot is reported with its global column.
    pub fn factor(&mut self) -> Result<(), Singular> {
        let (d, n, big_n) = (self.d, 2 * self.d, self.intervals);
        let mut buf = MemBuffer::new(lu_in_place_scratch::<usize, f64>(
            n,
            d,
            Par::Seq,
            Default::default(),
        ));
        let mut perm_inv = vec![0usize; n];
        let mut scratch = Mat::<f64>::zeros(n, n);
        for k in 0..=big_n {
            // Node k's `T` (rows d..n of interval k − 1's node-k columns, or the start
            // conditions) and the rows below it with columns at node k.
            let (t, rest) = if k == 0 {
                (self.top.as_mut(), &mut self.blocks[..])
            } else {
                let (done, rest) = self.blocks.split_at_mut(k);
                (done[k - 1].as_mut().submatrix_mut(d, n, d, n), rest)
            };
            let (a, b) = match rest.first_mut() {
                Some(block) => {
                    let (a, b) = block.as_mut().split_at_col_mut(n);
                    (a, Some(b))
                }
                None => (self.bottom.as_mut(), None),
            };
            let mut work = NodeWork {
                buf: &mut buf,
                perm_inv: &mut perm_inv,
                scratch: &mut scratch,
            };
            eliminate_node(
                t,
                a,
                b,
                &mut self.col_perm[k],
                &mut self.row_perm[k],
                &mut work,
            )
            .map_err(|c| Singular { column: k * n + c })?;
        }
        self.factored = true;
        Ok(())
    }

    /// Node `k`'s column elimination `T` (`d × n`, rows from `r0`, columns from `c0` of the
    /// returned matrix).
    fn t_part(&self, k: usize) -> (&Mat<f64>, usize, usize) {
        if k == 0 {
            (&self.top, 0, 0)
        } else {
            (&self.blocks[k - 1], self.d, 2 * self.d)
        }
    }

    /// The rows with columns at node `k` below its `T`: interval `k`'s block, or the end
    /// conditions for `k = N`.
    fn a_part(&self, k: usize) -> &Mat<f64> {
        self.blocks.get(k).unwrap_or(&self.bottom)
    }

    /// Solves `A x = b` in place (`b` in row order, `x` node by node).
    pub fn solve(&self, b: &mut [f64]) {
        assert!(self.factored, "solve called before factor");
        let (d, n, big_n) = (self.d, 2 * self.d, self.intervals);
        // Forward: per node, z₁ from the rows above (Uᵀ z₁ = carried), then the rows below
        // with z₁'s columns moved to the right side, permuted and eliminated: their first d
        // entries are kept for z₂, the others carried to the next node.
        let mut x = vec![0.0; (big_n + 1) * n];
        let mut carried: Vec<f64> = b[..d].to_vec();
        let (mut r, mut rp) = (vec![0.0; n], vec![0.0; n]);
        for k in 0..=big_n {
            let (tm, r0, c0) = self.t_part(k);
            let t_col = |j: usize| &tm.col_as_slice(c0 + j)[r0..r0 + d];
            let z = &mut x[k * n..(k + 1) * n];
            z[..d].copy_from_slice(&carried);
            for j in 0..d {
                let col = t_col(j);
                z[j] /= col[j];
                let zj = z[j];
                for (zi, &c) in z[j + 1..d].iter_mut().zip(&col[j + 1..]) {
                    *zi -= c * zj;
                }
            }
            let a = self.a_part(k);
            let rows = a.nrows();
            let first = d + k * n;
            r[..rows].copy_from_slice(&b[first..first + rows]);
            for (j, &zj) in z[..d].iter().enumerate() {
                for (ri, &c) in r[..rows].iter_mut().zip(&a.col_as_slice(j)[..rows]) {
                    *ri -= c * zj;
                }
            }
            for (v, &from) in rp[..rows].iter_mut().zip(&self.row_perm[k]) {
                *v = r[from];
            }
            for j in 0..d {
                let vj = rp[j];
                let col = &a.col_as_slice(d + j)[..rows];
                for (v, &c) in rp[j + 1..rows].iter_mut().zip(&col[j + 1..]) {
                    *v -= c * vj;
                }
            }
            z[d..].copy_from_slice(&rp[..d]);
            if k < big_n {
                carried.copy_from_slice(&rp[d..n]);
            }
        }
        // Backward: z₂ = U₃⁻¹ (w − B₀..d y_{k+1}), then y_k from z_k.
        let mut tmp = vec![0.0; n];
        for k in (0..=big_n).rev() {
            let a = self.a_part(k);
            let (head, tail) = x.split_at_mut((k + 1) * n);
            let z = &mut head[k * n..];
            if k < big_n {
                let next = &tail[..n];
                for (j, &yj) in next.iter().enumerate() {
                    for (zi, &c) in z[d..].iter_mut().zip(&a.col_as_slice(n + j)[..d]) {
                        *zi -= c * yj;
                    }
                }
            }
            for j in (0..d).rev() {
                let col = &a.col_as_slice(d + j)[..d];
                z[d + j] /= col[j];
                let zj = z[d + j];
                for (zi, &c) in z[d..d + j].iter_mut().zip(&col[..j]) {
                    *zi -= c * zj;
                }
            }
            // y = P [L₁ᵀ L₂ᵀ; 0 I]⁻¹ z.
            let (tm, r0, c0) = self.t_part(k);
            let t_col = |j: usize| &tm.col_as_slice(c0 + j)[r0..r0 + d];
            let (z1, z2) = z.split_at_mut(d);
            for (j, &zj) in z2.iter().enumerate() {
                for (zi, &c) in z1.iter_mut().zip(t_col(d + j)) {
                    *zi -= c * zj;
                }
            }
            for j in (0..d).rev() {
                let zj = z1[j];
                for (zi, &c) in z1[..j].iter_mut().zip(&t_col(j)[..j]) {
                    *zi -= c * zj;
                }
            }
            for (i, &to) in self.col_perm[k].iter().enumerate() {
                tmp[to] = z[i];
            }
            z.copy_from_slice(&tmp);
        }
        b.copy_from_slice(&x);
    }
}

/// Scratch shared by the nodes of one factorisation.
struct NodeWork<'a> {
    buf: &'a mut MemBuffer,
    perm_inv: &'a mut [usize],
    scratch: &'a mut Mat<f64>,
}

impl NodeWork<'_> {
    /// LU with partial pivoting of `m` in place (row `i` of `P m` is row `perm[i]` of `m`); a
    /// zero or non-finite pivot is reported by its column.
    fn lu(&mut self, mut m: MatMut<'_, f64>, perm: &mut Vec<usize>) -> Result<(), usize> {
        let rows = m.nrows();
        perm.resize(rows, 0);
        lu_in_place(
            m.as_mut(),
            perm,
            &mut self.perm_inv[..rows],
            Par::Seq,
            MemStack::new(self.buf),
            Default::default(),
        );
        match (0..m.ncols().min(rows)).find(|&c| {
            let u = m[(c, c)];
            u == 0.0 || !u.is_finite()
        }) {
            Some(c) => Err(c),
            None => Ok(()),
        }
    }
}

/// Eliminates one node: the column LU of `t` (`d × n`), its transformation of `a`'s columns
/// (the `n` rows of the interval, or the `d` end conditions), the row LU of `a`'s last `d`
/// columns and, for an interval, that elimination applied to its columns `b` at the next
/// node. A zero pivot is reported by its column in the node.
fn eliminate_node(
    mut t: MatMut<'_, f64>,
    mut a: MatMut<'_, f64>,
    b: Option<MatMut<'_, f64>>,
    col_perm: &mut Vec<usize>,
    row_perm: &mut Vec<usize>,
    work: &mut NodeWork<'_>,
) -> Result<(), usize> {
    let (d, n, rows) = (t.nrows(), t.ncols(), a.nrows());
    // Column elimination: the row LU of Tᵀ with partial pivoting, in place (T ← [Uᵀ\L₁ᵀ | L₂ᵀ]).
    work.lu(t.as_mut().transpose_mut(), col_perm)?;
    // A ← A P, then X₁ = A₁ L₁⁻ᵀ and X₂ = A₂ − X₁ L₂ᵀ.
    let mut permuted = work.scratch.as_mut().submatrix_mut(0, 0, rows, n);
    for (i, &from) in col_perm.iter().enumerate() {
        permuted.as_mut().col_mut(i).copy_from(a.as_ref().col(from));
    }
    a.copy_from(permuted.as_ref());
    let (mut a1, mut a2) = a.split_at_col_mut(d);
    solve_unit_lower_triangular_in_place(
        t.as_ref().submatrix(0, 0, d, d).transpose(),
        a1.as_mut().transpose_mut(),
        Par::Seq,
    );
    matmul(
        a2.as_mut(),
        Accum::Add,
        a1.as_ref(),
        t.as_ref().submatrix(0, d, d, d),
        -1.0,
        Par::Seq,
    );
    // Row elimination of X₂ among the rows.
    work.lu(a2.as_mut(), row_perm).map_err(|c| d + c)?;
    let Some(mut b) = b else {
        return Ok(());
    };
    // B ← L⁻¹ P B: the pivot rows' coupling to the next node and the rows left over.
    let mut permuted = work.scratch.as_mut().submatrix_mut(0, 0, rows, b.ncols());
    for j in 0..b.ncols() {
        let (src, dst) = (b.as_ref().col(j), permuted.as_mut().col_mut(j));
        for (v, &from) in dst.iter_mut().zip(row_perm.iter()) {
            *v = src[from];
        }
    }
    b.copy_from(permuted.as_ref());
    let (mut b_top, b_rest) = b.split_at_row_mut(d);
    solve_unit_lower_triangular_in_place(
        a2.as_ref().submatrix(0, 0, d, d),
        b_top.as_mut(),
        Par::Seq,
    );
    matmul(
        b_rest,
        Accum::Add,
        a2.as_ref().submatrix(d, 0, rows - d, d),
        b_top.as_ref(),
        -1.0,
        Par::Seq,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::banded::BandedLu;

    /// A pseudo-random staircase matrix (weak diagonal, so pivoting is exercised), assembled
    /// into both solvers.
    fn random(d: usize, intervals: usize, seed: u64) -> (StaircaseLu, BandedLu) {
        let mut rnd = lossnav_problems::testbed::uniform(seed);
        let n = 2 * d;
        let size = (intervals + 1) * n;
        let mut stair = StaircaseLu::zeros(d, intervals);
        let mut band = BandedLu::zeros(size, 3 * d - 1, 3 * d - 1);
        let mut put = |i: usize, j: usize, v: f64| {
            stair.add(i, j, v);
            band.add(i, j, v);
        };
        for i in 0..d {
            for j in 0..n {
                put(i, j, rnd());
            }
        }
        for k in 0..intervals {
            for a in 0..n {
                for j in k * n..(k + 2) * n {
                    let v = if j == d + k * n + a {
                        0.01 * rnd()
                    } else {
                        rnd()
                    };
                    put(d + k * n + a, j, v);
                }
            }
        }
        for i in 0..d {
            for j in intervals * n..size {
                put(d + intervals * n + i, j, rnd());
            }
        }
        (stair, band)
    }

    /// The panel-by-panel factorisation solves the same systems as the banded LU (the same
    /// algorithm in another order: agreement to rounding), for several sizes.
    #[test]
    fn matches_banded_lu() {
        for (d, intervals) in [(1, 5), (2, 7), (3, 4), (5, 6), (1, 1), (8, 4), (16, 3)] {
            let (mut stair, mut band) = random(d, intervals, 11 + d as u64);
            let size = stair.n();
            for i in 0..size {
                for j in 0..size {
                    assert_eq!(stair.get(i, j), band.get(i, j), "({i}, {j})");
                }
            }
            stair.factor().unwrap();
            band.factor().unwrap();
            let rhs: Vec<f64> = (0..size).map(|i| (i as f64 * 0.37).sin()).collect();
            let (mut a, mut b) = (rhs.clone(), rhs.clone());
            stair.solve(&mut a);
            band.solve(&mut b);
            let scale = b.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
            let err = a
                .iter()
                .zip(&b)
                .fold(0.0_f64, |m, (x, y)| m.max((x - y).abs()));
            // Both are backward stable on a matrix of moderate condition: agreement to ~1e-12.
            assert!(err < 1e-10 * scale, "d = {d}: difference {err:e}");
        }
    }

    #[test]
    fn reports_singular_column() {
        let (mut stair, _) = random(2, 3, 5);
        // Zero the columns of y_1: node 1 has no pivot.
        for j in 4..8 {
            for i in 0..stair.n() {
                if let Some((b, row, col)) = stair.locate(i, j) {
                    stair.block_mut(b)[(row, col)] = 0.0;
                }
            }
        }
        let err = stair.factor().unwrap_err();
        assert_eq!(err.column / 4, 1, "{err:?}");
    }
}
