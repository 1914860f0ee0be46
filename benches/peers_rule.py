#!/usr/bin/env python3
"""`lossnav rule` against numpy/scipy running the same algorithm on the same matrices.

An optional side-by-side timing, not part of the tests. The instance is the one of
docs/benchmarks.md, "Closed-form rule at large D": the loss ½(θ-μ)ᵀH(θ-μ) with a dense H,
tridiagonal plus rank 4 (curvatures 1.06–2.63), a diagonal metric G, no drift, η = k = 1,
γ = 0.5, infinite horizon. It is drawn here from a seeded numpy generator and written as a
spec (the Hessian as a dense `hessian`, every float by its shortest round-trip repr, so both
sides read the same numbers: 5.8 MB at D = 500, 23 MB at D = 1000).

The numpy side (this script in a child process) parses that spec and repeats what
`src/rules/lq.rs` computes, step for step:

1. P: the Hamiltonian matrix Z = [[A, M], [ηkH, γI − Aᵀ]] (M = G⁻¹), its eigendecomposition
   (`numpy.linalg.eig`: LAPACK geev, as faer's `eigen` a Hessenberg–Schur method), the D
   eigenvectors [X; Y] with Re λ < γ/2, P = −Y X⁻¹/η by an LU solve (Xᵀ Pᵀ = −Yᵀ/η),
   symmetrised; the relative Riccati residual.
2. The policy K = A − ηMP and the rates, the eigenvalues of K (`numpy.linalg.eigvals`).
3. The equilibrium: the self-adjoint eigendecomposition of M (its null space, for a singular
   mobility, adds the rows Nᵀθ* = Nᵀθ0), then Z [θ*; p*] = [−b; ηkHμ] by a thin SVD.
4. The cost J* = ℓ*/γ − p*ᵀδ/η + ½δᵀPδ (δ = θ0 − θ*, ℓ* = ½k(θ*−μ)ᵀH(θ*−μ) + p*ᵀMp*/(2η))
   and p0 = p* − ηPδ; then the JSON document `lossnav rule` prints, written to a file.

Each of R repetitions runs, interleaved, `target/release/lossnav rule SPEC` (stdout to a file)
and the child, each with its default threads (faer's rayon pool, OpenBLAS's pool: both cores
here) and with one thread (RAYON_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1), all under
`/usr/bin/time -v`: medians of wall time, peak resident memory and CPU %. "wall" is the
whole process (for numpy the Python and numpy imports too); lossnav reads its spec twice
(`load_problem` and `Spec::from_file`), and `lossnav validate SPEC` (one parse, a short
summary) is timed beside it as an estimate of the parse. The numpy side's phases (parse,
P, rates, equilibrium, output) are timed inside the child. The outputs are compared: P
(max |ΔP| / max |P|), the rates (matched, then max |Δ| / max |rate|), θ*, p*, p0 and the cost.
The machine's load average is printed with the table, and for every run the cores other
processes kept busy meanwhile ("others", from /proc/stat less the run's own CPU time): timings
taken beside other work are not comparable with quiet ones (OpenBLAS's threads, spinning, suffer
most when a core is taken).

Reproduce (from the repository root):

    cargo build --release                                   # target/release/lossnav
    python3 benches/peers_rule.py --check                   # this script's checks, small D
    python3 benches/peers_rule.py --dims 500 1000 --reps 3  # the comparison
    python3 benches/peers_rule.py --perf 1000               # where lossnav's time goes (perf)
    RAYON_NUM_THREADS=1 python3 benches/peers_rule.py --perf 1000   # the same, one thread

`--workdir DIR` keeps the specs, the outputs and perf.data. The comparison at D = 1000 takes
about 4 minutes (four runs of 15–25 s per repetition), `--perf 1000` about one.

Needs numpy and scipy (`pip install numpy scipy`); threadpoolctl (`pip install threadpoolctl`)
is optional, to report the BLAS threads actually in use.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.linalg

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "lossnav"

SEED = 20251202
RANK = 4
GAMMA = 0.5
RANK_WEIGHTS = (1.0, 0.75, 0.5, 0.25)  # eigenvalues of the rank-4 part
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS")


# ---------------------------------------------------------------------------------------------
# The instance


def instance(d, general=False, seed=SEED):
    """The spec (a dict) of the benchmark instance in dimension d.

    H = T + Q diag(w) Qᵀ: T tridiagonal with diagonal 1.5–1.6 and off-diagonals of size
    0.2–0.25 (Gershgorin: spectrum in [1.0, 2.1]), Q four orthonormal random columns, w the
    RANK_WEIGHTS; H is dense, its curvatures 1.06–2.63 at D = 500 and 1000 (the random
    columns are spread over all coordinates, so w lifts only a few outliers above T's 2.1).
    G = diag(g), g log-uniform in [0.5, 2]; μ ~ N(0, ¼), θ0 uniform in [-1, 1]. `general`
    adds what the benchmark leaves out, to test conventions at small D:
    a nonsymmetric affine drift (weight decay plus a rotation) with an offset, η ≠ 1, k ≠ 1.
    """
    rng = np.random.default_rng([seed, d, int(general)])
    main = 1.55 + 0.05 * rng.uniform(-1.0, 1.0, d)
    off = -0.25 * rng.uniform(0.8, 1.0, d - 1)
    q, _ = np.linalg.qr(rng.standard_normal((d, RANK)))
    h = np.diag(main) + np.diag(off, 1) + np.diag(off, -1) + (q * RANK_WEIGHTS) @ q.T
    h = 0.5 * (h + h.T)  # exactly symmetric (lossnav checks symmetry)
    spec = {
        "name": f"peers_rule: tridiagonal plus rank {RANK}, D = {d}"
        + (", with drift" if general else ""),
        "loss": {"quadratic": {"hessian": h.tolist(),
                               "minimum": (0.5 * rng.standard_normal(d)).tolist()}},
        "metric": {"diag": np.exp(rng.uniform(np.log(0.5), np.log(2.0), d)).tolist()},
        "eta": 1.0, "k": 1.0, "gamma": GAMMA,
        "theta0": rng.uniform(-1.0, 1.0, d).tolist(),
        "horizon": "infinite",
        "end": "equilibrium",
    }
    if general:
        s = rng.standard_normal((d, d)) / np.sqrt(d)
        spec["drift"] = {"linear": (-0.2 * np.eye(d) + 0.3 * (s - s.T)).tolist(),
                         "offset": (0.1 * rng.standard_normal(d)).tolist()}
        spec["eta"], spec["k"] = 0.7, 1.3
    return spec


def write_spec(spec, path):
    """Writes the spec; json's float repr is the shortest string that reads back exactly.

    (lossnav's serde_json is built without `float_roundtrip`, whose default parse is documented
    as best effort, possibly one ulp off in rare cases: a 1e-16 effect, far below the
    agreement tested here.)"""
    path.write_text(json.dumps(spec))
    return path.stat().st_size


# ---------------------------------------------------------------------------------------------
# The numpy side: src/rules/lq.rs step for step


def lq_data(spec):
    """`LqData::from_problem` for the spec forms used here: (A, b, M, H, μ, η, k, γ, θ0)."""
    d = len(spec["theta0"])
    quad = spec["loss"]["quadratic"]
    h = np.array(quad["hessian"]) if "hessian" in quad else np.diag(quad["curvatures"])
    mu = np.array(quad["minimum"], dtype=float)
    metric = spec.get("metric", "identity")
    if metric == "identity":
        m = np.eye(d)
    elif "diag" in metric:
        m = np.diag(1.0 / np.array(metric["diag"]))
    elif "matrix" in metric:
        m = np.linalg.inv(np.array(metric["matrix"]))
    else:
        m = np.array(metric["mobility"], dtype=float)
    drift = spec.get("drift")
    a = np.array(drift["linear"], dtype=float) if drift else np.zeros((d, d))
    b = np.array(drift.get("offset", np.zeros(d)), dtype=float) if drift else np.zeros(d)
    if spec.get("horizon") != "infinite":
        raise ValueError('the closed-form rule needs "horizon": "infinite"')
    return dict(a=a, b=b, m=m, h=h, mu=mu, eta=float(spec.get("eta", 1.0)),
                k=float(spec.get("k", 1.0)), gamma=float(spec.get("gamma", 0.0)),
                theta0=np.array(spec["theta0"], dtype=float))


def hamiltonian_matrix(q):
    d = len(q["mu"])
    z = np.empty((2 * d, 2 * d))
    z[:d, :d] = q["a"]
    z[:d, d:] = q["m"]
    z[d:, :d] = q["h"] * (q["eta"] * q["k"])
    z[d:, d:] = np.eye(d) * q["gamma"] - q["a"].T
    return z


def riccati(q):
    """P from the stable eigenvectors of Z, as `LqRule::new`."""
    d = len(q["mu"])
    values, vectors = np.linalg.eig(hamiltonian_matrix(q))
    stable = np.flatnonzero(values.real < q["gamma"] / 2.0)
    if len(stable) != d:
        raise ValueError(f"{len(stable)} of {2 * d} eigenvalues lie left of γ/2 (need {d})")
    x, y = vectors[:d, stable], vectors[d:, stable]
    # Xᵀ Pᵀ = Yᵀ by LU, then P = −(that)ᵀ/η; the real part, symmetrised, as lossnav.
    pt = np.linalg.solve(x.T, y.T)
    if not np.all(np.isfinite(pt)):
        raise ValueError("the stable subspace is not a graph over θ")
    p = -pt.T.real / q["eta"]
    return 0.5 * (p + p.T)


def riccati_residual(q, p):
    d = len(q["mu"])
    shifted = q["a"] - np.eye(d) * (q["gamma"] / 2.0)
    r = shifted.T @ p + p @ shifted - p @ q["m"] @ p * q["eta"] + q["h"] * q["k"]
    return np.linalg.norm(r) / max(np.linalg.norm(q["h"] * q["k"]) + np.linalg.norm(p),
                                   np.finfo(float).tiny)


def equilibrium(q):
    """(θ*, p*) as lq.rs's `equilibrium`: null space of M by eigh, then a column-pivoted QR
    (rank check on |diag R|, least-squares solve)."""
    d = len(q["mu"])
    z = hamiltonian_matrix(q)  # rebuilt, as lossnav does
    values, vectors = np.linalg.eigh(q["m"])
    null = np.flatnonzero(np.abs(values) <= 1e-12 * np.max(np.abs(values)) * d)
    lhs = np.zeros((2 * d + len(null), 2 * d))
    lhs[: 2 * d] = z
    lhs[2 * d:, :d] = vectors[:, null].T
    rhs = np.concatenate([-q["b"], q["h"] @ q["mu"] * (q["eta"] * q["k"]),
                          vectors[:, null].T @ q["theta0"]])
    qq, r, perm = scipy.linalg.qr(lhs, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    if not diag.min() > 1e-12 * diag.max():
        raise ValueError("the equilibrium is not unique (singular equations)")
    sol = np.empty(2 * d)
    sol[perm] = scipy.linalg.solve_triangular(r, qq.T @ rhs)
    return sol[:d], sol[d:]


def rule(q, clock=None):
    """The document `lossnav rule` prints (without "problem"); `clock(name)` marks phases."""
    clock = clock or (lambda name: None)
    p = riccati(q)
    residual = riccati_residual(q, p)
    clock("riccati")
    policy = q["a"] - q["m"] @ p * q["eta"]
    rates = np.linalg.eigvals(policy)
    clock("rates")
    theta_eq, p_eq = equilibrium(q)
    clock("equilibrium")
    delta_eq = theta_eq - q["mu"]
    rest_cost = (q["k"] * 0.5 * delta_eq @ (q["h"] @ delta_eq)
                 + p_eq @ (q["m"] @ p_eq) / (2.0 * q["eta"]))
    delta = q["theta0"] - theta_eq
    rest = rest_cost / q["gamma"] if q["gamma"] > 0.0 else 0.0
    cost = rest - p_eq @ delta / q["eta"] + 0.5 * delta @ (p @ delta)
    return {
        "equilibrium": theta_eq, "p_equilibrium": p_eq, "riccati": p, "policy": policy,
        "rates": np.column_stack([rates.real, rates.imag]), "cost": float(cost),
        "cost_is_relative": q["gamma"] == 0.0,
        "p0": p_eq - p @ delta * q["eta"], "riccati_residual": float(residual),
    }


def blas_threads():
    """The BLAS pool size numpy runs with: from threadpoolctl if installed, else the env."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.environ.get("OPENBLAS_NUM_THREADS", f"default ({os.cpu_count()} cores?)")
    return ", ".join(f"{i['internal_api']} {i.get('version')} {i['num_threads']} threads"
                     for i in threadpool_info() if i["user_api"] == "blas")


def child(spec_path, out_path):
    """The timed numpy run: parse, compute, write; prints its phase timings as JSON."""
    marks = [("start", time.perf_counter())]

    def clock(name):
        marks.append((name, time.perf_counter()))

    with open(spec_path) as f:
        spec = json.load(f)
    q = lq_data(spec)
    clock("parse")
    doc = {"problem": spec.get("name", ""),
           **{k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in rule(q, clock).items()}}
    # "output" covers J* and p0 (negligible), the conversion to lists and the write. One-shot
    # `dumps` (C encoder): `json.dump` to a file would use the pure-Python encoder.
    Path(out_path).write_text(json.dumps(doc))
    clock("output")
    phases = {name: t - t0 for (_, t0), (name, t) in zip(marks, marks[1:])}
    print(json.dumps({"phases": phases, "blas": blas_threads()}))


# ---------------------------------------------------------------------------------------------
# Comparison of two outputs


def rates_error(ours, theirs):
    """Max |Δ| over the best matching of the two spectra (sorting is not enough for complex
    pairs with near-equal real parts), relative to the largest |rate|."""
    from scipy.optimize import linear_sum_assignment

    z = np.asarray(ours) @ [1.0, 1j]
    w = np.asarray(theirs) @ [1.0, 1j]
    cost = np.abs(z[:, None] - w[None, :])
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].max() / np.abs(z).max())


def agreement(ours, theirs):
    """Relative differences of the pieces of two `lossnav rule` documents."""

    def rel(key, scale=0.0):
        a, b = np.asarray(ours[key]), np.asarray(theirs[key])
        return float(np.abs(a - b).max() / max(np.abs(a).max(), scale, np.finfo(float).tiny))

    # Without drift p* is 0 and both sides give rounding noise (1e-15): measure it against the
    # momentum scale of the problem, max |p0|, instead.
    p_scale = float(np.abs(np.asarray(ours["p0"])).max())

    return {
        "P": rel("riccati"), "K": rel("policy"),
        "rates": rates_error(ours["rates"], theirs["rates"]),
        "θ*": rel("equilibrium"), "p*": rel("p_equilibrium", p_scale), "p0": rel("p0"),
        "cost": abs(ours["cost"] - theirs["cost"]) / abs(ours["cost"]),
        "residual": (ours["riccati_residual"], theirs["riccati_residual"]),
    }


def print_agreement(label, agree, cost):
    print(f"  {label}: P {agree['P']:.1e}, K {agree['K']:.1e}, rates {agree['rates']:.1e}, "
          f"θ* {agree['θ*']:.1e}, p* {agree['p*']:.1e} (scale max |p0|), p0 {agree['p0']:.1e}, "
          f"cost {agree['cost']:.1e} of {cost:.12g}; Riccati residuals "
          f"{agree['residual'][0]:.1e} (lossnav) / {agree['residual'][1]:.1e}")


def worst(agree):
    return max(v for k, v in agree.items() if k != "residual")


# ---------------------------------------------------------------------------------------------
# Timing harness


def busy_seconds():
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(command, env, stdout_path=os.devnull):
    """Runs `command` under `/usr/bin/time -v` with its stdout to `stdout_path`: wall s, peak
    RSS MB, CPU %, and "others": the cores other processes kept busy meanwhile (on average).

    The load average is a poor witness here: it counts the benchmark itself. "others" is the
    machine's busy time over the run less the command's own user and system time.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report, \
            open(stdout_path, "w") as out:
        busy = busy_seconds()
        done = subprocess.run(["/usr/bin/time", "-v", "-o", report.name, *map(str, command)],
                              stdout=out, stderr=subprocess.PIPE, text=True, env=env)
        busy = busy_seconds() - busy
        if done.returncode != 0:
            sys.exit(f"{command[0]} failed ({done.returncode}):\n{done.stderr}")
        fields = dict(line.strip().rsplit(": ", 1)
                      for line in report.read().splitlines() if ": " in line)
    clock = [float(v) for v in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
    wall = sum(v * 60**i for i, v in enumerate(reversed(clock)))
    own = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    return {
        "wall": wall,
        "rss": int(fields["Maximum resident set size (kbytes)"]) / 1024,
        "cpu": float(fields["Percent of CPU this job got"].rstrip("%")),
        # /proc/stat counts in 10 ms ticks: too coarse for short runs.
        "others": max(busy - own, 0.0) / wall if wall >= 0.5 else float("nan"),
    }


def environment(threads):
    """The environment of a child: thread variables removed (each library's default), or all
    set to `threads`."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if threads is not None:
        env.update({k: str(threads) for k in THREAD_VARS})
    return env


def run_lossnav(binary, spec, out, threads):
    return timed([binary, "rule", spec], environment(threads), out)


def run_numpy(spec, out, threads):
    report = Path(str(out) + ".timing")
    result = timed([sys.executable, __file__, "--child", spec, out], environment(threads), report)
    child_report = json.loads(report.read_text())
    return {**result, **child_report["phases"], "blas": child_report["blas"]}


CONFIGS = [  # (label, side, threads: None = the library's default)
    ("lossnav", "lossnav", None),
    ("numpy", "numpy", None),
    ("lossnav 1 thread", "lossnav", 1),
    ("numpy 1 thread", "numpy", 1),
]


def compare(binary, dims, reps, workdir, one_thread):
    configs = [c for c in CONFIGS if one_thread or c[2] is None]
    rows = []
    for d in dims:
        start = time.perf_counter()
        spec = workdir / f"rule-{d}.json"
        size = write_spec(instance(d), spec)
        print(f"D = {d}: spec {size / 1e6:.1f} MB written in {time.perf_counter() - start:.1f} s"
              f" ({spec}); load average {os.getloadavg()[0]:.2f}", flush=True)
        runs = {label: [] for label, _, _ in configs}
        runs["lossnav validate"] = []
        for rep in range(reps):  # interleaved, so slow drifts of the machine hit all alike
            runs["lossnav validate"].append(timed([binary, "validate", spec], environment(None)))
            for label, side, threads in configs:
                out = workdir / f"out-{d}-{label.replace(' ', '_')}.json"
                result = (run_lossnav(binary, spec, out, threads) if side == "lossnav"
                          else run_numpy(spec, out, threads))
                result["load"] = os.getloadavg()[0]
                runs[label].append(result)
                print(f"  rep {rep + 1} {label:<17} wall {result['wall']:6.2f} s, "
                      f"{result['rss']:5.0f} MB, CPU {result['cpu']:3.0f} %, others "
                      f"{result['others']:.2f} cores, load {result['load']:.2f}", flush=True)
        # Agreement, on the last outputs (every run of a side computes the same thing).
        outputs = {label: json.loads((workdir / f"out-{d}-{label.replace(' ', '_')}.json")
                                     .read_text()) for label, _, _ in configs}
        reference = outputs["lossnav"]
        print(f"D = {d}: agreement with lossnav (relative to the largest entry):")
        for label in outputs:
            if label != "lossnav":
                print_agreement(label, agreement(reference, outputs[label]), reference["cost"])
        rows.append((d, runs))
    print_table(rows, reps)


def print_table(rows, reps):
    print(f"\nMedians of {reps} interleaved runs; load average (1 min, counting these runs) at "
          f"the end {os.getloadavg()[0]:.2f}, over the runs {describe_loads(rows)}; 'others': "
          f"cores kept busy by other processes during the run, of {os.cpu_count()}")
    header = (f"{'D':>5}  {'tool':<18}{'wall s':>8}{'peak RSS MB':>13}{'CPU %':>7}{'others':>8}"
              f"{'parse s':>9}{'P s':>7}{'rates s':>9}{'equil. s':>10}{'output s':>10}")
    print(header)
    print("-" * len(header))
    blas = set()
    for d, runs in rows:
        med = {label: {key: statistics.median(r[key] for r in results)
                       for key in results[0] if key != "blas"}
               for label, results in runs.items()}
        for label, m in med.items():
            phases = ("".join(f"{m[key]:>{w}.2f}" for key, w in
                              (("parse", 9), ("riccati", 7), ("rates", 9),
                               ("equilibrium", 10), ("output", 10)))
                      if "parse" in m else "")
            print(f"{d:>5}  {label:<18}{m['wall']:>8.2f}{m['rss']:>13.0f}{m['cpu']:>7.0f}"
                  f"{m['others']:>8.2f}{phases}".replace("     nan", "       -"))
        for ours, theirs in (("lossnav", "numpy"), ("lossnav 1 thread", "numpy 1 thread")):
            if ours in med and theirs in med:
                print(f"{d:>5}  {'ratio ' + theirs.split()[0] + '/' + ours.split()[0]:<18}"
                      f"{med[theirs]['wall'] / med[ours]['wall']:>8.2f}"
                      f"{med[theirs]['rss'] / med[ours]['rss']:>13.2f}"
                      f"{'':>15}({'1 thread' if '1' in ours else 'default threads'})")
        blas.update(r["blas"] for label, results in runs.items() for r in results if "blas" in r)
    print("numpy BLAS: " + "; ".join(sorted(blas)))
    print("('lossnav validate' is one parse of the spec plus start-up: lossnav rule parses it "
          "twice. numpy's 'P' includes building Z and the Riccati residual.)")


def describe_loads(rows):
    loads = [r["load"] for _, runs in rows for results in runs.values() for r in results
             if "load" in r]
    return f"{min(loads):.2f}–{max(loads):.2f}"


# ---------------------------------------------------------------------------------------------
# Where lossnav's time goes


# Phases of `lossnav rule`, recognised by a function on a sample's call stack (the first
# pattern that matches any frame wins; inlined frames count, so `thin_svd` is seen).
PHASES = [
    ("parse the spec (read twice)", r"Spec::from_file|load_problem|Spec::from_json|to_problem"),
    ("print the JSON output", r"to_string_pretty|to_vec_pretty|serde_json::ser|to_value<|"
                              r"cli::output::print|^rows|cli::rule::rows"),
    ("eigendecomposition of Z", r"eigen_imp"),
    ("P: LU solve", r"partial_piv_lu|solve_in_place"),
    ("rates: eigenvalues of K", r"eigenvalues"),
    ("equilibrium: column-pivoted QR", r"col_piv_qr|faer::linalg::qr"),
    ("equilibrium: eigh(M)", r"self_adjoint_eigen"),
    ("Riccati residual, K (nalgebra)", r"riccati_residual|nalgebra"),
    ("other in LqRule::new (building Z, copies)", r"lossnav::rules::lq"),
    ("start-up and exit", r"^_dl_|clap|exit|lang_start"),
]
# Inside the eigendecomposition of Z.
EIGEN_PARTS = [
    ("  Hessenberg reduction", r"hessenberg"),
    ("  Schur form (multishift QR)", r"real_schur|multishift|lahqr"),
    ("  eigenvectors, back-transformation", r""),
]


def read_samples(script):
    """(on the main thread?, time, frames leaf first) per sample of
    `perf script -F pid,tid,time,ip,sym`."""
    samples = []
    for block in script.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        head = lines[0].split()
        frames = [line.strip().split(None, 1)[1] if len(line.strip().split(None, 1)) > 1 else "?"
                  for line in lines[1:]]
        pid, tid = head[0].split("/")
        samples.append((pid == tid, float(head[1].rstrip(":")), frames))
    return samples


def classify(frames):
    for name, pattern in PHASES:
        if any(re.search(pattern, f) for f in frames):
            if name == "eigendecomposition of Z":
                return next(part for part, pat in EIGEN_PARTS
                            if any(re.search(pat, f) for f in frames))
            return name
    return None


def profile(binary, d, workdir):
    """Where `lossnav rule`'s time goes at dimension d, by perf: self time by function, and
    CPU time by phase.

    Phases are read off the main thread's stacks. A stack taken in faer's GEMM micro-kernels
    (assembly without unwind tables) stops there, and one on a rayon worker thread does not
    reach the caller that started the parallel work: such samples are given the phase of the
    nearest main-thread sample in time that has one (the phases run one after another, so
    this is right but at their boundaries).
    The thread variables of this script's environment apply: `RAYON_NUM_THREADS=1` profiles
    the single-threaded run.
    """
    spec = workdir / f"rule-{d}.json"
    write_spec(instance(d), spec)
    data = workdir / "perf.data"
    # DWARF stacks are 64 KB a sample: a low rate at large D keeps perf.data at ~100–200 MB.
    freq = "99" if d >= 800 else "499"
    subprocess.run(["perf", "record", "-q", "-F", freq, "--call-graph", "dwarf,65528",
                    "-o", data, "--", binary, "rule", spec], check=True,
                   stdout=subprocess.DEVNULL)
    report = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--stdio", "--sort", "sym", "-g", "none",
         "--percent-limit", "0"], capture_output=True, text=True, check=True).stdout
    line = re.compile(r"^\s*([\d.]+)%\s+\[[.k]\]\s+(.*)$")
    entries = [(float(m[1]), m[2].strip()) for m in map(line.match, report.splitlines()) if m]
    threads = os.environ.get("RAYON_NUM_THREADS", "default")
    print(f"perf: lossnav rule at D = {d} (RAYON_NUM_THREADS {threads}), self time by "
          f"function, top 20:")
    for share, sym in entries[:20]:
        print(f"  {share:6.2f}%  {sym[:120]}")
    # Inlined frames are needed to see e.g. `thin_svd`; resolving them takes perf a while.
    script = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,time,ip,sym"],
                            capture_output=True, text=True, check=True).stdout
    samples = read_samples(script)
    phases = [classify(frames) if main else None for main, _, frames in samples]
    known = [(t, ph) for (_, t, _), ph in zip(samples, phases) if ph is not None]
    times = np.array([t for t, _ in known])
    counts = {}
    inferred = 0
    for (_, t, _), ph in zip(samples, phases):
        if ph is None:
            ph = known[int(np.abs(times - t).argmin())][1] if known else "unknown"
            inferred += 1
        counts[ph] = counts.get(ph, 0) + 1
    total = len(samples)
    span = max(t for _, t, _ in samples) - min(t for _, t, _ in samples)
    print(f"CPU time by phase ({total} samples at {freq} Hz over {span:.1f} s, "
          f"{inferred / total:.0%} placed by time):")
    order = [name for name, _ in PHASES[:2]] + [part for part, _ in EIGEN_PARTS] + \
        [name for name, _ in PHASES[3:]] + ["unknown"]
    for name in order:
        if name in counts:
            print(f"  {100 * counts[name] / total:6.2f}%  {name}")


# ---------------------------------------------------------------------------------------------
# Checks of this script, and agreement at small D


def check_closed_forms():
    """The numpy side against independent solutions: scipy's CARE solver, the diagonal closed
    form of docs/theory.md §4, and J* as the integral of the running cost along the policy."""
    from scipy.integrate import quad_vec
    from scipy.linalg import expm, solve_continuous_are

    for d, general in ((6, True), (50, True), (50, False)):
        q = lq_data(instance(d, general))
        out = rule(q)
        p = out["riccati"]
        care = solve_continuous_are(q["a"] - q["gamma"] / 2 * np.eye(d), np.eye(d),
                                    q["k"] * q["h"], np.linalg.inv(q["eta"] * q["m"]))
        theta_eq, p_eq, policy = out["equilibrium"], out["p_equilibrium"], out["policy"]
        z_res = (np.abs(hamiltonian_matrix(q) @ np.r_[theta_eq, p_eq]
                        - np.r_[-q["b"], q["eta"] * q["k"] * q["h"] @ q["mu"]]).max())
        g = np.linalg.inv(q["m"])

        def running(t):  # e^{-γt} ℓ along θ(t) = θ* + e^{Kt}δ
            e = expm(policy * t) @ (q["theta0"] - theta_eq)
            theta, theta_dot = theta_eq + e, policy @ e
            u = theta_dot - (q["a"] @ theta + q["b"])
            return np.exp(-q["gamma"] * t) * (u @ g @ u / (2 * q["eta"]) + q["k"] * 0.5
                                             * (theta - q["mu"]) @ q["h"] @ (theta - q["mu"]))

        t_end = 80.0  # the tail beyond rests at θ*: ∫ e^{-γt} ℓ* dt in closed form
        rest = q["k"] * 0.5 * (theta_eq - q["mu"]) @ q["h"] @ (theta_eq - q["mu"]) \
            + p_eq @ q["m"] @ p_eq / (2 * q["eta"])
        integral = quad_vec(running, 0.0, t_end, epsabs=1e-13, epsrel=1e-12)[0] \
            + rest * np.exp(-q["gamma"] * t_end) / q["gamma"]
        print(f"  D = {d:>2}{', drift, η = 0.7, k = 1.3' if general else ', benchmark form':<24}: "
              f"P vs scipy CARE {np.abs(p - care).max() / np.abs(care).max():.1e}, "
              f"Riccati residual {out['riccati_residual']:.1e}, equilibrium residual "
              f"{z_res:.1e}, max Re rate {out['rates'][:, 0].max():.3f}, "
              f"J* {out['cost']:.12g} vs ∫e^(-γt)ℓ dt {integral:.12g} "
              f"({abs(out['cost'] - integral) / abs(integral):.1e})")
    # Diagonal case: J* = Σ g r δ²/(2η), r = sqrt(γ²/4 + ηkh/g) − γ/2.
    d = 8
    rng = np.random.default_rng(1)
    h, gm, mu, th0 = (rng.uniform(0.5, 3, d), rng.uniform(0.5, 2, d), rng.standard_normal(d),
                      rng.standard_normal(d))
    spec = {"loss": {"quadratic": {"curvatures": h.tolist(), "minimum": mu.tolist()}},
            "metric": {"diag": gm.tolist()}, "eta": 0.8, "k": 1.5, "gamma": GAMMA,
            "theta0": th0.tolist(), "horizon": "infinite"}
    out = rule(lq_data(spec))
    r = np.sqrt(GAMMA**2 / 4 + 0.8 * 1.5 * h / gm) - GAMMA / 2
    exact = float(np.sum(gm * r * (th0 - mu) ** 2) / (2 * 0.8))
    print(f"  diagonal D = {d}: J* {out['cost']:.15g} vs Σ g r δ²/(2η) {exact:.15g} "
          f"({abs(out['cost'] - exact) / exact:.1e}); rates vs −r "
          f"{np.abs(np.sort(out['rates'][:, 0]) - np.sort(-r)).max():.1e}")


def check(binary, workdir):
    print("numpy side against independent solutions:")
    check_closed_forms()
    if not binary.is_file():
        sys.exit(f"{binary} not found: build it with `cargo build --release` for the agreement "
                 f"checks")
    print("lossnav rule against the numpy side:")
    failures = 0
    shipped = [ROOT / "problems" / "specs" / name for name in (
        "figure3-isotropic.json", "figure3-anisotropic-metric.json", "figure3-rotation.json",
        "figure3-rotation-discounted.json", "figure3-weight-decay.json",
        "figure3-weight-decay-discounted.json", "partial-controllability.json")]
    cases = [(path.name, path) for path in shipped if path.is_file()]
    for d in (50, 200):
        for general in (False, True):
            path = workdir / f"check-{d}-{int(general)}.json"
            write_spec(instance(d, general), path)
            cases.append((f"D = {d}{' with drift, η, k' if general else ''}", path))
    for label, path in cases:
        out = workdir / "check-out.json"
        run_lossnav(binary, path, out, None)
        ours = json.loads(out.read_text())
        theirs = rule(lq_data(json.loads(path.read_text())))
        agree = agreement(ours, {k: v.tolist() if isinstance(v, np.ndarray) else v
                                 for k, v in theirs.items()})
        print_agreement(label, agree, ours["cost"])
        failures += worst(agree) > 1e-10
    print("all agree to 1e-10" if not failures else f"{failures} case(s) differ by more than 1e-10")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[500, 1000], metavar="D")
    parser.add_argument("--reps", type=int, default=3, metavar="R")
    parser.add_argument("--no-single-thread", action="store_true",
                        help="only the default-threads runs (not RAYON/OPENBLAS_NUM_THREADS=1)")
    parser.add_argument("--binary", type=Path, default=BINARY)
    parser.add_argument("--workdir", type=Path,
                        help="keep specs and outputs here (default: a temporary directory)")
    parser.add_argument("--check", action="store_true",
                        help="check the numpy side and its agreement with lossnav at small D")
    parser.add_argument("--perf", type=int, metavar="D",
                        help="profile `lossnav rule` at dimension D with perf and exit")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="peers_rule-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if args.check:
            check(args.binary, workdir)
            return
        if not args.binary.is_file():
            sys.exit(f"{args.binary} not found: build it first with\n    cargo build --release")
        if args.perf:
            profile(args.binary, args.perf, workdir)
        else:
            compare(args.binary, args.dims, args.reps, workdir, not args.no_single_thread)


if __name__ == "__main__":
    main()
