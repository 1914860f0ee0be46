//! The numbers docs/ and the README quote from the program, recomputed and formatted as the
//! text prints them: a number that drifts from what the program gives fails here. (The claims
//! table is checked in tests/claims.rs, the noisy-quadratic panels in tests/figures.rs, the
//! schedule table in tests/schedule.rs; timings live in docs/benchmarks.md with their commands.)

mod common;

use common::{lossnav, lossnav_json};
use lossnav::problems::load_problem;
use lossnav::solvers::{Bvp, Direct, Scheme, Shooting};
use serde_json::Value;

fn doc(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `text` (whitespace runs read as one space, so a quote may wrap) is in `path`.
fn quotes(path: &str, text: &str) {
    let squash = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        squash(&doc(path)).contains(&squash(text)),
        "{path} should say {text:?}"
    );
}

fn spec(name: &str) -> String {
    format!("problems/specs/{name}.json")
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// docs/solvers.md's accuracy table (`cargo run --release --example accuracy_figure1`, which
/// prints the same rows with timings) and the node counts of the first refinement.
#[test]
fn solvers_md_accuracy_table() {
    let problem = load_problem(spec("figure1-double-well")).unwrap();
    let reference = Bvp {
        scheme: Scheme::Order6,
        ..Bvp::default().with_tol(1e-13)
    }
    .solve(&problem)
    .unwrap();
    let mut nodes_at_1e8 = Vec::new();
    let mut rows = Vec::new();
    for tol in [1e-4, 1e-6, 1e-8, 1e-10] {
        let mut row = format!("| {tol:.0e} |");
        for scheme in [Scheme::Order4, Scheme::Order6] {
            let sol = Bvp {
                scheme,
                second_order: false,
                ..Bvp::default().with_tol(tol)
            }
            .solve(&problem)
            .unwrap();
            let mut worst = 0.0_f64;
            for i in 0..=400 {
                let t = 4.0 * i as f64 / 400.0;
                let (a, pa) = sol.eval(t);
                let (b, pb) = reference.eval(t);
                for k in 0..2 {
                    worst = worst.max((a[k] - b[k]).abs()).max((pa[k] - pb[k]).abs());
                }
            }
            let cost = (sol.cost - reference.cost).abs();
            row += &format!(" {} | {worst:.1e} | {cost:.1e} |", sol.diagnostics.nodes);
            if tol == 1e-8 {
                nodes_at_1e8.push(sol.diagnostics.nodes);
            }
        }
        eprintln!("{row}");
        rows.push(row);
    }
    for row in &rows {
        quotes("docs/solvers.md", row);
    }
    quotes(
        "docs/solvers.md",
        &format!(
            "the returned mesh has {} nodes at order 6 and {} at order 4",
            nodes_at_1e8[1], nodes_at_1e8[0]
        ),
    );
}

/// The boundary-value solver's status line, factorisation count and coarse first mesh, as
/// docs/solvers.md quotes them for Figure 1.
#[test]
fn solvers_md_figure1_solve() {
    let f1 = spec("figure1-double-well");
    let sol = lossnav_json(&["solve", &f1, "--local", "--summary"]);
    let status = sol["status"].as_str().unwrap();
    let estimate = status.split(" ≤").next().unwrap();
    quotes(
        "docs/solvers.md",
        &format!("`{estimate} ≤ tol 1.0e-8; second order:"),
    );
    quotes(
        "docs/solvers.md",
        &format!(
            "the whole solve now takes {} Jacobian factorisations",
            sol["diagnostics"]["iterations"]
        ),
    );
    let tight = lossnav_json(&["solve", &f1, "--local", "--summary", "--tol", "6e-9"]);
    let residual = tight["diagnostics"]["max_residual"].as_f64().unwrap();
    quotes(
        "docs/solvers.md",
        &format!(
            "then {} ({residual:.1e})",
            tight["diagnostics"]["nodes"].as_u64().unwrap()
        ),
    );
}

/// The direct method against the boundary-value solver at tol 1e-12 (N = 200), its L-BFGS
/// iteration counts, and its error estimates (docs/solvers.md).
#[test]
fn solvers_md_direct_method() {
    let mut iterations = Vec::new();
    for (name, label) in [
        ("figure1-double-well", "Figure 1"),
        ("fisher-metric", "terminal cost)"),
        ("figure1-double-well-infinite", "Figure 1 infinite horizon"),
        (
            "figure3-weight-decay-discounted",
            "weight decay with discount",
        ),
    ] {
        let p = load_problem(spec(name)).unwrap();
        let direct = Direct::default().with_intervals(200).solve(&p).unwrap();
        let bvp = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
        let rel = relative(direct.cost, bvp.cost);
        quotes("docs/solvers.md", &format!("{label} {rel:.1e}"));
        if name != "figure3-weight-decay-discounted" {
            iterations.push(direct.diagnostics.iterations);
        }
    }
    let (lo, hi) = (
        iterations.iter().min().unwrap(),
        iterations.iter().max().unwrap(),
    );
    quotes(
        "docs/solvers.md",
        &format!("L-BFGS converges in {lo}–{hi} iterations"),
    );
    // The error estimate that refuses a path: five intervals, and the default 200.
    let f1 = spec("figure1-double-well");
    let out = lossnav(&[
        "solve",
        &f1,
        "--local",
        "--method",
        "direct",
        "--intervals",
        "5",
    ]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let estimate: f64 = err
        .split("error estimate ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    quotes(
        "docs/solvers.md",
        &format!("Figure 1 on 5 intervals (estimate {estimate:.2})"),
    );
    let sol = lossnav_json(&["solve", &f1, "--local", "--summary", "--method", "direct"]);
    let residual = sol["diagnostics"]["max_residual"].as_f64().unwrap();
    quotes(
        "docs/solvers.md",
        &format!("Figure 1 on 200 intervals: {residual:.1e}"),
    );
}

/// Shooting against the boundary-value solver at tol 1e-12 (docs/solvers.md).
#[test]
fn solvers_md_shooting() {
    let mut p0_worst = 0.0_f64;
    for (name, label, iterations) in [
        ("figure1-double-well", "Figure 1", true),
        ("fisher-metric", "fisher-metric", true),
        ("figure2-anisotropic-2d", "Figure 2c", false),
        (
            "figure3-rotation-discounted",
            "rotation with discount",
            false,
        ),
    ] {
        let p = load_problem(spec(name)).unwrap();
        let shooting = Shooting {
            tol: 1e-12,
            ..Shooting::default()
        }
        .solve(&p)
        .unwrap();
        let bvp = Bvp::default().with_tol(1e-12).solve(&p).unwrap();
        let rel = relative(shooting.cost, bvp.cost);
        let mut text = format!("{label} {rel:.1e}");
        if iterations {
            text += &format!(" ({}", shooting.diagnostics.iterations);
        }
        quotes("docs/solvers.md", &text);
        let (_, ps) = shooting.eval(0.0);
        let (_, pb) = bvp.eval(0.0);
        for k in 0..ps.len() {
            p0_worst = p0_worst.max((ps[k] - pb[k]).abs());
        }
    }
    assert!(p0_worst <= 2e-13, "p(0) differs by {p0_worst:e}");
}

/// The search on the long-horizon double well (docs/solvers.md): the local solve's saddle, the
/// minimum the search returns and the shallow-well minimum it lists.
#[test]
fn solvers_md_search() {
    let mut s: Value = serde_json::from_str(&doc(&spec("figure1-double-well"))).unwrap();
    s["theta0"] = serde_json::json!([0.2, 1.0]);
    s["gamma"] = serde_json::json!(0.01);
    s["horizon"] = serde_json::json!(20.0);
    s["end"] = serde_json::json!("free");
    let dir = common::temp_dir("docs-search");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("search.json");
    std::fs::write(&path, s.to_string()).unwrap();
    let path = path.to_str().unwrap();
    let local = lossnav_json(&["solve", path, "--local", "--summary"]);
    assert_eq!(local["second_order"]["verdict"], "saddle");
    quotes(
        "docs/solvers.md",
        &format!(
            "returns the saddle of cost {:.2} ({} descent directions)",
            local["cost"].as_f64().unwrap(),
            local["second_order"]["descent_directions"]
        ),
    );
    let search = lossnav_json(&["solve", path, "--summary"]);
    let costs: Vec<f64> = search["extremals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cost"].as_f64().unwrap())
        .collect();
    quotes(
        "docs/solvers.md",
        &format!(
            "minimum, {}, and also lists the shallow-well minimum ({:.2})",
            // The docs write a minus sign, not a hyphen.
            format!("{:.2}", search["cost"].as_f64().unwrap()).replace('-', "−"),
            costs[1]
        ),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The three methods' agreement as the README and docs/guide.md state it: costs to about
/// 1e-12 at tight tolerances (boundary-value solver and shooting at 1e-12, the direct method
/// on 200 intervals) and to about 1e-9 at the defaults, on the shipped nonlinear specs.
#[test]
fn readme_and_guide_method_agreement() {
    let order = |x: f64| 10f64.powf(x.log10().round());
    let (mut tight, mut loose) = (0.0_f64, 0.0_f64);
    for name in [
        "figure1-double-well",
        "fisher-metric",
        "figure1-double-well-infinite",
    ] {
        let p = load_problem(spec(name)).unwrap();
        let reference = Bvp::default().with_tol(1e-12).solve(&p).unwrap().cost;
        let shooting = Shooting {
            tol: 1e-12,
            ..Shooting::default()
        }
        .solve(&p)
        .unwrap()
        .cost;
        let direct = Direct::default()
            .with_intervals(200)
            .solve(&p)
            .unwrap()
            .cost;
        eprintln!(
            "{name}: shooting {:.1e}, direct {:.1e} against the boundary-value solver at 1e-12",
            relative(shooting, reference),
            relative(direct, reference)
        );
        tight = tight
            .max(relative(shooting, reference))
            .max(relative(direct, reference));
        let costs = [
            Bvp::default().solve(&p).unwrap().cost,
            Shooting::default().solve(&p).unwrap().cost,
            Direct::default().solve(&p).unwrap().cost,
        ];
        for a in costs {
            for b in costs {
                loose = loose.max(relative(a, b));
            }
        }
    }
    for path in ["README.md", "docs/guide.md"] {
        quotes(
            path,
            &format!(
                "costs agree to about {:.0e} at tight tolerances",
                order(tight)
            ),
        );
        quotes(
            path,
            &format!("and to about {:.0e} at the defaults", order(loose)),
        );
    }
}

/// docs/guide.md's first commands: the angle of the optimal velocity to the descent direction
/// at t = 0 and how far gradient flow ends from the end point.
#[test]
fn guide_first_solve() {
    let f1 = spec("figure1-double-well");
    let sol = lossnav_json(&["solve", &f1, "--summary", "--at", "0,1,2,3,4"]);
    let angle = sol["at"]["rule"]["angle_to_descent_deg"][0]
        .as_f64()
        .unwrap();
    quotes(
        "docs/guide.md",
        &format!("the update starts at {angle:.0}° to the descent direction"),
    );
    let sim = lossnav_json(&["simulate", &f1, "--rule", "gradient-flow", "--summary"]);
    let miss = sim["end_error"].as_f64().unwrap();
    quotes(
        "docs/guide.md",
        &format!("about {miss:.0} away from the target"),
    );
}

/// docs/guide.md's schedule output block is what `lossnav schedule … --summary` prints.
#[test]
fn guide_schedule_block() {
    let out = lossnav(&[
        "schedule",
        &spec("schedule-quadratic"),
        "--steps",
        "20",
        "--summary",
    ]);
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout);
    // The guide's output block after the command, where "…" stands for what it leaves out:
    // each line it shows is the start of a line printed.
    let guide = doc("docs/guide.md");
    let after = guide
        .split("schedule-quadratic.json --steps 20 --summary\n```")
        .nth(1)
        .unwrap();
    let block = after
        .split("```text\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let mut shown = 0;
    for line in block.lines() {
        let line = line.trim();
        let prefix = line.split('…').next().unwrap();
        if prefix.is_empty() {
            continue;
        }
        assert!(
            printed.lines().any(|p| p.trim().starts_with(prefix)),
            "docs/guide.md shows {line:?}; the program prints\n{printed}"
        );
        shown += 1;
    }
    assert!(shown >= 12, "{shown} lines compared");
}

/// docs/guide.md's sweep summary line is what the 30-point sweep prints.
#[test]
fn guide_sweep_summary() {
    let dir = common::temp_dir("docs-sweep");
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("sweep.jsonl");
    let out = lossnav(&[
        "sweep",
        &spec("figure1-double-well-infinite"),
        "--set",
        "gamma=0.05:1.5:30",
        "-o",
        out_path.to_str().unwrap(),
        "--allow-failures",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("sweep:"))
        .unwrap_or_else(|| panic!("{err}"));
    // The guide shortens the list of failures to "…".
    let head = line.split(" (").next().unwrap();
    quotes("docs/guide.md", head);
    let first = line
        .split("first at ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap();
    quotes("docs/guide.md", &format!("first at {first}"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The heavy-ball fits of docs/guide.md: the residual of the 1-D fit and the identified
/// ratio of the 2-D one with its relative standard error.
#[test]
fn guide_heavy_ball_fits() {
    let dir = common::temp_dir("docs-fit");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("fit.json");
    let args = |spec_name: &str, skip: bool| {
        let mut a = vec![
            "fit".to_string(),
            "--rule".into(),
            "heavy-ball".into(),
            "--lr".into(),
            "0.02".into(),
            "--beta".into(),
            "0.5".into(),
            "--steps".into(),
            "150".into(),
            "--spec".into(),
            spec(spec_name),
            "--free".into(),
            "k,gamma".into(),
            "-o".into(),
            out.to_str().unwrap().into(),
        ];
        if skip {
            a.extend(["--skip".into(), "40".into()]);
        }
        a
    };
    let run = |a: Vec<String>| -> Value {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = lossnav(&a);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap()
    };
    let one = run(args("heavy-ball-1d", false));
    let rms = one["goodness_of_fit"]["rms_residual"].as_f64().unwrap();
    quotes("docs/guide.md", &format!("{rms:.1e}"));
    let two = run(args("figure2-anisotropic-2d", true));
    let id = &two["identified"][0];
    let value = id["value"].as_f64().unwrap();
    let se = id["standard_error"].as_f64().unwrap();
    quotes("docs/guide.md", &format!("{value:.7}"));
    quotes(
        "docs/guide.md",
        &format!("relative standard error {se:.0e}"),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Adam fit of docs/guide.md: the fitted metric entry and γ with their standard errors,
/// and the residual.
#[test]
fn guide_adam_fit() {
    let dir = common::temp_dir("docs-adam");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("fit-adam.json");
    let o = lossnav(&[
        "fit",
        "--rule",
        "adam",
        "--lr",
        "0.01",
        "--steps",
        "300",
        "--spec",
        &spec("adam-quadratic"),
        "--free",
        "metric.diag[1],gamma",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let param = |name: &str| {
        let p = doc["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap();
        (
            p["value"].as_f64().unwrap(),
            p["standard_error"].as_f64().unwrap(),
        )
    };
    let (g1, se1) = param("metric.diag[1]");
    let (gamma, se_gamma) = param("gamma");
    quotes(
        "docs/guide.md",
        &format!("`metric.diag[1] = {g1:.2} ± {se1:.2}` with `γ = {gamma:.3} ± {se_gamma:.3}`"),
    );
    let rms = doc["goodness_of_fit"]["rms_residual"].as_f64().unwrap();
    quotes(
        "docs/guide.md",
        &format!("the root-mean-square residual is {rms:.1e}"),
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
