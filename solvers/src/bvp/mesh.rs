//! Error estimation and mesh adaptation.
//!
//! Fourth-order scheme: the continuous solution is the cubic Hermite interpolant `S` of the
//! nodal values and slopes. Its defect `S'(t) - F(t, S(t))` vanishes at the nodes and the
//! midpoints (the collocation points) and is `O(h³)` in between; integrated over an interval
//! it is the error the interval injects into the solution, `O(h⁴)`, the order of the scheme.
//! The defect is taken at the two interior points of the five-point Lobatto rule, where the
//! derivative of the cubic's interpolation error `∝ x²(1−x)²` is near its largest.
//!
//! Sixth-order scheme: `S` is the quintic Hermite interpolant of nodal values, slopes and
//! second derivatives; its defect is `O(h⁵)` and the injected error `O(h⁶)`. It is taken at
//! `x = (5 ∓ √5)/10`, where the derivative of the quintic's interpolation error
//! `∝ x³(1−x)³` is largest.
//!
//! Either way the estimate for interval `i` is `e_i = h_i · max |defect| / (1 + max |y|)`, so
//! `tol` bounds a mixed absolute/relative local error, and the global error is `tol` times the
//! problem's stability constant.

use crate::bvp::collocation::{System, Workspace};
use crate::solution::hermite::{self, End};

/// Interior nodes of the five-point Lobatto rule on `[0, 1]`.
pub(crate) const LOBATTO5_INTERIOR: [f64; 2] = [
    0.5 - 0.654_653_670_707_977_1 / 2.0,
    0.5 + 0.654_653_670_707_977_1 / 2.0,
];

/// Where the quintic interpolant's defect is taken: the interior nodes of the four-point
/// Lobatto rule on `[0, 1]`, `(5 ∓ √5)/10`.
pub(crate) const QUINTIC_POINTS: [f64; 2] = [
    0.5 - 0.223_606_797_749_978_97,
    0.5 + 0.223_606_797_749_978_97,
];

/// The two ends of interval `i` of node-major states `y`, fields `f` and (when not empty)
/// second derivatives `a`, `n` values per node.
pub(crate) fn ends<'a>(
    y: &'a [f64],
    f: &'a [f64],
    a: &'a [f64],
    n: usize,
    i: usize,
) -> (End<'a>, End<'a>) {
    let at = |k: usize| End {
        y: &y[k * n..(k + 1) * n],
        f: &f[k * n..(k + 1) * n],
        a: (!a.is_empty()).then(|| &a[k * n..(k + 1) * n]),
    };
    (at(i), at(i + 1))
}

/// The interval with the largest estimate and that estimate (NaN counts as largest).
pub(crate) fn worst(errors: &[f64]) -> (usize, f64) {
    errors
        .iter()
        .enumerate()
        .fold((0, 0.0_f64), |(bi, bm), (i, &e)| {
            if e.is_nan() || e > bm {
                (i, e)
            } else {
                (bi, bm)
            }
        })
}

/// Per-interval error estimates (node fields must be in `ws.f` and, for the sixth-order
/// scheme, second derivatives in `ws.a`).
pub(crate) fn estimate(sys: &System, t: &[f64], y: &[f64], ws: &mut Workspace) -> Vec<f64> {
    let n = 2 * sys.lag.dim();
    let intervals = t.len() - 1;
    debug_assert!(
        if sys.order6 {
            ws.a.len() == ws.f.len()
        } else {
            ws.a.is_empty()
        },
        "second derivatives must belong to the sixth-order scheme's current nodes"
    );
    let at = if ws.a.is_empty() {
        LOBATTO5_INTERIOR
    } else {
        QUINTIC_POINTS
    };
    let points = at.len();
    // The interpolant and its derivative at every estimate point; the field there is
    // evaluated for all points together.
    ws.batch_t.clear();
    ws.batch_y.resize(intervals * points * n, 0.0);
    ws.batch_f.resize(intervals * points * n, 0.0);
    let mut slopes = vec![0.0; intervals * points * n];
    for (i, (s, ds)) in ws
        .batch_y
        .chunks_exact_mut(points * n)
        .zip(slopes.chunks_exact_mut(points * n))
        .enumerate()
    {
        let h = t[i + 1] - t[i];
        let (e0, e1) = ends(y, &ws.f, &ws.a, n, i);
        for ((&x, s), ds) in at
            .iter()
            .zip(s.chunks_exact_mut(n))
            .zip(ds.chunks_exact_mut(n))
        {
            hermite::value_at(x, h, e0, e1, s);
            hermite::derivative_at(x, h, e0, e1, ds);
            ws.batch_t.push(t[i] + x * h);
        }
    }
    sys.eval_many(&ws.batch_t, &ws.batch_y, &mut ws.batch_f, &mut ws.field);
    (0..intervals)
        .map(|i| {
            let h = t[i + 1] - t[i];
            let (y0, y1) = (&y[i * n..(i + 1) * n], &y[(i + 1) * n..(i + 2) * n]);
            let scale = 1.0 + y0.iter().chain(y1).fold(0.0_f64, |m, v| m.max(v.abs()));
            let range = i * points * n..(i + 1) * points * n;
            let mut worst = 0.0_f64;
            for (ds, f) in slopes[range.clone()].iter().zip(&ws.batch_f[range]) {
                let defect = (ds - f).abs();
                // A non-finite defect marks the interval for refinement.
                worst = if defect.is_finite() {
                    worst.max(defect)
                } else {
                    f64::INFINITY
                };
            }
            h * worst / scale
        })
        .collect()
}

/// A refined mesh that equidistributes the predicted error of a scheme of order `order`.
///
/// Under the model `e ∝ h^order` an interval with estimate `e` needs `(σ e / tol)^{1/order}` pieces
/// of equal length to bring each piece to `tol / σ` (`σ = 4`). Reading that as a density of
/// nodes per unit time, piecewise constant over the old intervals, the new nodes are placed at
/// equal increments of its integral: the new mesh is as coarse as the model allows everywhere,
/// instead of splitting failing intervals into whole numbers of pieces and leaving the rest.
/// Every interval over `tol` gets at least two pieces (so each pass makes progress where the
/// model is unreliable), one with a non-finite estimate four; elsewhere at most two old
/// intervals merge, and no interval is split into more than 16 pieces per pass.
pub(crate) fn refine(t: &[f64], errors: &[f64], tol: f64, order: u32) -> Vec<f64> {
    const SAFETY: f64 = 4.0;
    let pieces: Vec<f64> = errors
        .iter()
        .map(|&e| {
            if !e.is_finite() {
                return 4.0;
            }
            let floor = if e > tol { 2.0 } else { 0.5 };
            (SAFETY * e / tol)
                .powf(1.0 / f64::from(order))
                .clamp(floor, 16.0)
        })
        .collect();
    let total: f64 = pieces.iter().sum();
    let count = (total.ceil() as usize).max(1);
    let step = total / count as f64;
    let mut out = Vec::with_capacity(count + 1);
    out.push(t[0]);
    let (mut below, mut i) = (0.0, 0);
    for k in 1..count {
        let target = k as f64 * step;
        while i + 1 < pieces.len() && below + pieces[i] < target {
            below += pieces[i];
            i += 1;
        }
        let x = ((target - below) / pieces[i]).clamp(0.0, 1.0);
        let node = t[i] + x * (t[i + 1] - t[i]);
        // Rounding can repeat a node at an old interval's end; keep the mesh strictly increasing.
        if node > *out.last().unwrap() && node < t[t.len() - 1] {
            out.push(node);
        }
    }
    out.push(t[t.len() - 1]);
    out
}

/// A coarsened mesh: pairs of neighbouring intervals merged where the merged interval is
/// predicted (estimate × 2^order) to stay far below `tol`. `None` if too little would change.
pub(crate) fn coarsen(t: &[f64], errors: &[f64], tol: f64, order: u32) -> Option<Vec<f64>> {
    let growth = f64::from(1u32 << order);
    let mut out = vec![t[0]];
    let mut i = 0;
    let mut merged = 0;
    while i < errors.len() {
        if i + 1 < errors.len() && growth * (errors[i] + errors[i + 1]) < 0.1 * tol {
            out.push(t[i + 2]);
            i += 2;
            merged += 1;
        } else {
            out.push(t[i + 1]);
            i += 1;
        }
    }
    (merged * 4 >= errors.len()).then_some(out)
}

/// Values of the interpolant of `(t, y, f, a)` at the times `new_t` (inside `[t_0, t_N]`);
/// quintic when second derivatives `a` are given (not empty), cubic otherwise.
pub(crate) fn interpolate(
    t: &[f64],
    y: &[f64],
    f: &[f64],
    a: &[f64],
    n: usize,
    new_t: &[f64],
) -> Vec<f64> {
    let mut out = vec![0.0; new_t.len() * n];
    let mut i = 0;
    for (k, &tk) in new_t.iter().enumerate() {
        while i + 2 < t.len() && t[i + 1] < tk {
            i += 1;
        }
        let h = t[i + 1] - t[i];
        let x = ((tk - t[i]) / h).clamp(0.0, 1.0);
        let (e0, e1) = ends(y, f, a, n, i);
        hermite::value_at(x, h, e0, e1, &mut out[k * n..(k + 1) * n]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under the h⁴ and h⁶ models the refined mesh brings every piece of a failing interval to
    /// `tol / 4`, splits each failing interval at least in two, merges at most two quiet
    /// intervals, and keeps the end points.
    #[test]
    fn refinement_equidistributes_the_model_error() {
        let tol = 1e-8;
        let t: Vec<f64> = (0..=10).map(|i| 0.1 * i as f64).collect();
        let errors: Vec<f64> = (0..10)
            .map(|i| match i {
                3 => 100.0 * tol,
                6 => 1.5 * tol,
                _ => 1e-4 * tol,
            })
            .collect();
        for order in [4, 6] {
            let new = refine(&t, &errors, tol, order);
            assert_eq!((new[0], *new.last().unwrap()), (0.0, 1.0));
            assert!(new.windows(2).all(|w| w[1] > w[0]), "{new:?}");
            for w in new.windows(2) {
                let (a, b) = (w[0], w[1]);
                // Predicted error of the new interval: the model summed over the old intervals it
                // overlaps, each contributing e_i (overlap / h_i)^order.
                let predicted: f64 = (0..10)
                    .map(|i| {
                        let overlap = (b.min(t[i + 1]) - a.max(t[i])).max(0.0);
                        errors[i] * (overlap / 0.1).powi(order as i32)
                    })
                    .sum();
                let touches_failing = [3, 6].iter().any(|&i| a < t[i + 1] && b > t[i]);
                if touches_failing {
                    // Pieces of a failing interval meet tol / σ (rounding aside).
                    assert!(
                        predicted <= 0.25 * tol * (1.0 + 1e-9),
                        "[{a}, {b}]: {predicted:e}"
                    );
                }
                assert!(
                    b - a <= 0.2 + 1e-12,
                    "[{a}, {b}] merges more than two intervals"
                );
            }
            for i in [3, 6] {
                let inside = new.iter().filter(|&&x| x > t[i] && x < t[i + 1]).count();
                assert!(inside >= 1, "failing interval {i} not split: {new:?}");
            }
        }
    }
}
