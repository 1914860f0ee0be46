//! `lossnav._lossnav`: the thin layer between Python and the Rust crates.
//!
//! Specs come in as JSON text and documents go out as JSON text (the exact documents the
//! command line prints, from the same functions in `lossnav::commands`), so Python and the
//! command line agree to the bit; the Python package (`python/lossnav`) turns them into
//! dictionaries and numpy arrays. Arrays that only Rust can compute (the continuous
//! solution between nodes) come back as numpy arrays directly.
//!
//! Every long call runs on a worker thread while the calling thread waits without the GIL
//! and checks for signals every 50 ms: Ctrl-C raises a cancel flag that the solvers read
//! through their budget, so `KeyboardInterrupt` reaches the user within a fraction of a
//! second. A panic in Rust becomes a Python exception, never an abort.

// An error crosses to Python once per call: its size does not matter.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use numpy::{PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

mod pyloss;

use lossnav::cli::{CliError, Method};
use lossnav::commands::{self, SolveOptions, SweepGrid};
use lossnav_problems::Spec;
use lossnav_solvers::{Budget, Scheme, Solution};

/// How often the waiting thread checks for signals.
const POLL: Duration = Duration::from_millis(50);

/// Stack of the worker thread: the solvers run on the command line's main thread (8 MB);
/// the same here, with room to spare (address space only).
const WORKER_STACK: usize = 64 << 20;

/// The Python exception for an error of the Rust side: a class of `lossnav._errors` chosen
/// by the error's kind, with the same message as the command line.
fn to_pyerr(py: Python<'_>, e: &CliError) -> PyErr {
    let (class, kind) = match e {
        CliError::Spec { .. } => ("SpecError", None),
        CliError::Solver {
            source: lossnav_solvers::SolverError::InvalidOption { .. },
            ..
        } => ("UsageError", None),
        CliError::Solver { source, .. } => (
            if matches!(source, lossnav_solvers::SolverError::TimeLimit { .. }) {
                "TimeLimitError"
            } else {
                "SolverError"
            },
            Some(source.kind()),
        ),
        CliError::IllPosed { source, .. } => ("SolverError", Some(source.kind())),
        CliError::Rule { .. } => ("RuleError", None),
        CliError::Usage(_) => ("UsageError", None),
        CliError::Io { .. } => ("LossnavError", None),
        CliError::Figure(_) => ("LossnavError", None),
    };
    let message = e.to_string();
    let made = (|| -> PyResult<PyErr> {
        let module = py.import("lossnav._errors")?;
        let err = module.getattr(class)?.call1((message.clone(),))?;
        if let Some(kind) = kind {
            err.setattr("kind", kind)?;
        }
        Ok(PyErr::from_value(err))
    })();
    made.unwrap_or_else(|import_error| import_error)
}

/// Runs `work` on a worker thread under a cancellable budget, waiting without the GIL and
/// checking for signals. On `KeyboardInterrupt` the cancel flag is raised (the solvers stop
/// at their next budget check) and the error is raised at once: the worker owns what it uses
/// and ends by itself, its result dropped.
fn interruptible<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    interruptible_with(py, work, None)
}

/// What a long call has done, for a Python progress callback: counts the worker writes and the
/// waiting thread reads.
#[derive(Clone, Default)]
struct Count {
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

/// A progress report: the counts and the Python callable `(done, total)` they go to.
struct Report<'a> {
    count: Count,
    callback: &'a Bound<'a, PyAny>,
}

/// Training steps done and the steps of all runs, from the training's progress reports.
struct CountObserver(Count);

impl lossnav_solvers::observe::Observer for CountObserver {
    fn progress(&self, p: &lossnav_solvers::observe::Progress) {
        self.0.done.fetch_max(p.iteration, Ordering::Relaxed);
        if let Some(total) = p.total {
            self.0.total.store(total, Ordering::Relaxed);
        }
    }
}

/// [`interruptible`], reporting `report`'s counts to its callable from the waiting thread
/// (with the GIL) whenever they changed (once the total is known), at most every 50 ms, and
/// once more at the end. An
/// exception in the callable stops the work as Ctrl-C does and reaches the caller.
fn interruptible_with<T, F>(py: Python<'_>, work: F, report: Option<&Report<'_>>) -> PyResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let mut shown = (usize::MAX, usize::MAX);
    let mut show = |final_call: bool| -> PyResult<()> {
        let Some(r) = report else { return Ok(()) };
        let now = (
            r.count.done.load(Ordering::Relaxed),
            r.count.total.load(Ordering::Relaxed),
        );
        // Nothing before the total is known (training counts its steps after loading the
        // data): a callable may divide by it.
        if (now != shown && now.1 > 0) || final_call {
            shown = now;
            r.callback.call1(now)?;
        }
        Ok(())
    };
    let flag = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let worker_flag = flag.clone();
    let handle = std::thread::Builder::new()
        .name("lossnav-worker".into())
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let _scope = Budget::cancellable(worker_flag);
            // A panic is caught here so that it reaches Python as an exception.
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The receiver is gone after an interrupt: the result is dropped.
            let _ = tx.send(out);
        })
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start a worker thread: {e}")))?;
    // A receiver is not `Sync`; behind a mutex it may be used from inside `detach`.
    let rx = std::sync::Mutex::new(rx);
    loop {
        let got = py.detach(|| match rx.lock() {
            Ok(r) => match r.recv_timeout(POLL) {
                Ok(out) => Some(Some(out)),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => Some(None),
            },
            Err(_) => Some(None),
        });
        match got {
            Some(Some(Ok(value))) => {
                show(true)?;
                return Ok(value);
            }
            Some(Some(Err(panic))) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "unknown".into());
                return Err(PyRuntimeError::new_err(format!(
                    "internal error in lossnav (please report it): {what}"
                )));
            }
            Some(None) => {
                return Err(PyRuntimeError::new_err(
                    "internal error in lossnav (please report it): the worker thread ended \
                     without a result",
                ))
            }
            None => {
                if let Err(interrupt) = py.check_signals().and_then(|()| show(false)) {
                    flag.store(true, Ordering::Relaxed);
                    // Joined by `_shutdown` at the interpreter's exit, before finalisation.
                    if let Ok(mut list) = LINGERING.lock() {
                        list.retain(|h| !h.is_finished());
                        list.push(handle);
                    }
                    return Err(interrupt);
                }
            }
        }
    }
}

/// Workers left running after an interrupt (cancelled, finishing their current step).
static LINGERING: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>> =
    std::sync::Mutex::new(Vec::new());

/// Waits, without the GIL, for the workers an interrupt left running: registered with
/// `atexit`, so that none is inside Python while the interpreter finalises.
#[pyfunction]
fn _shutdown(py: Python<'_>) {
    let handles: Vec<_> = LINGERING
        .lock()
        .map(|mut l| l.drain(..).collect())
        .unwrap_or_default();
    py.detach(|| {
        for h in handles {
            let _ = h.join();
        }
    });
}

fn parse_spec(py: Python<'_>, label: &str, text: &str) -> PyResult<Spec> {
    Spec::from_json(text).map_err(|source| {
        to_pyerr(
            py,
            &CliError::Spec {
                path: label.to_string(),
                source,
            },
        )
    })
}

/// A checked spec and the problem built from it (expressions compiled once, reused by every
/// solve).
struct Inner {
    label: String,
    spec: Spec,
    problem: lossnav_problems::Problem,
    /// The callables of a Python loss (none for a spec's own loss); `problem` then holds the
    /// spec's placeholder loss, replaced per solve so that each solve has its own report.
    python_loss: Option<PythonLoss>,
}

/// The parts of a Python loss.
struct PythonLoss {
    value_and_grad: Py<PyAny>,
    hessian: Option<Py<PyAny>>,
    time_dependent: bool,
    name: String,
}

impl Inner {
    /// The problem to solve, with a Python loss wired to a fresh report.
    fn problem_for_solve(
        &self,
        py: Python<'_>,
    ) -> PyResult<(lossnav_problems::Problem, Option<Arc<pyloss::Status>>)> {
        let Some(parts) = &self.python_loss else {
            return Ok((self.problem.clone(), None));
        };
        let status = Arc::new(pyloss::Status::default());
        let loss = pyloss::PyLoss::new(
            self.problem.dim(),
            parts.value_and_grad.clone_ref(py),
            parts.hessian.as_ref().map(|h| h.clone_ref(py)),
            parts.time_dependent,
            parts.name.clone(),
            status.clone(),
        );
        let lag = self
            .problem
            .lagrangian()
            .clone()
            .with_loss_arc(Arc::new(loss));
        let built = self.problem.with_lagrangian(lag);
        if let Some(err) = status.error.lock().ok().and_then(|mut e| e.take()) {
            return Err(err);
        }
        let problem = built.map_err(|source| {
            to_pyerr(
                py,
                &CliError::Spec {
                    path: self.label.clone(),
                    source,
                },
            )
        })?;
        Ok((problem, Some(status)))
    }
}

/// A compiled problem, shared with worker threads.
#[pyclass(frozen, module = "lossnav._lossnav")]
struct Compiled(Arc<Inner>);

#[pymethods]
impl Compiled {
    /// Checks `spec` (JSON text; `label` names it in errors) and builds its problem, on a
    /// worker thread (Ctrl-C returns at once even while a large expression compiles).
    #[new]
    fn new(py: Python<'_>, spec: &str, label: &str) -> PyResult<Self> {
        let s = parse_spec(py, label, spec)?;
        let name = label.to_string();
        let built = interruptible(py, move || {
            s.to_problem()
                .map(|problem| Inner {
                    label: name.clone(),
                    spec: s,
                    problem,
                    python_loss: None,
                })
                .map_err(|source| CliError::Spec { path: name, source })
        })?;
        built
            .map(|inner| Self(Arc::new(inner)))
            .map_err(|e| to_pyerr(py, &e))
    }

    /// The spec's problem with its loss replaced by Python callables: `value_and_grad(theta,
    /// t)` → (values (n,), gradients (n, D)) and optionally `hessian(theta, t)` → (n, D, D),
    /// on batches of n points.
    #[staticmethod]
    #[pyo3(signature = (spec, label, value_and_grad, hessian=None, time_dependent=false, name=String::new()))]
    fn with_python_loss(
        py: Python<'_>,
        spec: &str,
        label: &str,
        value_and_grad: Py<PyAny>,
        hessian: Option<Py<PyAny>>,
        time_dependent: bool,
        name: String,
    ) -> PyResult<Self> {
        let base = Self::new(py, spec, label)?;
        let inner = Inner {
            label: base.0.label.clone(),
            spec: base.0.spec.clone(),
            problem: base.0.problem.clone(),
            python_loss: Some(PythonLoss {
                value_and_grad,
                hessian,
                time_dependent,
                name,
            }),
        };
        // Built once here so that a loss that fails at θ0 fails now.
        inner.problem_for_solve(py)?;
        Ok(Self(Arc::new(inner)))
    }

    /// What `lossnav validate` reports, as a JSON object: name, dim, eta, k, gamma, loss,
    /// metric, drift, horizon (a number or "infinite"), end, theta0.
    fn summary(&self) -> String {
        let problem = &self.0.problem;
        let lag = problem.lagrangian();
        serde_json::json!({
            "name": problem.name(),
            "dim": problem.dim(),
            "eta": lag.eta(),
            "k": lag.k(),
            "gamma": lag.gamma(),
            "loss": lag.loss().describe(),
            "metric": lag.metric().describe(),
            "drift": lag.drift().describe(),
            "horizon": match problem.horizon() {
                lossnav_problems::Horizon::Finite(t) => serde_json::json!(t),
                lossnav_problems::Horizon::Infinite => serde_json::json!("infinite"),
            },
            "end": problem.end().describe(),
            "theta0": problem.theta0().as_slice(),
        })
        .to_string()
    }
}

/// The per-node arrays of a solve's document.
const NODE_ARRAYS: [&str; 6] = ["t", "theta", "p", "loss", "kinetic", "hamiltonian"];

/// θ and p at several times, each of shape (times, D).
type ThetaAndP<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

/// A solved problem: the command line's document, and the solution for evaluation between
/// nodes.
#[pyclass(frozen, module = "lossnav._lossnav")]
struct Solved {
    doc: serde_json::Value,
    solution: Solution,
    problem: Arc<lossnav_problems::Problem>,
    /// The report of a Python loss.
    status: Option<Arc<pyloss::Status>>,
}

#[pymethods]
impl Solved {
    /// The JSON document, as `lossnav solve` prints it (serialised when asked for).
    #[getter]
    fn document(&self) -> String {
        serde_json::to_string(&self.doc).expect("JSON values serialise")
    }

    /// The document without its per-node arrays, as JSON: what a summary needs, cheap to
    /// parse.
    #[getter]
    fn summary(&self) -> String {
        let mut map = serde_json::Map::new();
        if let Some(doc) = self.doc.as_object() {
            for (k, v) in doc {
                if !NODE_ARRAYS.contains(&k.as_str()) {
                    map.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::Value::Object(map).to_string()
    }

    /// The per-node array `name` of the document (t, theta, p, loss, kinetic, hamiltonian)
    /// as a float64 array: (N,) or (N, D), the same doubles as the document's.
    fn node_array<'py>(
        &self,
        py: Python<'py>,
        name: &str,
    ) -> PyResult<Bound<'py, numpy::PyArrayDyn<f64>>> {
        if !NODE_ARRAYS.contains(&name) {
            return Err(PyRuntimeError::new_err(format!("no node array {name:?}")));
        }
        let rows = self.doc[name].as_array().cloned().unwrap_or_default();
        let n = rows.len();
        let mut flat = Vec::with_capacity(n);
        let mut width = None;
        for r in &rows {
            match r {
                serde_json::Value::Array(xs) => {
                    width.get_or_insert(xs.len());
                    flat.extend(xs.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)));
                }
                x => flat.push(x.as_f64().unwrap_or(f64::NAN)),
            }
        }
        let shape: Vec<usize> = match width {
            Some(w) => vec![n, w],
            None => vec![n],
        };
        numpy::PyArray1::from_vec(py, flat).reshape(shape)
    }

    /// θ(t) and p(t) of the continuous solution at the times `t`: two arrays of shape
    /// (len(t), D).
    fn eval<'py>(
        &self,
        py: Python<'py>,
        t: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<ThetaAndP<'py>> {
        let times = t.as_slice()?;
        let (theta, p): (Vec<Vec<f64>>, Vec<Vec<f64>>) =
            times.iter().map(|&t| self.solution.eval(t)).unzip();
        let d = self.problem.dim();
        let to_array = |rows: Vec<Vec<f64>>| {
            let flat: Vec<f64> = rows.into_iter().flatten().collect();
            numpy::PyArray1::from_vec(py, flat).reshape([times.len(), d])
        };
        Ok((to_array(theta)?, to_array(p)?))
    }

    /// The rule the trajectory implies at the times `t` (θ̇, ∇L, the angle to −∇L, the
    /// effective rate), as the JSON `lossnav solve --at` writes under `at.rule`.
    fn rule_at(&self, t: Vec<f64>) -> PyResult<String> {
        let doc = lossnav::cli::implied_rule_json(&self.problem, &self.solution, &t);
        if let Some(err) = self
            .status
            .as_ref()
            .and_then(|s| s.error.lock().ok().and_then(|mut e| e.take()))
        {
            return Err(err);
        }
        Ok(doc.to_string())
    }
}

/// The error to raise when a Python loss raised during a computation: its exception, with
/// its traceback, as the cause of ours when the computation failed, or alone when it did
/// not. `None` when the loss raised nothing.
fn python_error_first<T>(
    py: Python<'_>,
    status: &Option<Arc<pyloss::Status>>,
    outcome: &Result<T, CliError>,
) -> Option<PyErr> {
    let err = status
        .as_ref()
        .and_then(|s| s.error.lock().ok().and_then(|mut e| e.take()))?;
    Some(match outcome {
        Err(e) => {
            let ours = to_pyerr(py, e);
            ours.set_cause(py, Some(err));
            ours
        }
        Ok(_) => err,
    })
}

/// Solves a compiled spec as `lossnav solve` does (the search by default).
#[pyfunction]
#[pyo3(signature = (problem, method="bvp", tol=None, intervals=200, at=Vec::new(), local=false, max_seconds=None, scheme="auto", sensitivities=Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn solve(
    py: Python<'_>,
    problem: Py<Compiled>,
    method: &str,
    tol: Option<f64>,
    intervals: usize,
    at: Vec<f64>,
    local: bool,
    max_seconds: Option<f64>,
    scheme: &str,
    sensitivities: Vec<String>,
) -> PyResult<Solved> {
    let usage = |m: String| to_pyerr(py, &CliError::Usage(m));
    let method = match method {
        "bvp" => Method::Bvp,
        "direct" => Method::Direct,
        "shooting" => Method::Shooting,
        other => {
            return Err(usage(format!(
                "method {other:?}: one of \"bvp\", \"direct\", \"shooting\""
            )))
        }
    };
    let scheme = match scheme {
        "auto" => Scheme::Auto,
        "4" => Scheme::Order4,
        "6" => Scheme::Order6,
        other => {
            return Err(usage(format!(
                "scheme {other:?}: one of \"auto\", \"4\", \"6\""
            )))
        }
    };
    lossnav_solvers::check_max_seconds(max_seconds).map_err(|_| {
        usage(format!(
            "max_seconds {}: must be a finite number of seconds > 0",
            max_seconds.unwrap_or(f64::NAN)
        ))
    })?;
    let opts = SolveOptions {
        method,
        tol,
        intervals,
        at,
        local,
        max_seconds,
        scheme,
        observer: None,
        sensitivities,
    };
    let inner = problem.get().0.clone();
    let (problem, status) = inner.problem_for_solve(py)?;
    let problem = Arc::new(problem);
    let shared = (inner.clone(), problem.clone());
    let at = opts.at.clone();
    let outcome = interruptible(py, move || {
        let (inner, problem) = shared;
        commands::solve(&inner.label, &inner.spec, &problem, &opts)
    })?;
    let hessian_missing = status
        .as_ref()
        .is_some_and(|s| s.hessian_missing.load(Ordering::Relaxed));
    if let Some(err) = python_error_first(py, &status, &outcome) {
        return Err(err);
    }
    let mut solved = match outcome {
        Ok(solved) => solved,
        Err(e) if hessian_missing => {
            let ours = to_pyerr(
                py,
                &CliError::Usage(
                    "this solve needed the loss's Hessians (an infinite horizon's equilibrium, \
                     the boundary-value solver, shooting or the certificate) and the Python \
                     loss gives none: pass CallableLoss(..., hessian=...)"
                        .into(),
                ),
            );
            ours.set_cause(py, Some(to_pyerr(py, &e)));
            return Err(ours);
        }
        Err(e) => return Err(to_pyerr(py, &e)),
    };
    if hessian_missing {
        // The certificate asked for Hessians the loss does not give: say so instead of the
        // numerical symptom.
        solved.solution.second_order = lossnav_solvers::SecondOrder::Unchecked(
            "the Python loss gives no Hessians (pass CallableLoss(..., hessian=...)): the \
             second-order check needs them"
                .into(),
        );
        let mut doc = lossnav::cli::solution_json(problem.name(), &solved.solution, &at);
        doc["at"]["rule"] = lossnav::cli::implied_rule_json(&problem, &solved.solution, &at);
        solved.doc = doc;
    }
    Ok(Solved {
        doc: solved.doc,
        solution: solved.solution,
        problem,
        status,
    })
}

/// The learning-rate schedule of a finite-horizon problem, as `lossnav schedule` prints it
/// (the solve is `lossnav solve`'s default search).
#[pyfunction]
#[pyo3(signature = (problem, steps=100, max_seconds=None))]
fn schedule(
    py: Python<'_>,
    problem: Py<Compiled>,
    steps: usize,
    max_seconds: Option<f64>,
) -> PyResult<String> {
    lossnav_solvers::check_max_seconds(max_seconds).map_err(|_| {
        to_pyerr(
            py,
            &CliError::Usage(format!(
                "max_seconds {}: must be a finite number of seconds > 0",
                max_seconds.unwrap_or(f64::NAN)
            )),
        )
    })?;
    let inner = problem.get().0.clone();
    let (problem, status) = inner.problem_for_solve(py)?;
    let opts = SolveOptions {
        max_seconds,
        ..SolveOptions::default()
    };
    let outcome = interruptible(py, move || {
        lossnav::commands::schedule::schedule(&inner.label, &inner.spec, &problem, steps, &opts)
    })?;
    if let Some(err) = python_error_first(py, &status, &outcome) {
        return Err(err);
    }
    outcome
        .map(|s| s.doc.to_string())
        .map_err(|e| to_pyerr(py, &e))
}

/// Trains networks as `lossnav train` does (JSON text: `records`, one object per (optimiser,
/// seed, epoch) or per diverged run, and `summary`).
#[pyfunction]
#[pyo3(signature = (data, model, optimizers, epochs, seeds, batch, lr, lr_grid, clip, progress=None))]
#[allow(clippy::too_many_arguments)]
fn train(
    py: Python<'_>,
    data: String,
    model: String,
    optimizers: Vec<String>,
    epochs: Option<usize>,
    seeds: usize,
    batch: usize,
    lr: Vec<(String, f64)>,
    lr_grid: Vec<f64>,
    clip: f64,
    progress: Option<Bound<'_, PyAny>>,
) -> PyResult<String> {
    let args = lossnav::commands::train::TrainArgs {
        data,
        model,
        optimizers,
        epochs,
        seeds,
        batch,
        lr: lr.iter().map(|(k, v)| format!("{k}={v:?}")).collect(),
        lr_grid,
        clip,
    };
    let count = Count::default();
    let observer = CountObserver(count.clone());
    let report = progress.as_ref().map(|callback| Report {
        count: count.clone(),
        callback,
    });
    let trained = interruptible_with(
        py,
        move || lossnav::commands::train::train(&args, move |_| observer),
        report.as_ref(),
    )?
    .map_err(|e| to_pyerr(py, &e))?;
    let records: Vec<serde_json::Value> = trained
        .lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("the records are JSON"))
        .collect();
    Ok(serde_json::json!({"records": records, "summary": trained.summary}).to_string())
}

/// Writes the paper's figures as `lossnav figures [--published]` does; returns the ids
/// written (each as `OUT/ID.svg`, `.png` and `.json`).
#[pyfunction]
#[pyo3(signature = (out, published=false, width=800, height=600, dpi=192.0))]
fn figures(
    py: Python<'_>,
    out: String,
    published: bool,
    width: u32,
    height: u32,
    dpi: f64,
) -> PyResult<Vec<String>> {
    let size = lossnav::figures::ImageSize::new(width, height, dpi)
        .map_err(|e| to_pyerr(py, &CliError::Usage(e)))?;
    let dir = std::path::PathBuf::from(out);
    interruptible(py, move || {
        if published {
            lossnav::figures::published_figures(&dir, &size)
        } else {
            lossnav::figures::paper_figures(&dir, &size)
        }
    })?
    .map_err(|e| to_pyerr(py, &CliError::Figure(e)))
}

/// The escape diagram of a double well spec, as `lossnav escape` computes it (JSON text):
/// for each discount and start point, which minimum the cheaper infinite-horizon extremal
/// reaches, and the switching discounts.
#[pyfunction]
#[pyo3(signature = (problem, gammas, theta0s))]
fn escape(
    py: Python<'_>,
    problem: Py<Compiled>,
    gammas: Vec<f64>,
    theta0s: Vec<Vec<f64>>,
) -> PyResult<String> {
    let c = problem.get().0.clone();
    let usage = |m: String| to_pyerr(py, &CliError::Usage(m));
    if c.python_loss.is_some() {
        return Err(usage(
            "escape needs a spec's loss (the diagram solves many problems on worker threads)"
                .into(),
        ));
    }
    if let lossnav_problems::Horizon::Finite(t) = c.problem.horizon() {
        return Err(usage(format!(
            "escape compares the infinite-horizon extremals toward each minimum; {} has the \
             finite horizon {t} (use a spec with \"horizon\": \"infinite\")",
            c.label
        )));
    }
    if gammas.is_empty() || theta0s.is_empty() {
        return Err(usage(
            "escape needs at least one γ and one start point".into(),
        ));
    }
    if let Some(bad) = theta0s.iter().find(|t| t.len() != c.problem.dim()) {
        return Err(usage(format!(
            "a start point has {} coordinates where the problem has {}",
            bad.len(),
            c.problem.dim()
        )));
    }
    lossnav::commands::sweep::grid_size("gammas × theta0s", &[gammas.len(), theta0s.len()])
        .map_err(|e| to_pyerr(py, &e))?;
    let spec = c.spec.clone();
    interruptible(py, move || {
        lossnav::escape::escape_diagram(&spec, &gammas, &theta0s)
    })?
    .map(|d| serde_json::to_string(&d).expect("JSON values serialise"))
    .map_err(|e| to_pyerr(py, &CliError::Figure(e)))
}

/// The closed-form rule of a linear–quadratic (or task-switching) spec, as `lossnav rule`
/// prints it.
#[pyfunction]
fn rule(py: Python<'_>, problem: Py<Compiled>) -> PyResult<String> {
    let c = problem.get().0.clone();
    if c.python_loss.is_some() {
        return Err(to_pyerr(
            py,
            &CliError::Usage("a Python loss has no closed-form rule".into()),
        ));
    }
    interruptible(py, move || commands::rule(&c.label, &c.spec))?
        .map(|doc| doc.to_string())
        .map_err(|e| to_pyerr(py, &e))
}

/// Integrates a learning rule on a compiled problem, or, on a spec with an observation block
/// (and no rule, or `optimal-policy`), runs the Monte Carlo of the observed system, as
/// `lossnav simulate` does; the JSON document, status first.
#[pyfunction]
#[pyo3(signature = (problem, rule=None, rate=None, beta=0.0, t_end=None, at=Vec::new(), paths=20_000, seed=1, dt=0.01, gain_scale=1.0))]
#[allow(clippy::too_many_arguments)]
fn simulate(
    py: Python<'_>,
    problem: Py<Compiled>,
    rule: Option<String>,
    rate: Option<f64>,
    beta: f64,
    t_end: Option<f64>,
    at: Vec<f64>,
    paths: usize,
    seed: u64,
    dt: f64,
    gain_scale: f64,
) -> PyResult<String> {
    use lossnav::cli::RuleKind;
    use lossnav::commands::simulate::{simulate_observed, simulate_rule, Observed, RuleSimulation};
    let c = problem.get().0.clone();
    let kind = match rule.as_deref() {
        None => None,
        Some("gradient-flow") => Some(RuleKind::GradientFlow),
        Some("natural-gradient") => Some(RuleKind::NaturalGradient),
        Some("optimal-policy") => Some(RuleKind::OptimalPolicy),
        Some("heavy-ball") => Some(RuleKind::HeavyBall),
        Some(other) => {
            return Err(to_pyerr(
                py,
                &CliError::Usage(format!(
                    "rule {other:?}: one of \"gradient-flow\", \"natural-gradient\", \
                     \"optimal-policy\", \"heavy-ball\""
                )),
            ))
        }
    };
    let observed = c.spec.observation.is_some();
    let doc = match (observed, kind) {
        (true, None | Some(RuleKind::OptimalPolicy)) => {
            let opts = Observed {
                paths,
                seed,
                dt,
                gain_scale,
            };
            interruptible(py, move || simulate_observed(&c.label, &c.spec, &opts))?
        }
        (_, Some(kind)) => {
            let (problem, _status) = c.problem_for_solve(py)?;
            let label = c.label.clone();
            let opts = RuleSimulation {
                rule: kind,
                rate,
                beta,
                t_end,
                at,
            };
            interruptible(py, move || simulate_rule(&label, &problem, &opts))?
        }
        (false, None) => Err(CliError::Usage(
            "rule is required (\"gradient-flow\", \"natural-gradient\", \"optimal-policy\", \
             \"heavy-ball\")"
                .into(),
        )),
    };
    doc.map(|d| lossnav::cli::lead(d).to_string())
        .map_err(|e| to_pyerr(py, &e))
}

/// Fits the free parameters of a compiled spec to observations (`t`, `theta` with NaN where
/// not observed) or to a rule's trajectory, as `lossnav fit` does; the JSON document.
#[pyfunction]
#[pyo3(signature = (problem, free, t=None, theta=None, sigma=None, rule=None, lr=None, beta=None, steps=None, skip=0, starts=4, seed=1, max_seconds=None))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    problem: Py<Compiled>,
    free: Vec<String>,
    t: Option<Vec<f64>>,
    theta: Option<Vec<Vec<f64>>>,
    sigma: Option<f64>,
    rule: Option<String>,
    lr: Option<f64>,
    beta: Option<f64>,
    steps: Option<usize>,
    skip: usize,
    starts: usize,
    seed: u64,
    max_seconds: Option<f64>,
) -> PyResult<String> {
    let usage = |m: String| to_pyerr(py, &CliError::Usage(m));
    let c = problem.get().0.clone();
    if c.python_loss.is_some() {
        return Err(usage(
            "fit rebuilds the problem from its spec at every trial point: a Python loss \
             cannot be fitted (write it as an expression)"
                .into(),
        ));
    }
    lossnav_solvers::check_max_seconds(max_seconds)
        .map_err(|_| usage("max_seconds: a finite number of seconds > 0".into()))?;
    if let Some(s) = sigma {
        if !(s.is_finite() && s > 0.0) {
            return Err(usage(format!("sigma {s}: a number > 0")));
        }
    }
    let free: Vec<lossnav::fit::Free> = free
        .iter()
        .map(|f| lossnav::fit::Free::parse(f))
        .collect::<Result<_, _>>()
        .map_err(|e| to_pyerr(py, &e))?;
    let outcome = interruptible(py, move || -> Result<lossnav::fit::FitReport, CliError> {
        let _budget = lossnav_solvers::Budget::start(max_seconds);
        let mut spec = c.spec.clone();
        let mut obs = match (rule.as_deref(), t, theta) {
            (Some(name @ ("heavy-ball" | "adam")), None, None) => {
                let (generator, default_beta) = if name == "adam" {
                    (lossnav::fit::Generator::Adam, 0.9)
                } else {
                    (lossnav::fit::Generator::HeavyBall, f64::NAN)
                };
                lossnav::fit::rule_observations(
                    &c.label,
                    &mut spec,
                    generator,
                    lr.unwrap_or(f64::NAN),
                    beta.unwrap_or(default_beta),
                    steps,
                    skip,
                )?
            }
            (Some(other), None, None) => {
                return Err(CliError::Usage(format!(
                    "rule {other:?}: \"heavy-ball\" or \"adam\" (the rules fit can generate)"
                )))
            }
            (None, Some(t), Some(theta)) => {
                let obs = lossnav::fit::Observations {
                    t,
                    theta: theta
                        .into_iter()
                        .map(|row| {
                            row.into_iter()
                                .map(|v| (!v.is_nan()).then_some(v))
                                .collect()
                        })
                        .collect(),
                    sigma: None,
                };
                obs.check(&c.label)?;
                obs
            }
            _ => {
                return Err(CliError::Usage(
                    "give observations (t and theta) or a rule, not both".into(),
                ))
            }
        };
        if sigma.is_some() {
            obs.sigma = sigma;
        }
        let opts = lossnav::fit::FitOptions {
            starts,
            seed,
            ..lossnav::fit::FitOptions::default()
        };
        lossnav::fit::fit(&c.label, &spec, &obs, &free, &opts)
    })?;
    outcome
        .map(|r| r.doc.to_string())
        .map_err(|e| to_pyerr(py, &e))
}

/// The claims whose id contains `filter` (all when empty), run: a JSON array of rows as
/// `lossnav check --json` prints them.
#[pyfunction]
#[pyo3(signature = (filter=None))]
fn check(py: Python<'_>, filter: Option<String>) -> PyResult<String> {
    let rows = interruptible(py, move || lossnav::cli::check_rows(filter.as_deref()))?;
    rows.map(|r| r.to_string()).map_err(|e| to_pyerr(py, &e))
}

/// A grid over a spec's parameters: rows of any index range, as `lossnav sweep` writes them.
#[pyclass(frozen, module = "lossnav._lossnav")]
struct Grid(Arc<SweepGrid>);

#[pymethods]
impl Grid {
    /// Checks the axes (name, values) against the spec.
    #[new]
    fn new(
        py: Python<'_>,
        spec: &str,
        label: &str,
        axes: Vec<(String, Vec<f64>)>,
        tol: f64,
    ) -> PyResult<Self> {
        let s = parse_spec(py, label, spec)?;
        let axes: Vec<commands::Axis> = axes
            .into_iter()
            .map(|(name, values)| lossnav::cli::parse_axis_parts(&name, values))
            .collect::<Result<_, _>>()
            .map_err(|e| to_pyerr(py, &e))?;
        let label = label.to_string();
        let grid = interruptible(py, move || SweepGrid::new(&label, &s, axes, tol))?
            .map_err(|e| to_pyerr(py, &e))?;
        Ok(Self(Arc::new(grid)))
    }

    /// The number of grid points.
    fn __len__(&self) -> usize {
        self.0.len()
    }

    /// The rows of the points `start..stop` as JSON lines, solved by `jobs` threads (all
    /// cores when None), in order; `progress(done, total)` is called as points finish.
    #[pyo3(signature = (start, stop, jobs=None, progress=None))]
    fn rows(
        &self,
        py: Python<'_>,
        start: usize,
        stop: usize,
        jobs: Option<usize>,
        progress: Option<Bound<'_, PyAny>>,
    ) -> PyResult<String> {
        let grid = self.0.clone();
        let count = Count::default();
        count
            .total
            .store(stop.saturating_sub(start), Ordering::Relaxed);
        let done = count.done.clone();
        let report = progress.as_ref().map(|callback| Report {
            count: count.clone(),
            callback,
        });
        let rows = interruptible_with(
            py,
            move || {
                grid.rows(start..stop, jobs, &|| {
                    done.fetch_add(1, Ordering::Relaxed);
                })
            },
            report.as_ref(),
        )?
        .map_err(|e| to_pyerr(py, &e))?;
        let mut text = String::new();
        for row in rows {
            text.push_str(&serde_json::to_string(&row).expect("JSON values serialise"));
            text.push('\n');
        }
        Ok(text)
    }
}

/// The extension module.
#[pymodule]
fn _lossnav(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(solve, m)?)?;
    m.add_function(wrap_pyfunction!(rule, m)?)?;
    m.add_function(wrap_pyfunction!(schedule, m)?)?;
    m.add_function(wrap_pyfunction!(figures, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(escape, m)?)?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(check, m)?)?;
    m.add_function(wrap_pyfunction!(_shutdown, m)?)?;
    m.add_class::<Compiled>()?;
    m.add_class::<Solved>()?;
    m.add_class::<Grid>()?;
    Ok(())
}
