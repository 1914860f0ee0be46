//! The paper's panels, computed from the shipped specs and the solvers (no stored numbers).

use lossnav_problems::{Landscape, Problem, Spec};
use lossnav_solvers::simulate::{simulate, Rule};
use lossnav_solvers::{Bvp, Solution};

use super::contour::contour;
use super::plot::{Figure, Heatmap, Marker, Role, Series};
use crate::rules::diagonal;

fn shipped(name: &str) -> Spec {
    let text = match name {
        "figure1-double-well" => include_str!("../../problems/specs/figure1-double-well.json"),
        "figure2-quadratic-1d" => include_str!("../../problems/specs/figure2-quadratic-1d.json"),
        "figure2-anisotropic-2d" => {
            include_str!("../../problems/specs/figure2-anisotropic-2d.json")
        }
        "figure3-isotropic" => include_str!("../../problems/specs/figure3-isotropic.json"),
        "figure3-anisotropic-metric" => {
            include_str!("../../problems/specs/figure3-anisotropic-metric.json")
        }
        "figure3-rotation" => include_str!("../../problems/specs/figure3-rotation.json"),
        "figure3-weight-decay" => include_str!("../../problems/specs/figure3-weight-decay.json"),
        other => unreachable!("no shipped spec {other}"),
    };
    Spec::from_json(text).expect("shipped specs are valid")
}

fn solve(spec: &Spec) -> Result<(Problem, Solution), String> {
    let p = spec.to_problem().map_err(|e| e.to_string())?;
    let s = Bvp::default()
        .with_tol(1e-8)
        .solve(&p)
        .map_err(|e| e.to_string())?;
    Ok((p, s))
}

/// Samples of `f(sol at t)` for `t ∈ [0, t_end]`.
fn over_time(sol: &Solution, t_end: f64, f: impl Fn(&[f64]) -> f64) -> Vec<(f64, f64)> {
    (0..=200)
        .map(|i| t_end * i as f64 / 200.0)
        .map(|t| (t, f(&sol.eval(t).0)))
        .collect()
}

fn path(sol: &Solution, t_end: f64) -> Vec<(f64, f64)> {
    (0..=300)
        .map(|i| t_end * i as f64 / 300.0)
        .map(|t| {
            let th = sol.eval(t).0;
            (th[0], th[1])
        })
        .collect()
}

/// Heatmap and contours of a 2D loss on a box.
pub(super) fn landscape(
    loss: &dyn Landscape,
    xr: (f64, f64),
    yr: (f64, f64),
    levels: usize,
) -> (Heatmap, Vec<[(f64, f64); 2]>) {
    let n = 121;
    let xs: Vec<f64> = (0..n)
        .map(|i| xr.0 + (xr.1 - xr.0) * i as f64 / (n - 1) as f64)
        .collect();
    let ys: Vec<f64> = (0..n)
        .map(|i| yr.0 + (yr.1 - yr.0) * i as f64 / (n - 1) as f64)
        .collect();
    let values: Vec<f64> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| loss.value(&[x, y], 0.0)))
        .collect();
    let label = if loss.is_time_dependent() {
        "loss L(θ, t = 0)"
    } else {
        "loss L(θ)"
    };
    let heat = Heatmap::new(xs, ys, values, label, levels);
    let segs = heat
        .levels
        .iter()
        .flat_map(|&level| contour(&heat.xs, &heat.ys, &heat.values, level))
        .collect();
    (heat, segs)
}

fn figure(id: &str, title: &str, x: &str, y: &str, xr: (f64, f64), yr: (f64, f64)) -> Figure {
    Figure::new(id, title, x, y, xr, yr)
}

pub(super) fn series(name: &str, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.into(),
        points,
        dashed: false,
        role: None,
    }
}

/// The range of the ordinates of `curves`, padded by 5 % of its span on each side.
pub(super) fn padded_range(curves: &[&[(f64, f64)]]) -> (f64, f64) {
    let (lo, hi) = curves
        .iter()
        .flat_map(|c| c.iter())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.1), b.max(p.1))
        });
    (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
}

/// `n` in subscript digits (θ₁₂).
fn subscript(n: usize) -> String {
    n.to_string()
        .chars()
        .map(|c| char::from_u32(0x2080 + c.to_digit(10).unwrap_or(0)).unwrap_or(c))
        .collect()
}

/// Figure 1b and 1c.
pub fn figure1() -> Result<Vec<Figure>, String> {
    let spec = shipped("figure1-double-well");
    let (problem, opt) = solve(&spec)?;
    let lag = problem.lagrangian();
    let t_end = opt.end_time();
    let gf = simulate(
        &problem,
        &Rule::gradient_flow(&problem, 1.0),
        Some(20.0),
        &(0..=400).map(|i| i as f64 * 0.05).collect::<Vec<_>>(),
        1e-9,
    )
    .map_err(|e| e.to_string())?;
    let (heat, contours) = landscape(lag.loss(), (-1.6, 1.6), (-1.0, 1.0), 12);
    let mut b = figure(
        "fig1b",
        "Figure 1b: gradient flow vs optimal trajectory",
        "θ₁",
        "θ₂",
        (-1.6, 1.6),
        (-1.0, 1.0),
    );
    b.heatmap = Some(heat);
    b.contours = contours;
    b.series.push(
        series(
            "gradient flow",
            gf.theta.iter().map(|t| (t[0], t[1])).collect(),
        )
        .with_role(Role::GradientFlow),
    );
    b.series
        .push(series("optimal (T = 4, γ = 0.1)", path(&opt, t_end)).with_role(Role::Optimal));
    b.markers.push(Marker {
        name: "θ0".into(),
        at: (spec.theta0[0], spec.theta0[1]),
        color_of: None,
        ring: false,
        role: Some(Role::Start),
    });
    let mut c = figure(
        "fig1c",
        "Figure 1c: kinetic and potential terms along the optimal path",
        "t",
        "running-cost term",
        (0.0, t_end),
        (0.0, 1.0),
    );
    let kinetic: Vec<(f64, f64)> = (0..=200)
        .map(|i| t_end * i as f64 / 200.0)
        .map(|t| {
            let (th, p) = opt.eval(t);
            (t, lag.kinetic_from_momentum(&th, &p))
        })
        .collect();
    let potential = over_time(&opt, t_end, |th| lag.potential(th, 0.0));
    c.y_range = padded_range(&[&kinetic, &potential]);
    c.series.push(series("kinetic (1/2η)pᵀMp", kinetic));
    c.series.push(series("potential kL", potential));
    Ok(vec![b, c])
}

/// Figure 2a–d.
pub fn figure2() -> Result<Vec<Figure>, String> {
    let gammas = [0.0, 1.0, 10.0];
    let t_end = 8.0;
    let mut a = figure(
        "fig2a",
        "Figure 2a: θ(t) for three planning horizons",
        "t",
        "θ",
        (0.0, t_end),
        (0.0, 1.05),
    );
    let mut b = figure(
        "fig2b",
        "Figure 2b: loss over time",
        "t",
        "L(θ(t))",
        (0.0, t_end),
        (0.0, 0.52),
    );
    for &g in &gammas {
        let mut spec = shipped("figure2-quadratic-1d");
        spec.gamma = g;
        let (p, sol) = solve(&spec)?;
        let lag = p.lagrangian();
        a.series.push(series(
            &format!("γ = {g}"),
            over_time(&sol, t_end, |th| th[0]),
        ));
        b.series.push(series(
            &format!("γ = {g}"),
            over_time(&sol, t_end, |th| lag.loss().value(th, 0.0)),
        ));
    }
    let mut c = figure(
        "fig2c",
        "Figure 2c: anisotropic quadratic (curvatures 1 and 4)",
        "θ₁",
        "θ₂",
        (-0.1, 1.1),
        (-0.1, 1.1),
    );
    let base = shipped("figure2-anisotropic-2d");
    let (p0, _) = solve(&base)?;
    let (heat, contours) = landscape(p0.lagrangian().loss(), (-0.1, 1.1), (-0.1, 1.1), 10);
    c.heatmap = Some(heat);
    c.contours = contours;
    for &g in &gammas {
        let mut spec = base.clone();
        spec.gamma = g;
        let (_, sol) = solve(&spec)?;
        c.series.push(series(&format!("γ = {g}"), path(&sol, 30.0)));
    }
    let mut d = figure(
        "fig2d",
        "Figure 2d: convergence-rate ratio vs curvature ratio",
        "curvature ratio c",
        "rate ratio r(ch)/r(h)",
        (1.0, 16.0),
        (1.0, 16.0),
    );
    for &g in &gammas {
        let curve: Vec<(f64, f64)> = (0..=150)
            .map(|i| 1.0 + 15.0 * i as f64 / 150.0)
            .map(|c| (c, diagonal::rate_ratio(c, 1.0, 1.0, 1.0, 1.0, g)))
            .collect();
        d.series
            .push(series(&format!("γ = {g} (closed form)"), curve));
    }
    d.series.push(Series {
        name: "c (gradient descent)".into(),
        points: vec![(1.0, 1.0), (16.0, 16.0)],
        dashed: true,
        role: Some(Role::GradientFlow),
    });
    d.series.push(Series {
        name: "√c (ballistic)".into(),
        points: (0..=60)
            .map(|i| 1.0 + 15.0 * i as f64 / 60.0)
            .map(|c| (c, c.sqrt()))
            .collect(),
        dashed: true,
        role: None,
    });
    // Rates measured from boundary-value solutions at curvature ratio 4.
    for (k, &g) in gammas.iter().enumerate() {
        let mut spec = base.clone();
        spec.gamma = g;
        let (_, sol) = solve(&spec)?;
        let t = 1.0;
        let rate = |i: usize| -(sol.eval(t).0[i] / sol.eval(0.0).0[i]).ln() / t;
        d.markers.push(Marker {
            name: format!("solver, γ = {g}"),
            at: (4.0, rate(1) / rate(0)),
            color_of: Some(k),
            ring: false,
            role: None,
        });
    }
    Ok(vec![a, b, c, d])
}

/// Figure 3a–d: trajectories with the loss minimum and the end point marked.
pub fn figure3() -> Result<Vec<Figure>, String> {
    let panels = [
        (
            "fig3a",
            "figure3-isotropic",
            "Figure 3a: isotropic loss, Euclidean metric",
        ),
        (
            "fig3b",
            "figure3-anisotropic-metric",
            "Figure 3b: anisotropic metric G = diag(1, 4)",
        ),
        ("fig3c", "figure3-rotation", "Figure 3c: rotation drift"),
        (
            "fig3d",
            "figure3-weight-decay",
            "Figure 3d: weight-decay drift",
        ),
    ];
    let mut out = Vec::new();
    for (id, name, title) in panels {
        let spec = shipped(name);
        let (p, sol) = solve(&spec)?;
        let lag = p.lagrangian();
        let q = lag
            .loss()
            .as_quadratic()
            .ok_or("Figure 3 specs are quadratic")?;
        let (xr, yr) = ((-1.3, 1.5), (-1.0, 1.0));
        let mut f = figure(id, title, "θ₁", "θ₂", xr, yr);
        let (heat, contours) = landscape(lag.loss(), xr, yr, 10);
        f.heatmap = Some(heat);
        f.contours = contours;
        let mut sweeps = vec![(spec.gamma, sol)];
        if spec.drift.is_some() {
            let mut s1 = spec.clone();
            s1.gamma = 1.0;
            sweeps.push((1.0, solve(&s1)?.1));
        }
        f.markers.push(Marker {
            name: "loss minimum μ".into(),
            at: (q.minimum[0], q.minimum[1]),
            color_of: None,
            ring: true,
            role: Some(Role::Minimum),
        });
        for (k, (gamma, s)) in sweeps.iter().enumerate() {
            let mut line = series(&format!("optimal, γ = {gamma}"), path(s, 25.0));
            // The second path starts on the first and runs along it (weight decay): dashed,
            // so the first shows through.
            line.dashed = k > 0;
            // The panel's own γ is the optimal path of its spec (red); the γ = 1 comparison
            // takes a palette colour.
            if k == 0 {
                line = line.with_role(Role::Optimal);
            }
            f.series.push(line);
            let tail = s.tail.as_ref().ok_or("infinite horizon")?;
            f.markers.push(Marker {
                name: format!("end point θ*, γ = {gamma}"),
                at: (tail.theta_star[0], tail.theta_star[1]),
                color_of: Some(k),
                ring: false,
                role: None,
            });
        }
        out.push(f);
    }
    Ok(out)
}

/// A user's problem: for D = 2 the landscape with the optimal and gradient-flow paths, and in
/// any dimension θᵢ(t), the loss, the kinetic term and ℋ over time.
pub fn user_problem(spec: &Spec, id: &str) -> Result<Vec<Figure>, String> {
    let problem = spec.to_problem().map_err(|e| e.to_string())?;
    let sol = Bvp::default()
        .with_tol(1e-8)
        .solve(&problem)
        .map_err(|e| e.to_string())?;
    solution_panels(&problem, &sol, id)
}

/// The panels of [`user_problem`] for a problem and a solution of it (from any solver): for
/// D = 2 the landscape with the optimal and gradient-flow paths, then the time courses.
pub fn solution_panels(
    problem: &lossnav_problems::Problem,
    sol: &lossnav_solvers::Solution,
    id: &str,
) -> Result<Vec<Figure>, String> {
    let problem = problem.clone();
    let sol = sol.clone();
    let lag = problem.lagrangian();
    let t_end = sol.end_time();
    // Titles name the problem (the spec's `name` up to any parenthesis; a long one wraps onto
    // two lines), not the output file.
    let short: String = problem
        .name()
        .split(" (")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let name = if short.is_empty() { id } else { short.as_str() };
    let mut out = Vec::new();
    if problem.dim() == 2 {
        let gf_rate = if lag.gamma() > 0.0 {
            lag.eta() * lag.k() / lag.gamma()
        } else {
            lag.eta() * lag.k()
        };
        let grid: Vec<f64> = (0..=300).map(|i| t_end * i as f64 / 300.0).collect();
        // A singular metric (partial controllability) has no flow to compare with: the
        // simulator refuses it, and the panel shows the optimal path alone and says why.
        let flow_path: Option<Vec<(f64, f64)>> = if lag.metric().is_invertible() {
            let gf = simulate(
                &problem,
                &Rule::natural_gradient(&problem, gf_rate),
                Some(t_end),
                &grid,
                1e-9,
            )
            .map_err(|e| e.to_string())?;
            Some(gf.theta.iter().map(|t| (t[0], t[1])).collect())
        } else {
            None
        };
        let opt = path(&sol, t_end);
        let pts: Vec<(f64, f64)> = opt
            .iter()
            .chain(flow_path.iter().flatten())
            .copied()
            .collect();
        let (x0, x1, y0, y1) = pts.iter().fold(
            (
                f64::INFINITY,
                f64::NEG_INFINITY,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ),
            |a, p| (a.0.min(p.0), a.1.max(p.0), a.2.min(p.1), a.3.max(p.1)),
        );
        let (px, py) = (0.25 * (x1 - x0).max(0.2), 0.25 * (y1 - y0).max(0.2));
        let (xr, yr) = ((x0 - px, x1 + px), (y0 - py, y1 + py));
        // With G = I natural-gradient flow is gradient flow: the legend and title say which.
        let euclidean = lag
            .metric()
            .constant_mobility()
            .is_some_and(|m| m == nalgebra::DMatrix::identity(2, 2));
        let flow = if euclidean {
            "gradient flow"
        } else {
            "natural-gradient flow"
        };
        let flow_role = if flow == "gradient flow" {
            Role::GradientFlow
        } else {
            Role::NaturalGradient
        };
        let shown = if flow_path.is_some() {
            format!("optimal path and {flow}")
        } else {
            "optimal path (singular metric: no flow to compare)".to_string()
        };
        let mut f = figure(
            &format!("{id}-landscape"),
            &if lag.loss().is_time_dependent() {
                format!("{name}: {shown} (background: L at t = 0)")
            } else {
                format!("{name}: {shown}")
            },
            "θ₁",
            "θ₂",
            xr,
            yr,
        );
        let (heat, contours) = landscape(lag.loss(), xr, yr, 12);
        f.heatmap = Some(heat);
        f.contours = contours;
        // Gradient flow first and the optimal path second, as in Figure 1b: the same colours
        // for the same roles (blue flow, red optimal).
        if let Some(points) = flow_path {
            f.series
                .push(series(&format!("{flow} (rate {gf_rate:.3})"), points).with_role(flow_role));
        }
        f.series
            .push(series("optimal", opt).with_role(Role::Optimal));
        f.markers.push(Marker {
            name: "θ0".into(),
            at: (problem.theta0()[0], problem.theta0()[1]),
            color_of: None,
            ring: false,
            role: Some(Role::Start),
        });
        out.push(f);
    }
    let times: Vec<f64> = (0..=300).map(|i| t_end * i as f64 / 300.0).collect();
    let states: Vec<(Vec<f64>, Vec<f64>)> = times.iter().map(|&t| sol.eval(t)).collect();
    // One quantity per panel: the parameters, the loss, the kinetic term and ℋ.
    type State = (Vec<f64>, Vec<f64>);
    let along = |f: &dyn Fn(f64, &State) -> f64| -> Vec<(f64, f64)> {
        times
            .iter()
            .zip(&states)
            .map(|(&t, s)| (t, f(t, s)))
            .collect()
    };
    let mut theta = figure(
        &format!("{id}-theta"),
        &format!("{name}: parameters"),
        "t",
        "θᵢ(t)",
        (0.0, t_end),
        (0.0, 1.0),
    );
    for i in 0..problem.dim().min(6) {
        theta.series.push(series(
            &format!("θ{}", subscript(i + 1)),
            along(&|_, s| s.0[i]),
        ));
    }
    let time_dependent = lag.loss().is_time_dependent();
    let mut loss = figure(
        &format!("{id}-loss"),
        &format!("{name}: loss"),
        "t",
        if time_dependent {
            "L(θ(t), t)"
        } else {
            "L(θ(t))"
        },
        (0.0, t_end),
        (0.0, 1.0),
    );
    loss.series.push(series(
        "loss along the optimal trajectory",
        along(&|t, s| lag.loss().value(&s.0, t)),
    ));
    let mut kinetic = figure(
        &format!("{id}-kinetic"),
        &format!("{name}: kinetic term"),
        "t",
        "(1/2η) pᵀM(θ)p",
        (0.0, t_end),
        (0.0, 1.0),
    );
    kinetic.series.push(series(
        "cost of change along the optimal trajectory",
        along(&|_, s| lag.kinetic_from_momentum(&s.0, &s.1)),
    ));
    let mut hamiltonian = figure(
        &format!("{id}-hamiltonian"),
        &format!("{name}: current-value Hamiltonian"),
        "t",
        "ℋ(t, θ, p)",
        (0.0, t_end),
        (0.0, 1.0),
    );
    hamiltonian.series.push(series(
        "ℋ along the optimal trajectory",
        along(&|t, s| lag.hamiltonian(t, &s.0, &s.1)),
    ));
    for panel in [&mut theta, &mut loss, &mut kinetic, &mut hamiltonian] {
        let (lo, hi) = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        // A conserved quantity (ℋ without discount or time dependence) is drawn as the flat
        // line it is, in a ±2 % window, rather than magnifying its rounding errors.
        let pad = (0.05 * (hi - lo))
            .max(0.02 * lo.abs().max(hi.abs()))
            .max(1e-9);
        panel.y_range = (lo - pad, hi + pad);
    }
    out.extend([theta, loss, kinetic, hamiltonian]);
    Ok(out)
}

/// The escape diagram as a figure: grid outcomes in the (γ, θ0₁) plane and the switching curve.
pub fn escape_figure(d: &crate::escape::EscapeDiagram, id: &str) -> Figure {
    let gs = d.points.iter().map(|p| p.gamma);
    let xs = d.points.iter().map(|p| p.theta0[0]);
    let (g0, g1) = gs.fold((f64::INFINITY, f64::NEG_INFINITY), |a, g| {
        (a.0.min(g), a.1.max(g))
    });
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |a, x| {
        (a.0.min(x), a.1.max(x))
    });
    let pad = |a: f64, b: f64| 0.05 * (b - a).max(1e-3);
    let mut f = figure(
        id,
        "Escape diagram: where the optimal trajectory crosses the barrier",
        "discount γ",
        "start θ0₁",
        (g0 - pad(g0, g1), g1 + pad(g0, g1)),
        (x0 - pad(x0, x1), x1 + pad(x0, x1)),
    );
    let pts = |esc: bool| {
        d.points
            .iter()
            .filter(|p| p.escapes == esc)
            .map(|p| (p.gamma, p.theta0[0]))
            .collect()
    };
    f.scatter.push(Series {
        name: "crosses to the far minimum".into(),
        points: pts(true),
        dashed: false,
        role: None,
    });
    f.scatter.push(Series {
        name: "stays in the near minimum".into(),
        points: pts(false),
        dashed: false,
        role: None,
    });
    let mut curve: Vec<(f64, f64)> = d.switches.iter().map(|s| (s.gamma, s.theta0[0])).collect();
    curve.sort_by(|a, b| a.1.total_cmp(&b.1));
    if !curve.is_empty() {
        f.series
            .push(series("switching γ (indifference or fold)", curve));
    }
    f
}

/// The continual-learning panels (docs/theory.md §6), from the closed form of
/// [`crate::rules::task_switching`] on a 1-D task (h = 2, η = k = 1, current minimum m = 1, prior
/// N(0, 0.8)): the pull ρ toward the current task against the hazard λ for several γ, and the
/// expected trajectory θ(t) = μ0 + e^{-λt}a + e^{-rt}(θ0 − μ0 − a) for several λ.
pub fn continual() -> Result<Vec<Figure>, String> {
    use crate::rules::task_switching::TaskRule;
    let spec = |gamma: f64, lambda: f64| {
        lossnav_problems::Spec::from_json(&format!(
            r#"{{"loss": {{"quadratic": {{"curvatures": [2.0], "minimum": [1.0]}}}},
                "gamma": {gamma}, "theta0": [0.0], "horizon": "infinite",
                "task_switching": {{"hazard": {lambda}, "prior_mean": [0.0], "prior_cov": [[0.8]]}}}}"#
        ))
        .map_err(|e| e.to_string())
    };
    let mut rho = figure(
        "task-rho",
        "Pull toward the current task vs task-switch rate (weight resetting as λ grows)",
        "λ (switches per unit time)",
        "ρ (1: learn the task, 0: stay at the prior mean)",
        (-3.0, 3.0),
        (0.0, 1.05),
    );
    rho.x_log = true;
    for gamma in [0.1, 0.5, 2.0] {
        let mut points = Vec::new();
        for i in 0..=60 {
            let log_lambda = -3.0 + 0.1 * i as f64;
            let rule = TaskRule::from_spec(&spec(gamma, 10f64.powf(log_lambda))?)
                .map_err(|e| e.to_string())?;
            points.push((log_lambda, rule.rho[(0, 0)]));
        }
        rho.series.push(series(&format!("γ = {gamma}"), points));
    }
    let mut traj = figure(
        "task-trajectory",
        "Expected optimal trajectory under task switching (γ = 0.5, θ0 = μ0 = 0, m = 1)",
        "t",
        "θ(t)",
        (0.0, 8.0),
        (0.0, 1.05),
    );
    for lambda in [0.01, 0.3, 1.0, 5.0] {
        let rule = TaskRule::from_spec(&spec(0.5, lambda)?).map_err(|e| e.to_string())?;
        let points = (0..=160)
            .map(|i| {
                let t = 0.05 * i as f64;
                (t, rule.theta(t)[0])
            })
            .collect();
        traj.series.push(series(&format!("λ = {lambda}"), points));
    }
    let mut m_line =
        series("current task's minimum m", vec![(0.0, 1.0), (8.0, 1.0)]).with_role(Role::Minimum);
    m_line.dashed = true;
    traj.series.push(m_line);
    Ok(vec![rho, traj])
}

/// The noisy quadratic testbed: mean loss over time for the baselines (learning rates tuned on
/// another seed), the oracle rule and the derived rule with estimated curvature (M = 8), and
/// the derived rule's excess cost over the oracle as the minibatch grows.
pub fn noisy_quadratic() -> Result<Vec<Figure>, String> {
    use crate::rules::noisy_quadratic::{
        paired_difference, simulate, tune, Learner, NoisyQuadratic,
    };
    let mut model = NoisyQuadratic::log_spaced(12, 0.01, 100.0, 0.3);
    model.batch = 8;
    // Half-decade steps from 1e-5 to 1: every tuned rate lands inside the grid.
    let grid: Vec<f64> = (0..11).map(|i| 1e-5 * 10f64.powf(i as f64 / 2.0)).collect();
    let derived = Learner::Derived {
        beta: 0.9,
        noise_belief: 1.0,
    };
    let learners = [
        Learner::Sgd {
            lr: tune(&model, |lr| Learner::Sgd { lr }, &grid, 100, 99)
                .ok_or("no learning rate in the grid keeps the learner finite")?,
        },
        Learner::Momentum {
            lr: tune(
                &model,
                |lr| Learner::Momentum { lr, momentum: 0.9 },
                &grid,
                100,
                99,
            )
            .ok_or("no learning rate in the grid keeps the learner finite")?,
            momentum: 0.9,
        },
        Learner::RmsProp {
            lr: tune(
                &model,
                |lr| Learner::RmsProp { lr, beta2: 0.999 },
                &grid,
                100,
                99,
            )
            .ok_or("no learning rate in the grid keeps the learner finite")?,
            beta2: 0.999,
        },
        Learner::Adam {
            lr: tune(&model, |lr| Learner::Adam { lr }, &grid, 100, 99)
                .ok_or("no learning rate in the grid keeps the learner finite")?,
        },
        Learner::Oracle,
        derived,
    ];
    // Drawn in this order: the derived rule first, so the dashed curves on it stay visible.
    let learners = [
        learners[5],
        learners[0],
        learners[1],
        learners[2],
        learners[3],
        learners[4],
    ];
    let record = 10;
    let mut loss = figure(
        "noisy-quadratic",
        "Noisy quadratic (h from 0.01 to 100, M = 8): mean loss over 400 paths",
        "t",
        "mean loss",
        (0.0, model.dt * model.steps as f64),
        (-3.0, 1.0),
    );
    loss.y_log = true;
    let mut lo = f64::INFINITY;
    for l in learners {
        let o = simulate(&model, l, 400, 1, record);
        let points: Vec<(f64, f64)> = o
            .loss_curve
            .iter()
            .enumerate()
            .map(|(i, &v)| ((i * record) as f64 * model.dt, v.max(1e-300).log10()))
            .collect();
        lo = points.iter().fold(lo, |a, p| a.min(p.1));
        let mut s = series(
            &format!("{}: J = {:.3} ± {:.3}", l.name(), o.cost, o.stderr),
            points,
        );
        // Two pairs coincide to plotting accuracy: SGD and momentum (tuned to the same
        // effective rate lr/(1 − μ)), the oracle and the derived rule. One of each is dashed.
        s.dashed = matches!(l, Learner::Oracle | Learner::Sgd { .. });
        // The oracle is the optimal rule with the true curvature; SGD is gradient descent.
        s.role = match l {
            Learner::Oracle => Some(Role::Optimal),
            Learner::Sgd { .. } => Some(Role::GradientFlow),
            _ => None,
        };
        loss.series.push(s);
    }
    loss.y_range = ((lo - 0.2).floor(), 1.0);
    let mut gap = figure(
        "noisy-quadratic-gap",
        "Derived rule with estimated curvature vs the oracle (β = 0.9, 200 paths)",
        "log₂ M (gradient samples per step)",
        "excess cost over the oracle",
        (0.5, 6.5),
        (-2.5, 1.5),
    );
    gap.y_log = true;
    let mut points = Vec::new();
    let mut upper = Vec::new();
    let mut lower = Vec::new();
    for batch in [2usize, 4, 8, 16, 32, 64] {
        model.batch = batch;
        let o = simulate(&model, Learner::Oracle, 200, 1, model.steps);
        let d = simulate(&model, derived, 200, 1, model.steps);
        let (mean, se) = paired_difference(&d.costs, &o.costs);
        let x = (batch as f64).log2();
        points.push((x, mean.max(1e-12).log10()));
        upper.push((mean + 2.0 * se).max(1e-12).log10());
        lower.push((mean - 2.0 * se).max(mean * 0.1).max(1e-12).log10());
    }
    gap.bands.push(super::plot::Band {
        xs: points.iter().map(|p| p.0).collect(),
        lower,
        upper,
        color_of: 0,
    });
    gap.series
        .push(series("excess cost (band: ± 2 standard errors)", points));
    Ok(vec![loss, gap])
}

/// One path through several task switches (λ = 0.3): θ of the derived rule and of gradient
/// flow with the current task's minimum, and beneath it the derived learner's belief (mean ±
/// one standard deviation); and plasticity: the belief's gain on gradient evidence, and the
/// learner's effective learning rate, against the belief variance.
pub fn task_switches() -> Result<Vec<Figure>, String> {
    use crate::rules::continual::{ContinualSetup, Learner};
    let setup = ContinualSetup {
        h: 2.0,
        eta: 1.0,
        k: 1.0,
        gamma: 0.2,
        hazard: 0.3,
        prior_mean: 0.0,
        prior_var: 1.0,
        first_minimum: 1.0,
        noise: 0.5,
    };
    let t_end = 30.0;
    let trace = setup.trace(
        &[Learner::Derived, Learner::GradientFlow],
        1,
        0,
        0.01,
        t_end,
        10,
    );
    let mut traj = figure(
        "task-switch-path",
        "One path through task switches (λ = 0.3, h = 2, noisy gradients r = 0.5)",
        "t",
        "θ",
        (0.0, t_end),
        (-3.0, 3.0),
    );
    let column =
        |k: usize, f: fn(&crate::rules::continual::BeliefState) -> f64| -> Vec<(f64, f64)> {
            trace
                .t
                .iter()
                .zip(&trace.states[k])
                .map(|(&t, s)| (t, f(s)))
                .collect()
        };
    traj.series
        .push(series("derived rule, θ(t)", column(0, |s| s.theta)).with_role(Role::Optimal));
    traj.series.push(
        series("gradient flow (rate ηk/γ), θ(t)", column(1, |s| s.theta))
            .with_role(Role::GradientFlow),
    );
    let mut minimum = series(
        "current task's minimum μ(t)",
        trace
            .t
            .iter()
            .copied()
            .zip(trace.minimum.iter().copied())
            .collect(),
    )
    .with_role(Role::Minimum);
    minimum.dashed = true;
    traj.series.push(minimum.clone());
    let (lo, hi) = trace
        .minimum
        .iter()
        .chain(trace.states.iter().flatten().map(|s| &s.theta))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    traj.y_range = ((lo - 0.3).floor(), (hi + 0.3).ceil());
    let mut belief = figure(
        "task-switch-belief",
        "The derived learner's belief about the current minimum (mean ± 1 sd)",
        "t",
        "belief about μ",
        (0.0, t_end),
        traj.y_range,
    );
    belief.bands.push(super::plot::Band {
        xs: trace.t.clone(),
        lower: trace.states[0]
            .iter()
            .map(|s| s.mean - s.variance.sqrt())
            .collect(),
        upper: trace.states[0]
            .iter()
            .map(|s| s.mean + s.variance.sqrt())
            .collect(),
        color_of: 0,
    });
    belief
        .series
        .push(series("belief mean m(t)", column(0, |s| s.mean)));
    belief.series.push(minimum);
    // Plasticity: the gain κ = vh/r of the belief on gradient evidence, and the learner's
    // effective learning rate R·ρ·κ (how far θ̇ moves per unit of gradient surprise).
    let (rate, rho) = setup.rate_and_pull();
    let v_max = setup.prior_var;
    let mut plastic = figure(
        "task-plasticity",
        "Uncertain weights are more plastic (λ = 0.3, h = 2, r = 0.5)",
        "belief variance v",
        "response to gradient evidence",
        (0.0, v_max),
        (
            0.0,
            1.15 * v_max * setup.h / setup.noise * (rate * rho).max(1.0),
        ),
    );
    let vs: Vec<f64> = (0..=50).map(|i| v_max * i as f64 / 50.0).collect();
    plastic.series.push(series(
        "belief gain κ = vh/r",
        vs.iter().map(|&v| (v, v * setup.h / setup.noise)).collect(),
    ));
    plastic.series.push(series(
        "effective learning rate R·ρ·κ",
        vs.iter()
            .map(|&v| (v, rate * rho * v * setup.h / setup.noise))
            .collect(),
    ));
    // The variances the learner visits on the path above, as points on the gain line.
    plastic.scatter.push(Series {
        name: "visited on the path above (every 2 time units)".into(),
        points: trace
            .t
            .iter()
            .zip(&trace.states[0])
            .step_by(20)
            .map(|(_, s)| (s.variance, s.variance * setup.h / setup.noise))
            .collect(),
        dashed: false,
        role: None,
    });
    Ok(vec![traj, belief, plastic])
}
