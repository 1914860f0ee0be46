//! Hermite interpolation on one mesh interval: the continuous extension of the boundary-value
//! solution. Cubic from values and slopes (fourth-order accurate, for the fourth-order
//! scheme), quintic from values, slopes and second derivatives (sixth-order, for the
//! sixth-order scheme).

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

/// Quintic Hermite basis `(H0, H1, H2, H3, H4, H5)` at `x ∈ [0, 1]`: the weights of `y0`,
/// `h·y0'`, `h²·y0''`, `y1`, `h·y1'`, `h²·y1''`.
#[inline]
pub(crate) fn quintic_basis(x: f64) -> [f64; 6] {
    let x2 = x * x;
    let x3 = x2 * x;
    let x4 = x3 * x;
    let x5 = x4 * x;
    [
        1.0 - 10.0 * x3 + 15.0 * x4 - 6.0 * x5,
        x - 6.0 * x3 + 8.0 * x4 - 3.0 * x5,
        0.5 * (x2 - 3.0 * x3 + 3.0 * x4 - x5),
        10.0 * x3 - 15.0 * x4 + 6.0 * x5,
        -4.0 * x3 + 7.0 * x4 - 3.0 * x5,
        0.5 * (x3 - 2.0 * x4 + x5),
    ]
}

/// Derivatives of [`quintic_basis`] with respect to `x`.
#[inline]
pub(crate) fn quintic_basis_derivative(x: f64) -> [f64; 6] {
    let x2 = x * x;
    let x3 = x2 * x;
    let x4 = x3 * x;
    [
        -30.0 * x2 + 60.0 * x3 - 30.0 * x4,
        1.0 - 18.0 * x2 + 32.0 * x3 - 15.0 * x4,
        0.5 * (2.0 * x - 9.0 * x2 + 12.0 * x3 - 5.0 * x4),
        30.0 * x2 - 60.0 * x3 + 30.0 * x4,
        -12.0 * x2 + 28.0 * x3 - 15.0 * x4,
        0.5 * (3.0 * x2 - 8.0 * x3 + 5.0 * x4),
    ]
}

/// The data of one end of an interval: value, first and (for the quintic) second derivative.
#[derive(Clone, Copy)]
pub(crate) struct End<'a> {
    pub y: &'a [f64],
    pub f: &'a [f64],
    pub a: Option<&'a [f64]>,
}

/// Value of the interpolant of one interval at `x`: quintic when both ends carry second
/// derivatives (sixth-order accurate), cubic otherwise (fourth-order).
#[inline]
pub(crate) fn value_at(x: f64, h: f64, e0: End, e1: End, out: &mut [f64]) {
    match (e0.a, e1.a) {
        (Some(a0), Some(a1)) => {
            let [b0, b1, b2, b3, b4, b5] = quintic_basis(x);
            let h2 = h * h;
            for i in 0..out.len() {
                out[i] = b0 * e0.y[i]
                    + b1 * h * e0.f[i]
                    + b2 * h2 * a0[i]
                    + b3 * e1.y[i]
                    + b4 * h * e1.f[i]
                    + b5 * h2 * a1[i];
            }
        }
        _ => value(x, h, e0.y, e0.f, e1.y, e1.f, out),
    }
}

/// Time derivative of [`value_at`].
#[inline]
pub(crate) fn derivative_at(x: f64, h: f64, e0: End, e1: End, out: &mut [f64]) {
    match (e0.a, e1.a) {
        (Some(a0), Some(a1)) => {
            let [b0, b1, b2, b3, b4, b5] = quintic_basis_derivative(x);
            for i in 0..out.len() {
                out[i] = (b0 * e0.y[i] + b3 * e1.y[i]) / h
                    + b1 * e0.f[i]
                    + b4 * e1.f[i]
                    + h * (b2 * a0[i] + b5 * a1[i]);
            }
        }
        _ => derivative(x, h, e0.y, e0.f, e1.y, e1.f, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quintic interpolant reproduces a quintic polynomial exactly, with its derivative,
    /// and the derivative basis is that of the value basis (central differences).
    #[test]
    fn quintic_reproduces_quintics() {
        let p = |t: f64| {
            0.3 - 1.2 * t + 0.7 * t.powi(2) + 2.0 * t.powi(3) - 0.4 * t.powi(4) + 1.1 * t.powi(5)
        };
        let dp = |t: f64| -1.2 + 1.4 * t + 6.0 * t.powi(2) - 1.6 * t.powi(3) + 5.5 * t.powi(4);
        let ddp = |t: f64| 1.4 + 12.0 * t - 4.8 * t.powi(2) + 22.0 * t.powi(3);
        let (t0, h) = (0.4, 0.7);
        let (y0, f0, a0) = ([p(t0)], [dp(t0)], [ddp(t0)]);
        let (y1, f1, a1) = ([p(t0 + h)], [dp(t0 + h)], [ddp(t0 + h)]);
        let e0 = End {
            y: &y0,
            f: &f0,
            a: Some(&a0),
        };
        let e1 = End {
            y: &y1,
            f: &f1,
            a: Some(&a1),
        };
        for k in 0..=10 {
            let x = k as f64 / 10.0;
            let (mut v, mut dv) = ([0.0], [0.0]);
            value_at(x, h, e0, e1, &mut v);
            derivative_at(x, h, e0, e1, &mut dv);
            // Rounding of terms of size ≤ 10.
            assert!((v[0] - p(t0 + x * h)).abs() < 1e-13, "value at {x}");
            assert!((dv[0] - dp(t0 + x * h)).abs() < 1e-12, "derivative at {x}");
        }
        let eps = 1e-6;
        for x in [0.1, 0.37, 0.8] {
            let (hi, lo, d) = (
                quintic_basis(x + eps),
                quintic_basis(x - eps),
                quintic_basis_derivative(x),
            );
            for j in 0..6 {
                // Central differences: O(eps²) truncation, O(1e-16/eps) rounding.
                assert!(((hi[j] - lo[j]) / (2.0 * eps) - d[j]).abs() < 1e-8);
            }
        }
    }
}
