//! LU factorisation with partial pivoting of the collocation Jacobian's staircase structure,
//! panel by panel with dense kernels (faer).
//!
//! The rows are `d` start conditions on `y_0`, then `n = 2d` collocation equations per interval
//! `k` on `(y_k, y_{k+1})`, then `d` end conditions on `y_N`. Eliminating the `n` unknowns of
//! `y_k` involves only the `d` rows left over from the previous panel and the `n` rows of
//! interval `k`: a dense `3d × n` LU with partial pivoting (the pivot window of a banded LU
//! with `3d − 1` sub-diagonals, so the two are the same algorithm), a unit-triangular solve
//! for the pivot rows' coupling to `y_{k+1}`, and a `d × n` Schur complement carried into the
//! next panel. Work `O(N·d³)` and memory `O(N·d²)`, as for the band, but at dense-kernel speed.
//! For small `d` the scalar band ([`crate::banded::BandedLu`]) wins: kernel calls cost more
//! than the arithmetic of a few-by-few block, so the solver chooses by size.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::lu::partial_pivoting::factor::{lu_in_place, lu_in_place_scratch};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_unit_lower_triangular_in_place;
use faer::{Accum, Mat, Par};

use crate::banded::Singular;

/// The staircase matrix of a mesh with `N` intervals and `d` parameters, factored in place.
#[derive(Debug, Clone, Default)]
pub struct StaircaseLu {
    d: usize,
    intervals: usize,
    /// Panel `k ≤ N`: rows `0..d` carried from the previous panel (the start conditions for
    /// `k = 0`), then interval `k`'s coefficients of `y_k` (`n` rows; for `k = N` the end
    /// conditions, `d` rows). Factored: `L` below the unit diagonal, `U` on and above.
    panels: Vec<Mat<f64>>,
    /// Coupling `k < N`: rows `d..3d` hold interval `k`'s coefficients of `y_{k+1}`. Factored:
    /// rows `0..n` hold `U₁₂ = L₁₁⁻¹ (P·coupling)₀..ₙ`.
    coupling: Vec<Mat<f64>>,
    /// Row permutation of each panel: row `i` of `P·panel` is row `perm[k][i]` of the panel.
    perm: Vec<Vec<usize>>,
    factored: bool,
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
            self.panels.clear();
            self.coupling.clear();
            self.perm.clear();
        }
        (self.d, self.intervals) = (d, intervals);
        self.panels.resize_with(intervals + 1, Mat::new);
        self.coupling.resize_with(intervals, Mat::new);
        self.perm.resize_with(intervals + 1, Vec::new);
        for (k, p) in self.panels.iter_mut().enumerate() {
            let rows = if k < intervals { 3 * d } else { n };
            if p.nrows() != rows || p.ncols() != n {
                *p = Mat::zeros(rows, n);
            } else {
                p.fill(0.0);
            }
        }
        for c in &mut self.coupling {
            if c.nrows() != 3 * d || c.ncols() != n {
                *c = Mat::zeros(3 * d, n);
            } else {
                c.fill(0.0);
            }
        }
        self.factored = false;
    }

    /// Clears to zero for re-assembly.
    pub fn clear(&mut self) {
        for p in &mut self.panels {
            p.fill(0.0);
        }
        for c in &mut self.coupling {
            c.fill(0.0);
        }
        self.factored = false;
    }

    /// Order of the matrix.
    pub fn n(&self) -> usize {
        (self.intervals + 1) * 2 * self.d
    }

    /// Where global row `i` and column `j` live: `(coupling?, block index, local row, local
    /// column)`, or `None` outside the structure.
    fn locate(&self, i: usize, j: usize) -> Option<(bool, usize, usize, usize)> {
        let (d, n, big_n) = (self.d, 2 * self.d, self.intervals);
        let (node, col) = (j / n, j % n);
        if i < d {
            return (node == 0).then_some((false, 0, i, col));
        }
        let r = i - d;
        if r < big_n * n {
            let (k, row) = (r / n, d + r % n);
            return match node {
                _ if node == k => Some((false, k, row, col)),
                _ if node == k + 1 => Some((true, k, row, col)),
                _ => None,
            };
        }
        let row = d + (r - big_n * n);
        (node == big_n && row < n).then_some((false, big_n, row, col))
    }

    /// Adds `v` to entry `(i, j)`, which must lie in the structure.
    pub fn add(&mut self, i: usize, j: usize, v: f64) {
        self.column_mut(i, j, 1)[0] += v;
    }

    /// Entries `(i0..i0 + len, j)`, which must lie in one block of the structure.
    pub fn column_mut(&mut self, i0: usize, j: usize, len: usize) -> &mut [f64] {
        let (coupling, k, row, col) = self
            .locate(i0, j)
            .expect("entry outside the staircase structure");
        let block = if coupling {
            &mut self.coupling[k]
        } else {
            &mut self.panels[k]
        };
        &mut block.col_as_slice_mut(col)[row..row + len]
    }

    /// Entry `(i, j)` (zero outside the structure); meaningful before factorisation.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        match self.locate(i, j) {
            Some((true, k, row, col)) => self.coupling[k][(row, col)],
            Some((false, k, row, col)) => self.panels[k][(row, col)],
            None => 0.0,
        }
    }

    /// Factors in place. A zero or non-finite pivot is reported with its global column.
    pub fn factor(&mut self) -> Result<(), Singular> {
        let (d, n, big_n) = (self.d, 2 * self.d, self.intervals);
        let params = Default::default();
        let mut buf = MemBuffer::new(lu_in_place_scratch::<usize, f64>(
            3 * d,
            n,
            Par::Seq,
            params,
        ));
        let mut perm_inv = vec![0usize; 3 * d];
        let mut schur = Mat::<f64>::zeros(d, n);
        let mut permuted = Mat::<f64>::zeros(3 * d, n);
        for k in 0..=big_n {
            let rows = self.panels[k].nrows();
            self.perm[k].resize(rows, 0);
            lu_in_place(
                self.panels[k].as_mut(),
                &mut self.perm[k],
                &mut perm_inv[..rows],
                Par::Seq,
                MemStack::new(&mut buf),
                params,
            );
            let panel = &self.panels[k];
            if let Some(c) = (0..n).find(|&c| {
                let u = panel[(c, c)];
                u == 0.0 || !u.is_finite()
            }) {
                return Err(Singular { column: k * n + c });
            }
            if k == big_n {
                break;
            }
            // P·coupling, then U₁₂ = L₁₁⁻¹ (top n rows) and the carried rows B₂ − L₂₁ U₁₂.
            let coupling = &mut self.coupling[k];
            for j in 0..n {
                for (i, &from) in self.perm[k].iter().enumerate() {
                    permuted[(i, j)] = coupling[(from, j)];
                }
            }
            coupling.copy_from(&permuted);
            let (mut top, bottom) = coupling.as_mut().split_at_row_mut(n);
            solve_unit_lower_triangular_in_place(
                panel.as_ref().submatrix(0, 0, n, n),
                top.as_mut(),
                Par::Seq,
            );
            schur.copy_from(bottom.as_ref());
            matmul(
                schur.as_mut(),
                Accum::Add,
                panel.as_ref().submatrix(n, 0, d, n),
                top.as_ref(),
                -1.0,
                Par::Seq,
            );
            self.panels[k + 1]
                .as_mut()
                .submatrix_mut(0, 0, d, n)
                .copy_from(&schur);
        }
        self.factored = true;
        Ok(())
    }

    /// Solves `A x = b` in place (`b` in row order, `x` node by node).
    pub fn solve(&self, b: &mut [f64]) {
        assert!(self.factored, "solve called before factor");
        let (d, n, big_n) = (self.d, 2 * self.d, self.intervals);
        // Forward: w_k = L₁₁⁻¹ (P z)₀..ₙ per panel, carrying (P z)ₙ.. − L₂₁ w_k.
        let mut w = vec![0.0; (big_n + 1) * n];
        let mut z = vec![0.0; 3 * d];
        let mut carried: Vec<f64> = b[..d].to_vec();
        for k in 0..=big_n {
            let rows = self.panels[k].nrows();
            let own = &b[d + k * n..d + k * n + rows - d];
            let source = |i: usize| if i < d { carried[i] } else { own[i - d] };
            for (i, zi) in z[..rows].iter_mut().enumerate() {
                *zi = source(self.perm[k][i]);
            }
            let panel = &self.panels[k];
            for j in 0..n {
                let zj = z[j];
                for (i, zi) in z.iter_mut().enumerate().take(rows).skip(j + 1) {
                    *zi -= panel[(i, j)] * zj;
                }
            }
            w[k * n..(k + 1) * n].copy_from_slice(&z[..n]);
            if k < big_n {
                carried.copy_from_slice(&z[n..n + d]);
            }
        }
        // Backward: x_N = U⁻¹ w_N; x_k = U₁₁⁻¹ (w_k − U₁₂ x_{k+1}).
        let mut x = w;
        for k in (0..=big_n).rev() {
            if k < big_n {
                let (head, tail) = x.split_at_mut((k + 1) * n);
                let xk = &mut head[k * n..];
                let next = &tail[..n];
                let u12 = &self.coupling[k];
                for (j, &xj) in next.iter().enumerate() {
                    for (i, xi) in xk.iter_mut().enumerate() {
                        *xi -= u12[(i, j)] * xj;
                    }
                }
            }
            let panel = &self.panels[k];
            let xk = &mut x[k * n..(k + 1) * n];
            for j in (0..n).rev() {
                xk[j] /= panel[(j, j)];
                let xj = xk[j];
                for (i, xi) in xk.iter_mut().enumerate().take(j) {
                    *xi -= panel[(i, j)] * xj;
                }
            }
        }
        b.copy_from_slice(&x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::banded::BandedLu;

    /// A pseudo-random staircase matrix (weak diagonal, so pivoting is exercised), assembled
    /// into both solvers.
    fn random(d: usize, intervals: usize, seed: u64) -> (StaircaseLu, BandedLu) {
        let mut rnd = crate::test_uniform(seed);
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
        for (d, intervals) in [(1, 5), (2, 7), (3, 4), (5, 6)] {
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
        // Zero the columns of y_1: the panel of y_1 has no pivot.
        for j in 4..8 {
            for i in 0..stair.n() {
                if let Some((c, k, row, col)) = stair.locate(i, j) {
                    if c {
                        stair.coupling[k][(row, col)] = 0.0;
                    } else {
                        stair.panels[k][(row, col)] = 0.0;
                    }
                }
            }
        }
        let err = stair.factor().unwrap_err();
        assert_eq!(err.column / 4, 1, "{err:?}");
    }
}
