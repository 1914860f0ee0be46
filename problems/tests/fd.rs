//! Central finite differences, the independent reference for exact derivatives.
//!
//! With step `h`, the truncation error is `O(h²)·|f'''|` and the rounding error
//! `O(ε·|f|/h)`; `h = 1e-5` balances them near `1e-10` for the O(1) functions tested here,
//! so comparisons use tolerances of `1e-6` (relative to the derivative's scale): four orders
//! above the finite-difference error, far below any genuine derivative bug.

#![allow(dead_code)]

pub const H: f64 = 1e-5;
pub const TOL: f64 = 1e-6;

/// Derivative of a vector function along coordinate `j` of `x`.
pub fn partial(f: &mut dyn FnMut(&[f64]) -> Vec<f64>, x: &[f64], j: usize) -> Vec<f64> {
    let mut xp = x.to_vec();
    let mut xm = x.to_vec();
    xp[j] += H;
    xm[j] -= H;
    let (fp, fm) = (f(&xp), f(&xm));
    fp.iter()
        .zip(&fm)
        .map(|(a, b)| (a - b) / (2.0 * H))
        .collect()
}

/// Jacobian (`rows = outputs`, `cols = inputs`) of a vector function, as rows.
pub fn jacobian(f: &mut dyn FnMut(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let cols: Vec<Vec<f64>> = (0..x.len()).map(|j| partial(f, x, j)).collect();
    let m = cols.first().map_or(0, Vec::len);
    (0..m)
        .map(|i| cols.iter().map(|c| c[i]).collect())
        .collect()
}

/// Gradient of a scalar function.
pub fn gradient(f: &mut dyn FnMut(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    let mut g = |y: &[f64]| vec![f(y)];
    (0..x.len()).map(|j| partial(&mut g, x, j)[0]).collect()
}

/// Asserts `|exact - fd| <= TOL · max(1, |fd|)` entrywise, naming `what` and the index.
pub fn assert_close(what: &str, exact: &[f64], fd: &[f64]) {
    assert_eq!(exact.len(), fd.len(), "{what}: length");
    for (i, (e, f)) in exact.iter().zip(fd).enumerate() {
        let scale = f.abs().max(1.0);
        assert!(
            (e - f).abs() <= TOL * scale,
            "{what}[{i}]: exact {e} vs finite difference {f} (diff {:e})",
            (e - f).abs()
        );
    }
}

/// Row-major flattening of a nalgebra matrix.
pub fn rows(m: &nalgebra::DMatrix<f64>) -> Vec<f64> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| m[(i, j)])
        .collect()
}
