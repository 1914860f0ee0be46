//! Cubic Hermite interpolation on one mesh interval: the continuous extension of the
//! collocation solution (fourth-order accurate, matching the collocation scheme).

/// Basis values `(h00, h10, h01, h11)` at `x ∈ [0, 1]`.
#[inline]
pub(crate) fn basis(x: f64) -> [f64; 4] {
    let x2 = x * x;
    let x3 = x2 * x;
    [
        2.0 * x3 - 3.0 * x2 + 1.0,
        x3 - 2.0 * x2 + x,
        -2.0 * x3 + 3.0 * x2,
        x3 - x2,
    ]
}

/// Derivatives of the basis with respect to `x`.
#[inline]
pub(crate) fn basis_derivative(x: f64) -> [f64; 4] {
    let x2 = x * x;
    [
        6.0 * x2 - 6.0 * x,
        3.0 * x2 - 4.0 * x + 1.0,
        -6.0 * x2 + 6.0 * x,
        3.0 * x2 - 2.0 * x,
    ]
}

/// Value of the interpolant at `x` (fraction of the interval of length `h`).
#[inline]
pub(crate) fn value(
    x: f64,
    h: f64,
    y0: &[f64],
    f0: &[f64],
    y1: &[f64],
    f1: &[f64],
    out: &mut [f64],
) {
    let [a, b, c, d] = basis(x);
    for i in 0..out.len() {
        out[i] = a * y0[i] + b * h * f0[i] + c * y1[i] + d * h * f1[i];
    }
}

/// Time derivative of the interpolant at `x`.
#[inline]
pub(crate) fn derivative(
    x: f64,
    h: f64,
    y0: &[f64],
    f0: &[f64],
    y1: &[f64],
    f1: &[f64],
    out: &mut [f64],
) {
    let [a, b, c, d] = basis_derivative(x);
    for i in 0..out.len() {
        out[i] = (a * y0[i] + c * y1[i]) / h + b * f0[i] + d * f1[i];
    }
}
