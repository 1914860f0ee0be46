//! Figure 2e,f: training loss and test accuracy over epochs, mean ± one standard deviation over
//! seeds, one curve per optimiser.

use super::plot::{Band, Figure, Role, Series};
use crate::train::run::EpochRecord;

/// Mean and sample standard deviation (0 for one value).
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One epoch over seeds: `(epoch, (mean, sd) of the training loss, (mean, sd) of the test
/// accuracy in %)`.
pub type EpochStatistics = (usize, (f64, f64), (f64, f64));

/// Per optimiser (in order of first appearance) and epoch: mean and sd over seeds of the
/// training loss and of the test accuracy.
pub fn epoch_statistics(records: &[EpochRecord]) -> Vec<(&'static str, Vec<EpochStatistics>)> {
    let mut names: Vec<&'static str> = Vec::new();
    for r in records {
        if !names.contains(&r.optimizer) {
            names.push(r.optimizer);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let epochs = records
                .iter()
                .filter(|r| r.optimizer == name)
                .map(|r| r.epoch)
                .max()
                .unwrap_or(0);
            let rows = (1..=epochs)
                .filter_map(|e| {
                    let at: Vec<&EpochRecord> = records
                        .iter()
                        .filter(|r| r.optimizer == name && r.epoch == e)
                        .collect();
                    if at.is_empty() {
                        return None;
                    }
                    let loss: Vec<f64> = at.iter().map(|r| r.train_loss).collect();
                    let acc: Vec<f64> = at.iter().map(|r| 100.0 * r.test_accuracy).collect();
                    Some((e, mean_sd(&loss), mean_sd(&acc)))
                })
                .collect();
            (name, rows)
        })
        .collect()
}

/// The colour role of an optimiser's curves: SGD is gradient descent (blue) and the paper's
/// ballistic rule (Figure 2e,f) red, as in its figure; the others take palette colours (one
/// red curve per panel, so `derived` is not red too).
fn role(optimizer: &str) -> Option<Role> {
    match optimizer {
        "sgd" => Some(Role::GradientFlow),
        "ballistic" => Some(Role::Optimal),
        _ => None,
    }
}

/// The two panels: training loss (log scale) and test accuracy (%) over epochs.
pub fn training_panels(records: &[EpochRecord], setting: &str) -> [Figure; 2] {
    let stats = epoch_statistics(records);
    let seeds = {
        let mut s: Vec<u64> = records.iter().map(|r| r.seed).collect();
        s.sort_unstable();
        s.dedup();
        s.len()
    };
    let epochs = stats
        .iter()
        .flat_map(|(_, rows)| rows.iter().map(|r| r.0))
        .max()
        .unwrap_or(1) as f64;
    let empty = |id: &str, title: String, y: &str| {
        let mut fig = Figure::new(id, &title, "epoch", y, (1.0, epochs.max(2.0)), (0.0, 1.0));
        fig.x_integer = true;
        fig
    };
    let band = if seeds > 1 {
        format!("mean ± 1 sd over {seeds} seeds")
    } else {
        "one seed".to_string()
    };
    let mut loss = empty(
        "train-loss",
        format!("Training loss ({setting}; {band})"),
        "mean minibatch loss",
    );
    loss.y_log = true;
    let mut acc = empty(
        "test-accuracy",
        format!("Test accuracy ({setting})"),
        "test accuracy (%)",
    );
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut acc_lo = f64::INFINITY;
    for (k, (name, rows)) in stats.iter().enumerate() {
        let xs: Vec<f64> = rows.iter().map(|r| r.0 as f64).collect();
        // The band on a log axis: log10(mean ± sd), the lower edge kept positive.
        let log = |v: f64| v.max(1e-12).log10();
        loss.series.push(Series {
            name: name.to_string(),
            points: rows.iter().map(|r| (r.0 as f64, log(r.1 .0))).collect(),
            dashed: false,
            role: role(name),
        });
        loss.bands.push(Band {
            xs: xs.clone(),
            lower: rows
                .iter()
                .map(|r| log((r.1 .0 - r.1 .1).max(r.1 .0 * 0.05)))
                .collect(),
            upper: rows.iter().map(|r| log(r.1 .0 + r.1 .1)).collect(),
            color_of: k,
        });
        acc.series.push(Series {
            name: name.to_string(),
            points: rows.iter().map(|r| (r.0 as f64, r.2 .0)).collect(),
            dashed: false,
            role: role(name),
        });
        acc.bands.push(Band {
            xs,
            lower: rows.iter().map(|r| r.2 .0 - r.2 .1).collect(),
            upper: rows.iter().map(|r| (r.2 .0 + r.2 .1).min(100.0)).collect(),
            color_of: k,
        });
        for r in rows {
            lo = lo.min(log((r.1 .0 - r.1 .1).max(r.1 .0 * 0.05)));
            hi = hi.max(log(r.1 .0 + r.1 .1));
            acc_lo = acc_lo.min(r.2 .0 - r.2 .1);
        }
    }
    if lo.is_finite() && hi.is_finite() {
        let pad = 0.05 * (hi - lo).max(0.1);
        loss.y_range = (lo - pad, hi + pad);
    }
    // Accuracy: from a round number below the lowest band up to 100 %.
    let floor = if acc_lo.is_finite() {
        ((acc_lo - 5.0) / 10.0).floor() * 10.0
    } else {
        0.0
    };
    acc.y_range = (floor.clamp(0.0, 90.0), 100.5);
    [loss, acc]
}
