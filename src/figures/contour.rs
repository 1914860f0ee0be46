//! Contour lines of a sampled function by marching squares.

/// Line segments of the level set `f = level` of values sampled on a regular grid
/// (`values[j * nx + i]` at `x_i, y_j`), linearly interpolated along cell edges.
pub fn contour(xs: &[f64], ys: &[f64], values: &[f64], level: f64) -> Vec<[(f64, f64); 2]> {
    let nx = xs.len();
    let mut out = Vec::new();
    for j in 0..ys.len().saturating_sub(1) {
        for i in 0..nx.saturating_sub(1) {
            let corners = [
                (xs[i], ys[j], values[j * nx + i]),
                (xs[i + 1], ys[j], values[j * nx + i + 1]),
                (xs[i + 1], ys[j + 1], values[(j + 1) * nx + i + 1]),
                (xs[i], ys[j + 1], values[(j + 1) * nx + i]),
            ];
            // Crossing points on the four edges. A corner on the level counts as above it, so
            // a level through grid values still crosses (a sign test would leave a gap there).
            let above = |v: f64| v >= level;
            let mut pts = Vec::with_capacity(4);
            for e in 0..4 {
                let (a, b) = (corners[e], corners[(e + 1) % 4]);
                if above(a.2) != above(b.2) {
                    let s = (level - a.2) / (b.2 - a.2);
                    pts.push((a.0 + s * (b.0 - a.0), a.1 + s * (b.1 - a.1)));
                }
            }
            if pts.len() >= 2 {
                out.push([pts[0], pts[1]]);
            }
            if pts.len() == 4 {
                out.push([pts[2], pts[3]]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_through_grid_values_has_no_gaps() {
        // f = x on integer points: the level 5 runs through a column of samples, and every
        // row of cells must still carry its piece of the line x = 5.
        let xs: Vec<f64> = (0..11).map(f64::from).collect();
        let vals: Vec<f64> = xs.iter().flat_map(|_| xs.iter().copied()).collect();
        let segs = contour(&xs, &xs, &vals, 5.0);
        assert_eq!(segs.len(), 10);
        for s in &segs {
            assert!(s.iter().all(|p| p.0 == 5.0));
        }
    }

    #[test]
    fn circle_contour_points_lie_on_the_circle() {
        let xs: Vec<f64> = (0..101).map(|i| -1.5 + 3.0 * i as f64 / 100.0).collect();
        let vals: Vec<f64> = xs
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| x * x + y * y))
            .collect();
        let segs = contour(&xs, &xs, &vals, 1.0);
        assert!(segs.len() > 100);
        for s in &segs {
            for &(x, y) in s {
                // Linear interpolation of r² on a 0.03 grid: error below 1e-3.
                assert!(((x * x + y * y) - 1.0).abs() < 1e-3);
            }
        }
    }
}
