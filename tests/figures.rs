//! `lossnav figures` and `lossnav plot`: every panel is written as a valid SVG and PNG, and the
//! data behind each panel matches the closed form or solver it claims to show.

use std::path::Path;

use serde_json::Value;

use lossnav::figures::{fit_panels, problem_panels, tick_defects, Figure, ImageSize, Role};
use lossnav::fit::{fit, FitOptions, Free, Observations};
use lossnav::problems::Spec;
use lossnav::rules::diagonal;
use lossnav::rules::drift::Rotation;
use lossnav::solvers::Bvp;

mod common;

use common::{lossnav, temp_dir};

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

fn series<'a>(fig: &'a Value, name: &str) -> &'a Vec<Value> {
    fig["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no series {name}"))["points"]
        .as_array()
        .unwrap()
}

fn xy(v: &Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

#[test]
fn paper_figures_are_written_and_show_what_they_claim() {
    let dir = temp_dir("figures");
    let out = lossnav(&["figures", "--out", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let panels = [
        "fig1b",
        "fig1c",
        "fig2a",
        "fig2b",
        "fig2c",
        "fig2d",
        "fig3a",
        "fig3b",
        "fig3c",
        "fig3d",
        "task-rho",
        "task-trajectory",
    ];
    // Every panel written: its tick labels (computed from the same key points plotters draws)
    // are in its SVG, distinct, increasing, and free of rounding noise.
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let fig: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(x_range) = fig.get("x_range") else {
            continue;
        };
        let svg = std::fs::read_to_string(path.with_extension("svg")).unwrap();
        let range = |r: &Value| (r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        let flag = |key: &str| fig[key].as_bool().unwrap_or(false);
        let axes = [
            ("x", range(x_range), flag("x_integer"), flag("x_log")),
            ("y", range(&fig["y_range"]), false, flag("y_log")),
        ];
        for (axis, (lo, hi), integer, log) in axes {
            let labels = lossnav::figures::axis_tick_labels(lo, hi, integer, log);
            let where_ = format!("{} {axis}: {labels:?}", path.display());
            assert!(labels.len() >= 2, "{where_}");
            // Log axes are labelled in the quantity (10⁻³ written with superscripts).
            let read = |l: &str| -> f64 {
                match l.strip_prefix("10") {
                    Some(exp)
                        if exp.starts_with([
                            '⁻', '⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹',
                        ]) =>
                    {
                        let plain: String = exp
                            .chars()
                            .map(|c| match c {
                                '⁻' => '-',
                                c => char::from_digit(
                                    "⁰¹²³⁴⁵⁶⁷⁸⁹".chars().position(|s| s == c).unwrap() as u32,
                                    10,
                                )
                                .unwrap(),
                            })
                            .collect();
                        10f64.powi(plain.parse().unwrap())
                    }
                    _ => l.parse().unwrap(),
                }
            };
            let values: Vec<f64> = labels.iter().map(|l| read(l)).collect();
            assert!(values.windows(2).all(|w| w[0] < w[1]), "{where_}");
            for (l, v) in labels.iter().zip(&values) {
                // No "-0", no "-5.6e-17" for a tick at zero.
                assert!(!(*v == 0.0 && l.starts_with('-')), "{where_}");
                assert!(!l.contains("e-1"), "{where_}");
                assert!(
                    svg.contains(&format!("\n{l}\n</text>")),
                    "{where_}: {l} not drawn"
                );
            }
        }
        // The colour bar too, and each role in its one colour.
        let panel: Figure = serde_json::from_value(fig.clone()).unwrap();
        let defects = tick_defects(&panel);
        assert!(defects.is_empty(), "{defects:#?}");
        check_roles(&panel, &svg);
        checked += 1;
    }
    assert!(checked >= panels.len(), "{checked} panels checked");
    guide_quotes_the_noisy_quadratic_panels(&dir);
    let mut data = std::collections::HashMap::new();
    for id in panels {
        // 800 × 600 CSS pixels at the default 192 dpi.
        assert_eq!(png_size(&dir.join(format!("{id}.png"))), (1600, 1200));
        let svg = std::fs::read_to_string(dir.join(format!("{id}.svg"))).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{id}.svg"
        );
        assert!(svg.contains("<text"), "{id}.svg has labels");
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{id}.json"))).unwrap())
                .unwrap();
        data.insert(id, json);
    }
    // 2a: θ(t) = e^{-rt} for the 1D quadratic (h = η = k = 1), BVP at tol 1e-8: 1e-6.
    for gamma in [0.0, 1.0, 10.0] {
        let r = diagonal::rate(1.0, 1.0, 1.0, 1.0, gamma);
        for p in series(&data["fig2a"], &format!("γ = {gamma}")) {
            let (t, th) = xy(p);
            assert!(
                (th - (-r * t).exp()).abs() < 1e-6,
                "fig2a γ={gamma} t={t}: {th}"
            );
        }
    }
    // 2d: curves are the closed form; the solver markers sit on them (rates over one time
    // unit from tol-1e-8 solutions: 1e-6).
    for gamma in [0.0, 1.0, 10.0] {
        for p in series(&data["fig2d"], &format!("γ = {gamma} (closed form)")) {
            let (c, ratio) = xy(p);
            assert!((ratio - diagonal::rate_ratio(c, 1.0, 1.0, 1.0, 1.0, gamma)).abs() < 1e-12);
        }
        let marker = data["fig2d"]["markers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == format!("solver, γ = {gamma}"))
            .unwrap();
        let (c, ratio) = xy(&marker["at"]);
        assert!(
            (ratio - diagonal::rate_ratio(c, 1.0, 1.0, 1.0, 1.0, gamma)).abs() < 1e-6,
            "fig2d marker γ={gamma}"
        );
    }
    // task-rho: ρ = (r + γ)/(r + λ + γ) with r = √(γ²/4 + ηkh) − γ/2 (h = 2, η = k = 1), the
    // 1-D closed form, independently of the matrix route that drew it (rounding only).
    for gamma in [0.1, 0.5, 2.0] {
        let r = (gamma * gamma / 4.0 + 2.0_f64).sqrt() - gamma / 2.0;
        let points = series(&data["task-rho"], &format!("γ = {gamma}"));
        assert_eq!(points.len(), 61);
        for p in points {
            let (log_lambda, rho) = xy(p);
            let lambda = 10f64.powf(log_lambda);
            let want = (r + gamma) / (r + lambda + gamma);
            assert!(
                (rho - want).abs() < 1e-12,
                "task-rho γ={gamma} λ={lambda}: {rho} vs {want}"
            );
        }
    }
    // task-trajectory: starts at θ0 = 0; a rare switch (λ = 0.01) learns the task, a frequent
    // one (λ = 5) stays near the prior mean 0.
    let slow = series(&data["task-trajectory"], "λ = 0.01");
    let fast = series(&data["task-trajectory"], "λ = 5");
    assert!(xy(&slow[0]).1.abs() < 1e-12 && xy(&fast[0]).1.abs() < 1e-12);
    assert!(xy(slow.last().unwrap()).1 > 0.9 && xy(fast.last().unwrap()).1 < 0.1);
    // 3c: the marked end points are the closed-form rotation equilibria (q = 0.5, μ = (1, 0)).
    for gamma in [0.0, 1.0] {
        let rot = Rotation::new(0.5, 1.0, nalgebra::Vector2::new(1.0, 0.0), 1.0, 1.0, gamma);
        let marker = data["fig3c"]["markers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == format!("end point θ*, γ = {gamma}"))
            .unwrap();
        let (x, y) = xy(&marker["at"]);
        assert!(
            (x - rot.equilibrium[0]).abs() < 1e-8 && (y - rot.equilibrium[1]).abs() < 1e-8,
            "fig3c γ={gamma}"
        );
    }
    // The composed figures: grids of the panels above, with the same data.
    for (id, parts, size) in [
        ("fig1", &["fig1b", "fig1c"][..], (3200, 1200)),
        (
            "fig2",
            &["fig2a", "fig2b", "fig2c", "fig2d"][..],
            (3200, 2400),
        ),
        (
            "fig3",
            &["fig3a", "fig3b", "fig3c", "fig3d"][..],
            (3200, 2400),
        ),
    ] {
        assert_eq!(png_size(&dir.join(format!("{id}.png"))), size, "{id}");
        let svg = std::fs::read_to_string(dir.join(format!("{id}.svg"))).unwrap();
        let (w, h) = (size.0 / 2, size.1 / 2);
        assert!(
            svg.starts_with(&format!("<svg width=\"{w}\" height=\"{h}\"")),
            "{id}.svg is {w} × {h} CSS pixels"
        );
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{id}.json"))).unwrap())
                .unwrap();
        let composed = json.as_array().unwrap();
        assert_eq!(composed.len(), parts.len());
        for (panel, part) in composed.iter().zip(parts) {
            assert_eq!(panel, &data[part], "{id} shows {part}");
        }
    }
    // Every background field has the colour bar's name and the contour levels it marks, and
    // the levels are those of the contour lines drawn (each segment's ends lie on one).
    for id in ["fig1b", "fig2c", "fig3a", "fig3b", "fig3c", "fig3d"] {
        let heat = &data[id]["heatmap"];
        assert!(heat["label"].as_str().unwrap().starts_with("loss L(θ"));
        let levels: Vec<f64> = heat["levels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(levels.len() >= 10, "{id}");
        assert!(!data[id]["contours"].as_array().unwrap().is_empty(), "{id}");
    }
    // 1b: gradient flow stays left; the optimal path reaches the fixed end (1.0625, 0).
    let gf = series(&data["fig1b"], "gradient flow");
    assert!(xy(gf.last().unwrap()).0 < 0.0);
    let opt = series(&data["fig1b"], "optimal (T = 4, γ = 0.1)");
    let end = xy(opt.last().unwrap());
    assert!((end.0 - 1.0625).abs() < 1e-6 && end.1.abs() < 1e-6);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.unwrap().file_name().to_string_lossy().to_string();
            n.starts_with('.').then_some(n)
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The curves and points whose names say what they are carry that role, a panel has at most
/// one optimal and one gradient-flow curve (so red and blue are unambiguous), and the SVG draws
/// each role's curve in the role's colour.
fn check_roles(fig: &Figure, svg: &str) {
    let mut seen = Vec::new();
    for s in &fig.series {
        let name = s.name.as_str();
        let expected = if name.starts_with("gradient flow") {
            Some(Role::GradientFlow)
        } else if name.starts_with("natural-gradient flow") {
            Some(Role::NaturalGradient)
        } else if name == "optimal" || name.starts_with("optimal (") || name == "optimal path" {
            Some(Role::Optimal)
        } else {
            None
        };
        if expected.is_some() {
            assert_eq!(s.role, expected, "{}: {name}", fig.id);
        }
        if let Some(role) = s.role {
            if matches!(role, Role::Optimal | Role::GradientFlow) {
                assert!(!seen.contains(&role), "{}: two {role:?} curves", fig.id);
                seen.push(role);
            }
            let c = role.colour();
            let (r, g, b) = (c.0, c.1, c.2);
            let hex = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
            assert!(svg.contains(&hex), "{}: {name} not drawn in {hex}", fig.id);
        }
    }
    for m in &fig.markers {
        if m.name == "θ0" {
            assert_eq!(m.role, Some(Role::Start), "{}", fig.id);
        }
        if m.name.contains("minimum") {
            assert_eq!(m.role, Some(Role::Minimum), "{}: {}", fig.id, m.name);
        }
    }
}

/// The panels of `plot` for every shipped two-parameter spec and for Rosenbrock's narrow
/// valley, the published panels and a fit's panels print clean labels on their axes and
/// colour bars and draw each role in its colour; the valley keeps its share of the contours.
#[test]
fn plot_fit_and_published_panels_have_clean_ticks() {
    let dir = temp_dir("panel-ticks");
    std::fs::create_dir_all(&dir).unwrap();
    let mut panels = Vec::new();
    for path in common::shipped_specs() {
        let spec = Spec::from_file(&path).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        // The task-switching spec is for `rule`: its time-dependent loss on an infinite
        // horizon has no equilibrium for the boundary-value solver.
        if stem == "task-switching" {
            continue;
        }
        panels.extend(problem_panels(&spec, &stem).unwrap());
    }
    let valley = Spec::from_json(
        r#"{"name": "Rosenbrock valley",
            "loss": {"expr": "(1-x)^2 + 100*(y-x^2)^2", "vars": ["x", "y"]},
            "eta": 1.0, "k": 0.01, "gamma": 0.1, "theta0": [-1.2, 1.0], "horizon": 10.0,
            "end": "free"}"#,
    )
    .unwrap();
    let valley_panels = problem_panels(&valley, "valley").unwrap();
    let map = valley_panels[0].heatmap.as_ref().unwrap();
    let hi = map.values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // Half the box lies below 1.5 % of the loss range; evenly spaced levels in the loss
    // (or its square, the earlier scale) put one or none of 12 contours there.
    let in_valley = map.levels.iter().filter(|&&l| l < 0.015 * hi).count();
    assert!(
        in_valley >= 4,
        "{in_valley} of {} levels in the valley",
        map.levels.len()
    );
    panels.extend(valley_panels);
    panels.extend(lossnav::figures::published().unwrap());
    // A fit with two free parameters: the trajectory and the misfit landscape.
    let spec = Spec::from_json(
        r#"{"loss": {"quadratic": {"curvatures": [1.0, 4.0], "minimum": [0.0, 0.0]}},
            "gamma": 1.0, "k": 2.0, "theta0": [1.0, 1.0], "horizon": "infinite"}"#,
    )
    .unwrap();
    let sol = Bvp::default().solve(&spec.to_problem().unwrap()).unwrap();
    let t: Vec<f64> = (1..=20).map(|i| 0.3 * i as f64).collect();
    let obs = Observations {
        theta: t
            .iter()
            .map(|&t| sol.eval(t).0.into_iter().map(Some).collect())
            .collect(),
        t,
        sigma: None,
    };
    let free = [Free::parse("gamma").unwrap(), Free::parse("k").unwrap()];
    let opts = FitOptions {
        starts: 1,
        ..FitOptions::default()
    };
    let report = fit("fit", &spec, &obs, &free, &opts).unwrap();
    panels.extend(fit_panels(&spec, &obs, &report.doc, "fit").unwrap());
    assert!(panels.len() >= 5 * 11, "{} panels", panels.len());
    for (k, panel) in panels.iter().enumerate() {
        let defects = tick_defects(panel);
        assert!(defects.is_empty(), "{defects:#?}");
        let svg = dir.join(format!("p{k}.svg"));
        lossnav::figures::render_to(panel, &svg, &ImageSize::default()).unwrap();
        check_roles(panel, &std::fs::read_to_string(&svg).unwrap());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The training panels (synthetic records: losses over four decades, accuracies near 100 %)
/// print clean labels, whole-number epochs, and SGD blue, the ballistic rule red.
#[cfg(feature = "train")]
#[test]
fn training_panels_have_clean_ticks() {
    use lossnav::train::run::EpochRecord;
    let mut records = Vec::new();
    for (optimizer, rate) in [("sgd", 0.5), ("adam", 0.8), ("ballistic", 1.1)] {
        for seed in 0..3u64 {
            for epoch in 1..=7usize {
                records.push(EpochRecord {
                    optimizer,
                    lr: 0.1,
                    seed,
                    epoch,
                    train_loss: 2.0 * (-rate * epoch as f64).exp() * (1.0 + 0.05 * seed as f64),
                    test_accuracy: 100.0 - 9.0 / epoch as f64 - seed as f64 * 0.1,
                    seconds: 0.1,
                });
            }
        }
    }
    let dir = temp_dir("train-ticks");
    std::fs::create_dir_all(&dir).unwrap();
    for panel in lossnav::figures::training_panels(&records, "synthetic") {
        let defects = tick_defects(&panel);
        assert!(defects.is_empty(), "{defects:#?}");
        let [x, _] = lossnav::figures::tick_labels(&panel);
        assert!(x.iter().all(|l| l.parse::<u32>().is_ok()), "{x:?}");
        let svg = dir.join(format!("{}.svg", panel.id));
        lossnav::figures::render_to(&panel, &svg, &ImageSize::default()).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        let roles: Vec<_> = panel.series.iter().map(|s| s.role).collect();
        assert_eq!(
            roles,
            [Some(Role::GradientFlow), None, Some(Role::Optimal)],
            "{}",
            panel.id
        );
        check_roles(&panel, &text);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn plot_writes_a_users_problem() {
    let dir = temp_dir("plot");
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("fisher.png");
    let out = lossnav(&[
        "plot",
        "problems/specs/fisher-metric.json",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(png_size(&png), (1600, 1200));
    // The time courses: θ, loss, kinetic term and ℋ, one 800 × 600 panel each in a 2 × 2 grid.
    assert_eq!(png_size(&dir.join("fisher-time.png")), (3200, 2400));
    // Panel size and resolution: 640 × 480 at 300 dpi is 2000 × 1500 pixels.
    let small = dir.join("small.png");
    let out = lossnav(&[
        "plot",
        "problems/specs/fisher-metric.json",
        "--out",
        small.to_str().unwrap(),
        "--width",
        "640",
        "--height",
        "480",
        "--dpi",
        "300",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(png_size(&small), (2000, 1500));
    // Sizes that cannot hold a panel, or images too large to allocate, are refused before
    // anything is solved or written.
    let refused = dir.join("refused.png");
    for (flags, why) in [
        (&["--dpi", "0"][..], "outside 24..=2400"),
        (&["--width", "20"][..], "outside 240..=8000"),
        (
            &["--width", "8000", "--height", "8000", "--dpi", "2400"][..],
            "larger than the limit",
        ),
    ] {
        let mut args = vec![
            "plot",
            "problems/specs/fisher-metric.json",
            "--out",
            refused.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        let out = lossnav(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(why),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!refused.exists());
    }
    let svg = dir.join("q.svg");
    let out = lossnav(&[
        "plot",
        "problems/specs/figure2-quadratic-1d.json",
        "--out",
        svg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let out = lossnav(&[
        "plot",
        "problems/specs/figure2-quadratic-1d.json",
        "--out",
        dir.join("x.gif").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(".png or .svg"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// docs/guide.md §8 quotes the noisy-quadratic panels' numbers: each must be what the panels
/// written in `dir` show, rounded as the guide rounds it.
fn guide_quotes_the_noisy_quadratic_panels(dir: &Path) {
    // Compared with line breaks as spaces: the guide's lines wrap anywhere.
    let guide = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/guide.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let read = |id: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{id}.json"))).unwrap())
            .unwrap()
    };
    let loss = read("noisy-quadratic");
    // Legend entries "NAME …: J = MEAN ± SE".
    let cost = |prefix: &str| -> (f64, f64) {
        let name = loss["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .find(|n| n.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} curve"));
        let (mean, se) = name
            .rsplit_once("J = ")
            .unwrap()
            .1
            .split_once(" ± ")
            .unwrap();
        (mean.parse().unwrap(), se.parse().unwrap())
    };
    let (oracle, derived, sgd, momentum, adam, rms) = (
        cost("oracle").0,
        cost("derived"),
        cost("SGD").0,
        cost("momentum").0,
        cost("Adam").0,
        cost("RMSprop").0,
    );
    for quote in [
        format!("J is {oracle:.3} for the oracle"),
        format!("{:.3} ± {:.3} for the derived rule", derived.0, derived.1),
        format!("{sgd:.2} for SGD"),
        format!("{momentum:.2} for momentum 0.9"),
        format!("{adam:.1} for Adam"),
        format!("{rms:.1} for RMSprop"),
    ] {
        assert!(guide.contains(&quote), "docs/guide.md should say {quote:?}");
    }
    // The excess over the oracle at M = 2 and M = 64 (the curve holds log₁₀ of it).
    let gap = read("noisy-quadratic-gap");
    let points = gap["series"][0]["points"].as_array().unwrap();
    let at = |i: usize| 10f64.powf(points[i][1].as_f64().unwrap());
    let quote = format!(
        "falls from {:.1} at M = 2 to {:.3} at M = 64",
        at(0),
        at(points.len() - 1)
    );
    assert!(guide.contains(&quote), "docs/guide.md should say {quote:?}");
}
