//! Discounted quadrature: `∫ e^{-γt} g(t) dt` over a mesh interval, exact for
//! `e^{-γt}·(polynomial of degree 4)`.
//!
//! Plain Simpson or Gauss rules integrate the discount factor as if it were smooth on the
//! mesh scale; with large γ (a boundary layer of width `1/γ` that the adapted mesh need not
//! resolve where the trajectory itself is slow) they would be wrong. Here the weights of the
//! five-point Lobatto nodes are computed from the exact moments `∫₀¹ e^{-cx} x^j dx`,
//! `c = γh`, so the rule is exponentially fitted; its error per interval is `O(h⁶)` for a
//! general smooth `g` and `O(γh·h⁶)` for a quintic `g`, so the cost is of order 4 with the
//! cubic interpolant supplying `g` and of order 6 with the quintic one (measured:
//! `solvers/tests/orders.rs`).

use std::sync::OnceLock;

use nalgebra::{Matrix5, Vector5};

/// The five Lobatto nodes on `[0, 1]`.
pub(crate) const NODES: [f64; 5] = [
    0.0,
    0.5 - 0.654_653_670_707_977_1 / 2.0,
    0.5,
    0.5 + 0.654_653_670_707_977_1 / 2.0,
    1.0,
];

fn inverse_vandermonde() -> &'static Matrix5<f64> {
    static INV: OnceLock<Matrix5<f64>> = OnceLock::new();
    INV.get_or_init(|| {
        // Row j: x_k^j, so that V w = moments.
        let v = Matrix5::from_fn(|j, k| NODES[k].powi(j as i32));
        v.try_inverse().expect("distinct nodes")
    })
}

/// `∫₀¹ e^{-cx} x^j dx` for `j = 0..5`.
fn moments(c: f64) -> [f64; 5] {
    let mut m = [0.0; 5];
    if c < 2.0 {
        // Alternating series m_j = Σ_k (-c)^k / (k! (k + j + 1)), all five summed together; at
        // c < 2 the terms fall below 1e-18 relative within 40 terms (a handful for the small
        // c = γh of a resolved mesh).
        let mut term = 1.0; // (-c)^k / k!
        for k in 0..60 {
            let mut largest = 0.0_f64;
            for (j, mj) in m.iter_mut().enumerate() {
                let add = term / (k + j + 1) as f64;
                *mj += add;
                largest = largest.max((add / *mj).abs());
            }
            if largest < 1e-18 {
                break;
            }
            term *= -c / (k + 1) as f64;
        }
    } else {
        // Upward recurrence I_j = (j I_{j-1} - e^{-c}) / c, stable for c ≥ 2 and j ≤ 4.
        let e = (-c).exp();
        m[0] = (1.0 - e) / c;
        for j in 1..5 {
            m[j] = (j as f64 * m[j - 1] - e) / c;
        }
    }
    m
}

/// Weights `w` with `∫₀ʰ e^{-γs} g(s) ds ≈ Σ w_k g(NODES[k]·h)`.
pub(crate) fn weights(gamma: f64, h: f64) -> [f64; 5] {
    let m = Vector5::from(moments(gamma * h));
    let w = inverse_vandermonde() * m * h;
    [w[0], w[1], w[2], w[3], w[4]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undiscounted_weights_are_lobatto() {
        // Without discount the rule is the five-point Lobatto rule (weights on [0, 1]).
        let w = weights(0.0, 1.0);
        let expected = [
            1.0 / 20.0,
            49.0 / 180.0,
            16.0 / 45.0,
            49.0 / 180.0,
            1.0 / 20.0,
        ];
        for k in 0..5 {
            assert!(
                (w[k] - expected[k]).abs() < 1e-13,
                "weight {k}: {} vs {}",
                w[k],
                expected[k]
            );
        }
    }

    #[test]
    fn exact_for_exponential_times_quartic() {
        // ∫₀ʰ e^{-γs} (1 + s + s² + s³ + s⁴) ds against a fine composite Simpson rule.
        for (gamma, h) in [
            (0.0, 1.0),
            (0.3, 0.5),
            (5.0, 1.0),
            (100.0, 2.0),
            (1.9, 1.0),
            (2.1, 1.0),
        ] {
            let g = |s: f64| 1.0 + s + s * s + s.powi(3) + s.powi(4);
            let w = weights(gamma, h);
            let q: f64 = (0..5).map(|k| w[k] * g(NODES[k] * h)).sum();
            let n = 200_000;
            let dx = h / n as f64;
            let f = |s: f64| (-gamma * s).exp() * g(s);
            let mut reference = f(0.0) + f(h);
            for i in 1..n {
                reference += if i % 2 == 1 { 4.0 } else { 2.0 } * f(i as f64 * dx);
            }
            reference *= dx / 3.0;
            // Simpson with 2e5 panels has error below 1e-12 here (γ dx ≤ 1e-3).
            assert!(
                (q - reference).abs() < 1e-11 * reference.abs().max(1.0),
                "γ={gamma}, h={h}: {q} vs {reference}"
            );
        }
    }
}
