//! Learning-rate schedules compared with equal tuning effort
//! (`cargo run --release --example schedules -- [OUT_DIR]`): on the noisy quadratic model
//! (the first table of docs/guide.md and the figure `schedules-nqm.{svg,png,json}` in OUT_DIR,
//! default `target/schedules`; [`lossnav::rules::schedule::compare_on_noisy_quadratic`]) and
//! on the UCI digits MLP (the second table; 5 seeds,
//! [`lossnav::train::schedule::compare_schedules_on_digits`]).

use lossnav::figures::{render_grid, Figure, ImageSize, Series};
use lossnav::rules::schedule::{compare_on_noisy_quadratic, COMPARISON_STEPS};

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/schedules".into());
    let steps = COMPARISON_STEPS as f64;
    let mut lr_panel = Figure::new(
        "schedules-nqm-lr",
        "Tuned schedules (noisy quadratic, 20 curvatures 1e-3…1)",
        "step",
        "learning rate",
        (0.0, steps),
        (0.0, 1.0),
    );
    let mut loss_panel = Figure::new(
        "schedules-nqm-loss",
        "Expected loss (exact), best of 25 settings each",
        "step",
        "E[L]",
        (0.0, steps),
        (-3.0, 1.0),
    );
    loss_panel.y_log = true;
    println!("| schedule | tuned | E[L] after {COMPARISON_STEPS} steps |");
    println!("|---|---|---|");
    let (mut lr_max, mut lo, mut hi) = (0.0_f64, f64::INFINITY, f64::NEG_INFINITY);
    for s in compare_on_noisy_quadratic() {
        let last = *s.losses.last().expect("losses");
        println!("| {} | {} = {:.2e} | {last:.2e} |", s.name, s.knob, s.tuned);
        lr_max = s.rates.iter().copied().fold(lr_max, f64::max);
        lr_panel.series.push(Series {
            name: s.name.into(),
            points: s
                .rates
                .iter()
                .enumerate()
                .map(|(k, r)| (k as f64, *r))
                .collect(),
            dashed: false,
            role: None,
        });
        for l in &s.losses {
            lo = lo.min(l.log10());
            hi = hi.max(l.log10());
        }
        loss_panel.series.push(Series {
            name: format!("{} (final {last:.2e})", s.name),
            points: s
                .losses
                .iter()
                .enumerate()
                .map(|(k, l)| (k as f64, l.log10()))
                .collect(),
            dashed: false,
            role: None,
        });
    }
    lr_panel.y_range = (0.0, 1.05 * lr_max);
    loss_panel.y_range = (lo.floor(), hi.ceil());
    let dir = std::path::Path::new(&out);
    std::fs::create_dir_all(dir).expect("output directory");
    render_grid(
        &[lr_panel, loss_panel],
        2,
        "schedules-nqm",
        dir,
        &ImageSize::default(),
    )
    .expect("figure written");
    println!("wrote {}/schedules-nqm.{{svg,png,json}}", dir.display());

    // The digits MLP: peaks over the same 9-point grid, 5 seeds.
    let grid: Vec<f64> = (0..9).map(|i| 0.01 * 10f64.powf(i as f64 / 4.0)).collect();
    let rows = lossnav::train::schedule::compare_schedules_on_digits(&grid, 5, None)
        .expect("the digits comparison runs");
    println!();
    println!("| schedule | peak lr | final training loss | test accuracy |");
    println!("|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.3} | {:.4} ± {:.4} | {:.1} ± {:.1} % |",
            r.name,
            r.peak,
            r.train_loss.0,
            r.train_loss.1,
            100.0 * r.test_accuracy.0,
            100.0 * r.test_accuracy.1
        );
    }
}
