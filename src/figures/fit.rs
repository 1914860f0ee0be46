//! The pictures of a fit ([`crate::fit`]): the observations against the fitted optimal
//! trajectory, and the misfit over the first two free parameters with the fitted point and
//! its 95 % confidence region.

use serde_json::Value;

use lossnav_problems::{Spec, SpecPath};
use lossnav_solvers::{Bvp, Solution};

use super::contour::contour;
use super::plot::{Figure, Heatmap, Marker, Series};
use crate::fit::Observations;

/// Grid points per axis of the misfit panel (a solve each: 61² ≈ 3700 solves, about a second
/// on small problems).
const GRID: usize = 61;

/// `χ²` with two degrees of freedom at 95 %: `−2 ln 0.05`.
const CHI2_2_95: f64 = 5.991_464_547_107_979;

fn subscript(n: usize) -> String {
    n.to_string()
        .chars()
        .map(|c| char::from_u32(0x2080 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

/// The fitted spec: `spec` with the fitted values of `doc` (the fit's document).
fn fitted_spec(spec: &Spec, doc: &Value) -> Result<Spec, String> {
    let mut s = spec.clone();
    for p in doc["parameters"].as_array().ok_or("no parameters")? {
        let name = p["name"].as_str().ok_or("no name")?;
        let value = p["value"].as_f64().ok_or("no value")?;
        s = SpecPath::parse(name, &s)
            .and_then(|path| path.set(&s, value))
            .map_err(|e| e.to_string())?;
    }
    Ok(s)
}

/// `½ Σ ((θ_j(t_o) − observed)/σ)²` of a solution.
fn misfit(sol: &Solution, obs: &Observations) -> f64 {
    let sigma = obs.sigma.unwrap_or(1.0);
    let mut sum = 0.0;
    for (o, &t) in obs.t.iter().enumerate() {
        let (theta, _) = sol.eval(t);
        for (j, v) in obs.theta[o].iter().enumerate() {
            if let Some(v) = v {
                sum += ((theta[j] - v) / sigma).powi(2);
            }
        }
    }
    0.5 * sum
}

/// The two panels (`<stem>-trajectory`, `<stem>-landscape`; the second only with two or more
/// free parameters).
pub fn fit_panels(
    spec: &Spec,
    obs: &Observations,
    doc: &Value,
    stem: &str,
) -> Result<Vec<Figure>, String> {
    let fitted = fitted_spec(spec, doc)?;
    let problem = fitted.to_problem().map_err(|e| e.to_string())?;
    let bvp = Bvp {
        second_order: false,
        ..Bvp::default()
    };
    let sol = bvp.solve(&problem).map_err(|e| e.to_string())?;
    let t_end = *obs.t.last().ok_or("no observations")?;
    let d = obs.dim();
    let dense: Vec<f64> = (0..=300).map(|i| t_end * i as f64 / 300.0).collect();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let mut observed: Vec<Series> = Vec::new();
    let mut curves: Vec<Series> = Vec::new();
    for j in 0..d {
        let points: Vec<(f64, f64)> = obs
            .t
            .iter()
            .zip(&obs.theta)
            .filter_map(|(&t, row)| row[j].map(|v| (t, v)))
            .collect();
        if points.is_empty() {
            continue;
        }
        let curve: Vec<(f64, f64)> = dense.iter().map(|&t| (t, sol.eval(t).0[j])).collect();
        for &(_, v) in points.iter().chain(&curve) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        // At most about 60 dots per coordinate, the coordinates' dots interleaved in time, so
        // coordinates that coincide (Adam moves them alike) all stay visible; every
        // observation enters the fit.
        let stride = points.len().div_ceil(60).max(1);
        let offset = j * stride / d.max(1);
        let shown: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .skip(offset.min(points.len().saturating_sub(1)))
            .step_by(stride)
            .collect();
        let every = if stride > 1 {
            format!(" (one in {stride} shown)")
        } else {
            String::new()
        };
        observed.push(Series {
            name: format!("observed θ{}{every}", subscript(j + 1)),
            points: shown,
            dashed: false,
            role: None,
        });
        // Later coordinates dashed: a curve on top of another shows both.
        curves.push(Series {
            name: format!("fitted optimal θ{}", subscript(j + 1)),
            points: curve,
            dashed: j % 2 == 1,
            role: None,
        });
    }
    let pad = 0.05 * (hi - lo).max(1e-9);
    let mut trajectory = Figure::new(
        &format!("{stem}-trajectory"),
        "Observed trajectory and the optimal one under the fitted assumptions",
        "t",
        "θ(t)",
        (0.0, t_end),
        (lo - pad, hi + pad),
    );
    trajectory.scatter = observed;
    trajectory.series = curves;
    let mut panels = vec![trajectory];

    let params = doc["parameters"].as_array().ok_or("no parameters")?;
    if params.len() >= 2 {
        let get = |i: usize, key: &str| params[i][key].as_f64();
        let names = [
            params[0]["name"].as_str().unwrap_or("p1").to_string(),
            params[1]["name"].as_str().unwrap_or("p2").to_string(),
        ];
        let v = [
            get(0, "value").ok_or("no value")?,
            get(1, "value").ok_or("no value")?,
        ];
        let se = [get(0, "standard_error"), get(1, "standard_error")];
        // Each axis spans the larger of four standard errors and a fifth of the value, kept
        // positive for parameters that must be.
        let range = |i: usize| {
            let w = se[i]
                .filter(|s| s.is_finite())
                .map_or(0.2 * v[i].abs(), |s| (4.0 * s).max(0.2 * v[i].abs()))
                .min(0.9 * v[i].abs().max(1e-9))
                .max(1e-6 * v[i].abs().max(1.0));
            (v[i] - w, v[i] + w)
        };
        let (xr, yr) = (range(0), range(1));
        let axis = |r: (f64, f64)| -> Vec<f64> {
            (0..GRID)
                .map(|k| r.0 + (r.1 - r.0) * k as f64 / (GRID - 1) as f64)
                .collect()
        };
        let (xs, ys) = (axis(xr), axis(yr));
        let paths = [
            SpecPath::parse(&names[0], &fitted).map_err(|e| e.to_string())?,
            SpecPath::parse(&names[1], &fitted).map_err(|e| e.to_string())?,
        ];
        let mut values = vec![f64::NAN; GRID * GRID];
        let mut previous: Option<Solution> = None;
        for (j, &y) in ys.iter().enumerate() {
            for (i, &x) in xs.iter().enumerate() {
                let point = paths[0]
                    .set(&fitted, x)
                    .and_then(|s| paths[1].set(&s, y))
                    .and_then(|s| s.to_problem());
                let Ok(p) = point else { continue };
                let solved = match &previous {
                    Some(prev) => bvp
                        .solve_from(&p, &|t| prev.eval(t))
                        .or_else(|_| bvp.solve(&p)),
                    None => bvp.solve(&p),
                };
                if let Ok(s) = solved {
                    values[j * GRID + i] = misfit(&s, obs).max(1e-300).log10();
                    previous = Some(s);
                }
            }
        }
        let vmax = values
            .iter()
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        // Points whose solve failed are drawn at the largest misfit found.
        for v in &mut values {
            if !v.is_finite() {
                *v = vmax;
            }
        }
        let heatmap = Heatmap::new(xs, ys, values, "log₁₀ misfit", 5);
        let mut landscape = Figure::new(
            &format!("{stem}-landscape"),
            "Misfit of the optimal trajectory over two assumptions",
            &names[0],
            &names[1],
            xr,
            yr,
        );
        landscape.contours = heatmap
            .levels
            .iter()
            .flat_map(|&l| contour(&heatmap.xs, &heatmap.ys, &heatmap.values, l))
            .collect();
        landscape.heatmap = Some(heatmap);
        // The 95 % region of the two parameters: p + √χ² · L (cos a, sin a), L Lᵀ = Σ.
        let rho = doc["correlations"][0][1].as_f64();
        if let (Some(s0), Some(s1), Some(rho)) = (se[0], se[1], rho) {
            let (a, b) = (s0, s1);
            let l11 = a;
            let l21 = rho * b;
            let l22 = b * (1.0 - rho * rho).max(0.0).sqrt();
            let r = CHI2_2_95.sqrt();
            let ellipse: Vec<(f64, f64)> = (0..=120)
                .map(|k| {
                    let t = std::f64::consts::TAU * k as f64 / 120.0;
                    let (c, s) = (t.cos(), t.sin());
                    (v[0] + r * l11 * c, v[1] + r * (l21 * c + l22 * s))
                })
                .collect();
            if ellipse.len() > 2 {
                landscape.series.push(Series {
                    name: "95 % confidence region".into(),
                    points: ellipse,
                    dashed: true,
                    role: None,
                });
            }
        }
        landscape.markers.push(Marker {
            name: "fitted".into(),
            at: (v[0], v[1]),
            color_of: None,
            ring: false,
            role: None,
        });
        panels.push(landscape);
    }
    Ok(panels)
}
