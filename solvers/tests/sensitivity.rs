//! Sensitivities against independent answers: closed forms of linear–quadratic problems,
//! and finite differences of re-solves on every shipped spec and on random problems; each check
//! shown to fail when a term of the sensitivity equations is left out.

use std::sync::Arc;

use lossnav_problems::{End, Horizon, Problem, Spec, SpecPath};
use lossnav_solvers::sensitivity::{
    sensitivities, Parameter, Sensitivities, SensitivityOptions, Term,
};
use lossnav_solvers::{Bvp, Solution};

/// Tight enough that re-solve errors divided by the difference step stay below 1e-7 relative.
const TOL: f64 = 1e-10;

fn bvp() -> Bvp {
    Bvp::default().with_tol(TOL)
}

fn spec_parameter(spec: &Spec, name: &str) -> Parameter {
    let path = SpecPath::parse(name, spec).unwrap();
    let value = path.get(spec).unwrap();
    let spec = spec.clone();
    Parameter::Other {
        name: name.to_string(),
        value,
        build: Arc::new(move |v| path.set(&spec, v)?.to_problem()),
    }
}

/// Every parameter a spec has: the core ones and its numeric `params`.
fn parameters_of(spec: &Spec, problem: &Problem) -> Vec<Parameter> {
    let mut out = vec![Parameter::Eta, Parameter::K, Parameter::Gamma];
    if problem.lagrangian().gamma() == 0.0 && problem.horizon() == Horizon::Infinite {
        // The relative cost at γ = 0 has no derivative in γ (the absolute one is infinite).
        out.pop();
    }
    out.extend((0..problem.dim().min(2)).map(Parameter::Theta0));
    if let Horizon::Finite(_) = problem.horizon() {
        out.push(Parameter::Horizon);
    }
    if let End::Fixed(_) = problem.end() {
        out.push(Parameter::End(0));
    }
    let mut names: Vec<String> = spec.params.keys().map(|k| format!("params.{k}")).collect();
    if let Some(p) = &spec.loss.params {
        names.extend(p.keys().map(|k| format!("params.{k}")));
    }
    out.extend(names.iter().map(|n| spec_parameter(spec, n)));
    out
}

/// `problem` with `param` at `v` (what the sensitivity code does internally, written again
/// here so the re-solves do not share its code).
fn at(problem: &Problem, param: &Parameter, v: f64) -> Problem {
    let lag = problem.lagrangian().clone();
    match param {
        Parameter::Eta => problem.with_lagrangian(lag.with_eta(v)),
        Parameter::K => problem.with_lagrangian(lag.with_k(v)),
        Parameter::Gamma => problem.with_lagrangian(lag.with_gamma(v)),
        Parameter::Horizon => problem.with_horizon(Horizon::Finite(v)),
        Parameter::Theta0(i) => {
            let mut t = problem.theta0().clone();
            t[*i] = v;
            problem.with_theta0(t)
        }
        Parameter::End(i) => {
            let End::Fixed(e) = problem.end() else {
                unreachable!()
            };
            let mut e = e.clone();
            e[*i] = v;
            problem.with_end(End::Fixed(e))
        }
        Parameter::Other { build, .. } => build(v),
    }
    .unwrap()
}

/// Richardson-extrapolated central differences of re-solves (steps `h`, `h/2`), with the
/// estimated error of the finer quotient.
fn resolved(
    problem: &Problem,
    param: &Parameter,
    value: f64,
    times: &[f64],
) -> (f64, f64, Vec<Vec<f64>>) {
    let h = 1e-3 * if value == 0.0 { 1.0 } else { value.abs() };
    let sols: Vec<Solution> = [value + h, value - h, value + h / 2.0, value - h / 2.0]
        .iter()
        .map(|&v| bvp().solve(&at(problem, param, v)).unwrap())
        .collect();
    let rich = |f: &dyn Fn(&Solution) -> f64| {
        let d1 = (f(&sols[0]) - f(&sols[1])) / (2.0 * h);
        let d2 = (f(&sols[2]) - f(&sols[3])) / h;
        ((4.0 * d2 - d1) / 3.0, (d2 - d1).abs() / 3.0)
    };
    let (cost, cost_err) = rich(&|s| s.cost);
    let d = problem.dim();
    let path = times
        .iter()
        .map(|&t| (0..d).map(|j| rich(&|s| s.eval(t).0[j]).0).collect())
        .collect();
    (cost, cost_err, path)
}

/// Checks every parameter's sensitivities of `problem` against re-solves: the cost to within
/// the two error estimates plus 1e-6 relative, the path at every third node to 1e-6 of the
/// path's scale. Returns the first disagreement.
fn check(problem: &Problem, params: &[Parameter], opts: &SensitivityOptions) -> Result<(), String> {
    let sol = bvp().solve(problem).map_err(|e| e.to_string())?;
    let s: Sensitivities = sensitivities(problem, &sol, params, opts).map_err(|e| e.to_string())?;
    let nodes: Vec<usize> = (0..sol.t.len()).step_by(3).collect();
    let mut times: Vec<f64> = nodes.iter().map(|&i| sol.t[i]).collect();
    // Between nodes too (a third of the way into every third interval): the interpolant of
    // the path derivative.
    let between: Vec<f64> = (0..sol.t.len() - 1)
        .step_by(3)
        .map(|i| sol.t[i] + (sol.t[i + 1] - sol.t[i]) / 3.0)
        .collect();
    times.extend(&between);
    let scale = sol
        .theta
        .as_flat()
        .iter()
        .fold(1.0_f64, |a, b| a.max(b.abs()));
    for (param, got) in params.iter().zip(&s.parameters) {
        let (cost, cost_err, path) = resolved(problem, param, got.value, &times);
        // Re-solves at tol 1e-10 over a step of 1e-3 of the parameter: ≲ 1e-7 relative noise;
        // 1e-6 relative leaves a margin of ten.
        let allowed = got.cost.error + cost_err + 1e-6 * cost.abs().max(1e-3 * sol.cost.abs());
        let miss = (got.cost.value - cost).abs();
        if miss.is_nan() || miss > allowed {
            return Err(format!(
                "{}: dJ*/dp {} against re-solves {} (allowed {:.1e})",
                got.name, got.cost.value, cost, allowed
            ));
        }
        let p = got
            .path
            .as_ref()
            .map_err(|e| format!("{}: {e}", got.name))?;
        let path_scale = path
            .iter()
            .flatten()
            .fold(scale / got.value.abs().max(1.0), |a, b| a.max(b.abs()));
        for (k, &i) in nodes.iter().enumerate() {
            if matches!(param, Parameter::Horizon) && i + 1 == sol.t.len() {
                // The shorter re-solve ends before t = T (its interpolant clamps there).
                continue;
            }
            for (j, &b) in path[k].iter().enumerate() {
                let a = p.theta[i][j];
                let miss = (a - b).abs();
                if miss.is_nan() || miss > p.error + 1e-6 * path_scale {
                    return Err(format!(
                        "{}: dθ_{j}/dp at t = {:.4}: {a} against re-solves {b}",
                        got.name, sol.t[i]
                    ));
                }
            }
        }
        for (k, &t) in between.iter().enumerate() {
            if matches!(param, Parameter::Horizon) && k == between.len() - 1 {
                continue;
            }
            let (theta, _) = p.at(t);
            for (j, &b) in path[nodes.len() + k].iter().enumerate() {
                let miss = (theta[j] - b).abs();
                if miss.is_nan() || miss > p.error + 1e-6 * path_scale {
                    return Err(format!(
                        "{}: dθ_{j}/dp at t = {t:.4} (between nodes): {} against re-solves {b}",
                        got.name, theta[j]
                    ));
                }
            }
        }
    }
    Ok(())
}

fn shipped(name: &str) -> (Spec, Problem) {
    let path = format!(
        "{}/../problems/specs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let spec = Spec::from_file(&path).unwrap();
    let problem = spec.to_problem().unwrap();
    (spec, problem)
}

/// Every shipped spec that states a deterministic problem (the observed and task-switching
/// ones are solved by the Monte Carlo and belief machinery, not by the boundary-value solver).
#[test]
fn agree_with_resolves_on_every_shipped_spec() {
    let dir = format!("{}/../problems/specs", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    let mut checked = 0;
    for name in &names {
        let (spec, problem) = shipped(name);
        if spec.observation.is_some() || spec.task_switching.is_some() {
            continue;
        }
        let params = parameters_of(&spec, &problem);
        check(&problem, &params, &SensitivityOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        checked += 1;
    }
    assert!(checked >= 10, "{checked} specs checked");
}

/// Six random problems: constant and θ-dependent metrics, linear and nonlinear drifts, finite
/// and infinite horizons, free (with and without terminal cost) and fixed ends; every
/// coefficient drawn from a seeded generator.
#[test]
fn agree_with_resolves_on_random_problems() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut draw = |lo: f64, hi: f64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        lo + (hi - lo) * (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for case in 0..6 {
        let (a, b, c, g, th0, th1) = (
            draw(0.5, 2.0),
            draw(0.2, 1.0),
            draw(-0.5, 0.5),
            draw(0.1, 0.8),
            draw(-1.0, 1.0),
            draw(-1.0, 1.0),
        );
        let text = match case {
            0 => format!(
                r#"{{"loss": {{"expr": "a*x^2 + b*y^2 + c*x*y + 0.1*x^4", "vars": ["x","y"],
                   "params": {{"a": {a}, "b": {b}, "c": {c}}}}},
                   "metric": {{"matrix": [[1.5, 0.2], [0.2, 0.8]]}}, "gamma": {g},
                   "theta0": [{th0}, {th1}], "horizon": 2.5}}"#
            ),
            1 => format!(
                r#"{{"loss": {{"expr": "a*(x-1)^2 + b*y^2", "vars": ["x","y"],
                   "params": {{"a": {a}, "b": {b}}}}},
                   "metric": {{"expr": [["1 + m*x^2", "0"], ["0", "1 + m*y^2"]]}},
                   "params": {{"m": {b}}}, "gamma": {g}, "theta0": [{th0}, {th1}],
                   "horizon": 2.0, "end": {{"fixed": [0.5, {c}]}}}}"#
            ),
            2 => format!(
                r#"{{"loss": {{"quadratic": {{"curvatures": [{a}, {b}], "minimum": [{c}, 0.3]}}}},
                   "drift": {{"linear": [[-0.2, -0.6], [0.6, -0.1]]}}, "gamma": {g},
                   "theta0": [{th0}, {th1}], "horizon": "infinite"}}"#
            ),
            3 => format!(
                r#"{{"loss": {{"expr": "a*x^2 + b*y^2", "vars": ["x","y"],
                   "params": {{"a": {a}, "b": {b}}}}},
                   "drift": {{"expr": ["-q*sin(y)", "q*x*y"]}}, "params": {{"q": {c}}},
                   "gamma": {g}, "theta0": [{th0}, {th1}], "horizon": 3.0,
                   "end": {{"cost": {{"expr": "s*(x^2 + y^2)", "params": {{"s": {b}}}}}}}}}"#
            ),
            4 => format!(
                r#"{{"loss": {{"expr": "a*(x^2-1)^2 + b*y^2 + c*x", "vars": ["x","y"],
                   "params": {{"a": {a}, "b": {b}, "c": {c}}}}},
                   "metric": {{"diag": [1.0, 2.0]}}, "gamma": {g},
                   "theta0": [{th0}, {th1}], "horizon": "infinite"}}"#
            ),
            _ => format!(
                r#"{{"loss": {{"expr": "a*(x - sin(t))^2 + b*y^2", "vars": ["x","y"],
                   "params": {{"a": {a}, "b": {b}}}}}, "gamma": {g},
                   "theta0": [{th0}, {th1}], "horizon": 2.0}}"#
            ),
        };
        let spec = Spec::from_json(&text).unwrap();
        let problem = spec.to_problem().unwrap();
        let mut params = parameters_of(&spec, &problem);
        params.push(spec_parameter(&spec, "eta"));
        if case == 0 {
            params.push(spec_parameter(&spec, "metric.matrix[0][1]"));
        }
        if case == 2 {
            params.push(spec_parameter(&spec, "drift.linear[1][0]"));
            params.push(spec_parameter(&spec, "loss.quadratic.minimum[0]"));
        }
        if case == 4 {
            params.push(spec_parameter(&spec, "metric.diag[1]"));
        }
        if case == 3 {
            params.push(spec_parameter(&spec, "end.cost.params.s"));
        }
        check(&problem, &params, &SensitivityOptions::default())
            .unwrap_or_else(|e| panic!("case {case}: {e}\n{text}"));
    }
}

/// The diagonal linear–quadratic problem on an infinite horizon (docs/theory.md §4):
/// `r_i = √(γ²/4 + ηk h_i/g_i) - γ/2`, `J* = Σ g_i r_i (θ0_i - μ_i)²/(2η)`,
/// `θ_i(t) = μ_i + (θ0_i - μ_i) e^{-r_i t}`; their derivatives in γ, k, η and θ0 to 1e-9.
#[test]
fn match_linear_quadratic_closed_forms() {
    let (eta, k, gamma): (f64, f64, f64) = (1.3, 0.7, 0.5);
    let (h, g, mu, th0): ([f64; 2], [f64; 2], [f64; 2], [f64; 2]) =
        ([1.0, 4.0], [1.0, 2.0], [0.2, 0.1], [1.0, -0.5]);
    let spec = Spec::from_json(&format!(
        r#"{{"loss": {{"quadratic": {{"curvatures": {h:?}, "minimum": {mu:?}}}}},
           "metric": {{"diag": {g:?}}}, "eta": {eta}, "k": {k}, "gamma": {gamma},
           "theta0": {th0:?}, "horizon": "infinite"}}"#
    ))
    .unwrap();
    let problem = spec.to_problem().unwrap();
    let sol = bvp().solve(&problem).unwrap();
    let params = [
        Parameter::Gamma,
        Parameter::K,
        Parameter::Eta,
        Parameter::Theta0(0),
        Parameter::Theta0(1),
    ];
    let s = sensitivities(&problem, &sol, &params, &SensitivityOptions::default()).unwrap();
    let root = |i: usize| (gamma * gamma / 4.0 + eta * k * h[i] / g[i]).sqrt();
    let r = |i: usize| root(i) - gamma / 2.0;
    let c = |i: usize| (th0[i] - mu[i]).powi(2);
    let dr_dgamma = |i: usize| gamma / 4.0 / root(i) - 0.5;
    let dr_dk = |i: usize| eta * h[i] / g[i] / (2.0 * root(i));
    let dr_deta = |i: usize| k * h[i] / g[i] / (2.0 * root(i));
    let sum = |f: &dyn Fn(usize) -> f64| f(0) + f(1);
    let expected = [
        sum(&|i| g[i] * c(i) / (2.0 * eta) * dr_dgamma(i)),
        sum(&|i| g[i] * c(i) / (2.0 * eta) * dr_dk(i)),
        sum(&|i| g[i] * c(i) / (2.0 * eta) * (dr_deta(i) - r(i) / eta)),
        g[0] * r(0) * (th0[0] - mu[0]) / eta,
        g[1] * r(1) * (th0[1] - mu[1]) / eta,
    ];
    for (got, want) in s.parameters.iter().zip(expected) {
        assert!(
            (got.cost.value - want).abs() <= 1e-9 * want.abs(),
            "{}: {} vs closed form {want}",
            got.name,
            got.cost.value
        );
    }
    // dθ_i(t)/dγ = -t (θ0_i - μ_i) e^{-r_i t} dr_i/dγ at every node.
    let path = s.parameters[0].path.as_ref().unwrap();
    for (n, &t) in sol.t.iter().enumerate() {
        for i in 0..2 {
            let want = -t * (th0[i] - mu[i]) * (-r(i) * t).exp() * dr_dgamma(i);
            assert!(
                (path.theta[n][i] - want).abs() <= 1e-9 * (th0[i] - mu[i]).abs(),
                "dθ_{i}/dγ at t = {t}: {} vs {want}",
                path.theta[n][i]
            );
        }
    }
}

/// Each term of the sensitivity equations, left out, makes a check above fail.
#[test]
fn each_term_is_needed() {
    let (spec1, fig1) = shipped("figure1-double-well");
    let (spec2, inf) = shipped("figure1-double-well-infinite");
    let (spec3, fisher) = shipped("fisher-metric");
    let without = |term| SensitivityOptions {
        drop: Some(term),
        ..SensitivityOptions::default()
    };
    let cases: Vec<(Term, &Problem, Vec<Parameter>)> = vec![
        (Term::StartMultiplier, &fig1, vec![Parameter::Theta0(0)]),
        (Term::EndMultiplier, &fig1, vec![Parameter::End(0)]),
        (Term::HorizonEnd, &fig1, vec![Parameter::Horizon]),
        (Term::Rescale, &fisher, vec![Parameter::Horizon]),
        (
            Term::Envelope,
            &fig1,
            vec![spec_parameter(&spec1, "params.b")],
        ),
        (
            Term::Field,
            &fisher,
            vec![spec_parameter(&spec3, "params.yl")],
        ),
        // The tilt moves the minimum the path ends at.
        (
            Term::MovingTarget,
            &inf,
            vec![spec_parameter(&spec2, "loss.double_well.d")],
        ),
    ];
    for (term, problem, params) in cases {
        check(problem, &params, &SensitivityOptions::default())
            .unwrap_or_else(|e| panic!("{term:?}, with every term: {e}"));
        assert!(
            check(problem, &params, &without(term)).is_err(),
            "the check passes without {term:?}"
        );
    }
}

/// The direct method's solution gives the same `dJ*/dp` (the envelope needs only an accurate
/// optimal path) and says why it has no path derivatives.
#[test]
fn direct_solutions_give_the_cost_derivative() {
    let (_, problem) = shipped("figure2-anisotropic-2d");
    let params = [Parameter::Gamma, Parameter::K, Parameter::Theta0(1)];
    let opts = SensitivityOptions::default();
    let b = bvp().solve(&problem).unwrap();
    let d = lossnav_solvers::Direct::default().solve(&problem).unwrap();
    let lossnav_solvers::Accuracy::Met { estimate, .. } = d.accuracy else {
        panic!("{}", d.status())
    };
    let sb = sensitivities(&problem, &b, &params, &opts).unwrap();
    let sd = sensitivities(&problem, &d, &params, &opts).unwrap();
    for (x, y) in sb.parameters.iter().zip(&sd.parameters) {
        // The direct path's optimality conditions hold to its defect estimate (5.5e-6 here);
        // p(0) and the envelope inherit that accuracy, within a factor of ten.
        assert!(
            (x.cost.value - y.cost.value).abs() <= 10.0 * estimate * x.cost.value.abs().max(1.0),
            "{}: bvp {} direct {}",
            x.name,
            x.cost.value,
            y.cost.value
        );
        assert!(y.path.as_ref().unwrap_err().contains("direct"));
    }
}

/// Refusals: a parameter the problem does not have, a step outside (0, 0.1), a step that
/// leaves the valid problems.
#[test]
fn bad_requests_are_refused() {
    let (_, inf) = shipped("figure1-double-well-infinite");
    let sol = bvp().solve(&inf).unwrap();
    let opts = SensitivityOptions::default();
    for p in [Parameter::Horizon, Parameter::End(0), Parameter::Theta0(7)] {
        let e = sensitivities(&inf, &sol, std::slice::from_ref(&p), &opts).unwrap_err();
        assert!(e.to_string().contains(&p.name()[..3]), "{e}");
    }
    for step in [0.0, -1e-3, 0.5, f64::NAN] {
        let o = SensitivityOptions {
            step,
            ..opts.clone()
        };
        assert!(sensitivities(&inf, &sol, &[Parameter::K], &o).is_err());
    }
}

/// The adjoint route (one transposed solve) and the forward route (one back-substitution per
/// parameter) give the same gradient of a functional of the whole nodal path — random weights
/// on θ and p at every node — to 1e-9 relative, on finite and infinite horizons, including the
/// horizon itself; both use the same ∂F/∂p, so they differ only by the linear algebra.
#[test]
fn adjoint_and_forward_agree() {
    use lossnav_solvers::sensitivity::adjoint_gradient;
    for name in [
        "figure1-double-well",
        "figure1-double-well-infinite",
        "fisher-metric",
        "figure3-rotation-discounted",
    ] {
        let (spec, problem) = shipped(name);
        let sol = bvp().solve(&problem).unwrap();
        let params = parameters_of(&spec, &problem);
        let n = 2 * problem.dim();
        let mut state = 0x1234_5678_9abc_def1_u64;
        let weights: Vec<f64> = (0..sol.t.len() * n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect();
        let opts = SensitivityOptions::default();
        let adjoint = adjoint_gradient(&problem, &sol, &params, &weights, &opts).unwrap();
        let forward = sensitivities(&problem, &sol, &params, &opts).unwrap();
        for (a, f) in adjoint.iter().zip(&forward.parameters) {
            let path = f.path.as_ref().unwrap();
            let fwd: f64 = (0..sol.t.len())
                .map(|i| {
                    let w = &weights[i * n..(i + 1) * n];
                    let (th, p) = (&path.theta[i], &path.p[i]);
                    let d = th.len();
                    (0..d).map(|j| w[j] * th[j] + w[d + j] * p[j]).sum::<f64>()
                })
                .sum();
            let scale: f64 = weights.iter().map(|w| w.abs()).sum::<f64>()
                * path
                    .theta
                    .as_flat()
                    .iter()
                    .chain(path.p.as_flat())
                    .fold(0.0_f64, |m, v| m.max(v.abs()));
            assert!(
                (a.value - fwd).abs() <= 1e-9 * scale.max(fwd.abs()),
                "{name} {}: adjoint {} forward {fwd}",
                f.name,
                a.value
            );
        }
    }
}
