//! The optimal learning trajectory of a real network, beside the continuous-time rules.
//!
//! `cargo run --release --example optimal_network -- [OUT_DIR] [INTERVALS] [HORIZON]`
//! `[IMAGES]` (defaults: `target/optimal-network`, 8, 10, all 1437 training images; the
//! direct method runs at INTERVALS and twice as many, and the change bounds its error).
//!
//! The digits MLP (64 → 96 → 48 → 10, D = 11 386) from the initialisation of seed 0, its
//! full-batch training loss (1437 images) as the landscape, and the objective
//! `J = ∫₀ᵀ e^{−γt}(|θ̇|²/(2η) + kL(θ)) dt` with `η = k = γ = 1` and a free end. Then
//! `ηk/γ = 1` is the learning rate of the optimal rule's gradient-descent limit, so time t
//! corresponds to t/lr steps of SGD with rate lr; T = 10 is 100 steps at lr = 0.1, about eight
//! epochs of minibatches.
//!
//! The direct method minimises the discretised J over the whole path (cubic Hermite elements,
//! exact gradients by back-propagation, L-BFGS); the rules are integrated by RK4 on the same
//! loss: gradient flow `θ̇ = −(ηk/γ)∇L` (SGD's continuous-time version), the Adam-like flow
//! (γ → 0 in the normalised rule, the Ballistic/RMSprop form) and the derived rule with this
//! objective's γ. Writes `optimal-network.{svg,png,json}` and prints J for each, with the run
//! time and the peak memory (from /proc/self/status).

use std::path::PathBuf;
use std::time::Instant;

use lossnav::figures::{render, Figure, Series};
use lossnav::problems::{End, Horizon, Lagrangian, Landscape, Problem};
use lossnav::solvers::Direct;
use lossnav::train::data;
use lossnav::train::model::{Activation, Architecture, Network};
use lossnav::train::optimal::{integrate_flow, Flow, NetworkLoss};

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(
        args.first()
            .map_or("target/optimal-network", String::as_str),
    );
    let intervals: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let t_end: f64 = args.get(2).map_or(Ok(10.0), |s| s.parse())?;
    let images: usize = args.get(3).map_or(Ok(usize::MAX), |s| s.parse())?;
    std::fs::create_dir_all(&out)?;
    let (eta, k, gamma) = (1.0, 1.0, 1.0);

    let mut set = data::digits();
    if images < set.train.len() {
        set.train = set.train.select(&(0..images).collect::<Vec<_>>());
    }
    // The digits MLP with tanh: the direct method needs a smooth loss (with ReLU, L-BFGS
    // stalls at the kinks: gradient norm 4.7e-3 after 100 iterations, 2.4e-3 after 3000, on 128 images).
    let net = Network::new(
        Architecture::Mlp {
            hidden: vec![96, 48],
            activation: Activation::Tanh,
        },
        (1, 8, 8),
        10,
        candle_core::DType::F32,
        0,
    )?;
    let loss = NetworkLoss::new(&net, &set.train)?;
    let theta0 = net.flat()?;
    let d = theta0.len();
    let start = Instant::now();
    let mut g = vec![0.0; d];
    for _ in 0..10 {
        loss.gradient(&theta0, 0.0, &mut g);
    }
    let per_gradient = start.elapsed().as_secs_f64() / 10.0;
    println!(
        "D = {d}, {} training images; one full-batch gradient {:.1} ms",
        set.train.len(),
        1e3 * per_gradient
    );

    // The continuous-time rules, RK4 at two steps (the difference bounds the error of J).
    let rules = [
        (
            "gradient flow, rate ηk/γ (SGD)",
            Flow::Gradient {
                rate: eta * k / gamma,
            },
        ),
        // The γ → 0 rule at the step Adam takes in the paper (1e-3 per step, against SGD's
        // 0.1 per unit of t): √(ηk) = 0.01.
        (
            "Adam-like flow at Adam's step (√(ηk) = 0.01)",
            Flow::Normalised {
                eta_k: 1e-4,
                gamma: 0.0,
                tau: 1.0,
                floor: 1e-8,
            },
        ),
        (
            "derived rule (γ = 1), over gradient flow",
            Flow::Normalised {
                eta_k: eta * k,
                gamma,
                tau: 1.0,
                floor: 0.0,
            },
        ),
    ];
    let mut fig = Figure::new(
        "optimal-network",
        &format!("Digits MLP (D = {d}): loss along the optimal path and along the rules"),
        "t (SGD steps × learning rate)",
        "full-batch training loss",
        (0.0, t_end),
        (0.0, 2.5),
    );
    let mut report = Vec::new();
    for (name, flow) in rules {
        let t0 = Instant::now();
        let fine = integrate_flow(&loss, flow, &theta0, (eta, k, gamma), t_end, 0.05)?;
        let coarse = integrate_flow(&loss, flow, &theta0, (eta, k, gamma), t_end, 0.1)?;
        println!(
            "{name}: J = {:.6} (RK4 step 0.05; step 0.1 gives {:.6}), final loss {:.4}, {:.1} s",
            fine.cost,
            coarse.cost,
            fine.loss.last().copied().unwrap_or(f64::NAN),
            t0.elapsed().as_secs_f64()
        );
        report.push(serde_json::json!({"rule": name, "cost": fine.cost,
            "cost_error_bound": (fine.cost - coarse.cost).abs(),
            "final_loss": fine.loss.last()}));
        // The derived rule at this γ coincides with gradient flow to plotting accuracy:
        // dashed, so both stay visible.
        let derived = matches!(flow, Flow::Normalised { gamma, .. } if gamma > 0.0);
        fig.series.push(Series {
            name: format!("{name}: J = {:.4}", fine.cost),
            points: fine
                .t
                .iter()
                .copied()
                .zip(fine.loss.iter().copied())
                .collect(),
            dashed: derived,
            role: None,
        });
    }

    let problem = Problem::new(
        Lagrangian::new(loss.clone())
            .with_eta(eta)
            .with_k(k)
            .with_gamma(gamma),
        nalgebra::DVector::from_vec(theta0.clone()),
        Horizon::Finite(t_end),
        End::Free {
            terminal_cost: None,
        },
    )?
    .with_name("digits-mlp");
    let mut results = Vec::new();
    for n in [intervals, 2 * intervals] {
        let t0 = Instant::now();
        let mut direct = Direct::default().with_intervals(n);
        direct.memory = 10;
        // The per-unknown gradient tolerance: the cost is O(1), 1e-7 is far below the
        // discretisation error measured by doubling the intervals.
        direct.gradient_tol = 1e-7;
        if let Ok(m) = std::env::var("MAX_ITERS") {
            direct.max_iterations = m.parse()?;
        }
        let sol = match direct.solve(&problem) {
            Ok(s) => s,
            Err(e) => {
                println!(
                    "{n} intervals: {e} after {:.1} s",
                    t0.elapsed().as_secs_f64()
                );
                return Err(e.into());
            }
        };
        let seconds = t0.elapsed().as_secs_f64();
        println!(
            "optimal path, {n} intervals: J* = {:.6}, {} L-BFGS iterations, {:.1} s, second order: {:?}",
            sol.cost, sol.diagnostics.iterations, seconds, sol.second_order
        );
        results.push((n, sol, seconds));
    }
    let (_, sol, seconds) = &results[1];
    let j_star = sol.cost;
    let richardson = (results[1].1.cost - results[0].1.cost).abs();
    fig.series.insert(
        0,
        Series {
            name: format!("optimal path (direct method): J* = {j_star:.4}"),
            // The loss along the fourth-order interpolant, not only at the mesh nodes.
            points: (0..=200)
                .map(|i| {
                    let t = t_end * i as f64 / 200.0;
                    (t, loss.value(&sol.eval(t).0, t))
                })
                .collect(),
            dashed: true,
            role: Some(lossnav::figures::Role::Optimal),
        },
    );
    render(&fig, &out, &lossnav::figures::ImageSize::default())?;
    let summary = serde_json::json!({
        "dim": d, "images": set.train.len(), "eta": eta, "k": k, "gamma": gamma, "horizon": t_end,
        "gradient_ms": 1e3 * per_gradient,
        "optimal": {"cost": j_star, "intervals": results[1].0,
                    "cost_change_from_half_the_intervals": richardson,
                    "iterations": sol.diagnostics.iterations, "seconds": seconds},
        "rules": report, "peak_rss_mb": peak_rss_mb(),
    });
    std::fs::write(
        out.join("optimal-network-summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
