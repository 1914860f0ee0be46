#!/usr/bin/env python3
"""lossnav's direct method against scipy's L-BFGS-B on the same discretised problem.

An optional side-by-side timing, not part of the tests. The instance is the one of
`examples/direct_large.rs`: `LowRankCase::new(D, 10, 0.5, 3.0)` of `src/testbed.rs`, i.e.
the loss L(θ) = ½(θ-μ)ᵀ(diag(c) + UUᵀ)(θ-μ) with U of rank 10, running cost
ℓ = ½|θ̇|² + L(θ) (identity metric, no drift, η = k = 1), discount γ = 0.5, horizon T = 3,
θ(0) = θ0 and θ(T) = μ fixed. It is regenerated here bit for bit (the same LCG and order of
draws), and discretised as `solvers/src/direct/mod.rs` does: a C¹ cubic Hermite spline on N
uniform intervals with the nodal values θ_i and scaled velocities w_i = v_i·h as unknowns
(θ_0 and θ_N fixed), Σ_i ∫ e^{-γt} ℓ dt by three-point Gauss–Legendre on every interval, the
straight line from θ0 to μ as the starting path.

By default L-BFGS-B sees the same preconditioned variables as lossnav's L-BFGS, z = Cᵀu per
coordinate (CCᵀ the Cholesky factorisation of the kinetic stiffness ∫θ̇²dt of one coordinate,
u its unknowns), so the comparison is algorithm for algorithm on the same function.
`--no-precondition` hands it the raw unknowns u instead (far more iterations: the
conditioning then grows like N²). Either way both runs stop at lossnav's test, which is
measured in z: ‖∂J/∂z‖₂ ≤ 10⁻⁸·√n, n = 2N·D unknowns (scipy's own `gtol`/`ftol` tests are
switched off, the test is applied in the callback after each iteration).

Each of R repetitions runs, interleaved, `target/release/examples/direct_large D N` and this
script in a child process, both under `/usr/bin/time -v` so that wall time and peak resident
memory are measured the same way. "wall" is the whole process (instance generation, start-up
and, for lossnav, the Lanczos closed form, for scipy the Python and scipy imports); "solve" is
the minimisation alone (lossnav's own timing, which at D ≤ 500 includes its error estimate;
for scipy the `minimize` call). The relative cost error is against lossnav's Lanczos closed
form δᵀF(H)δ, read from its output. Both run on one thread (lossnav's direct method is
single-threaded; BLAS is pinned to one thread here). The machine's load average is printed
with the table: timings taken beside other work are not comparable with quiet ones.

Reproduce (from the repository root):

    cargo build --release --example direct_large
    python3 benches/peers.py --dims 10000 --reps 3            # the comparison
    python3 benches/peers.py --check                          # checks of this script

Needs numpy and scipy (`pip install numpy scipy`).
"""

import os

# Before numpy is imported: one BLAS thread, as lossnav's direct method uses one thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.linalg import cholesky_banded, lapack
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "target" / "release" / "examples" / "direct_large"

RANK, GAMMA, T_END = 10, 0.5, 3.0
GRADIENT_TOL = 1e-8  # lossnav's `Direct::gradient_tol` (default)
MAX_ITERATIONS = 10_000  # lossnav's `Direct::max_iterations` (default)

# Three-point Gauss–Legendre on [0, 1], as in solvers/src/direct/mod.rs.
GAUSS_X = (0.5 - 0.3872983346207417, 0.5, 0.5 + 0.3872983346207417)
GAUSS_W = (5.0 / 18.0, 8.0 / 18.0, 5.0 / 18.0)


def hermite_basis(x):
    """Values (h00, h10, h01, h11) of the cubic Hermite basis at x ∈ [0, 1]."""
    return (2 * x**3 - 3 * x**2 + 1, x**3 - 2 * x**2 + x, -2 * x**3 + 3 * x**2, x**3 - x**2)


def hermite_basis_derivative(x):
    """Their derivatives with respect to x."""
    return (6 * x**2 - 6 * x, 3 * x**2 - 4 * x + 1, -6 * x**2 + 6 * x, 3 * x**2 - 2 * x)


# ---------------------------------------------------------------------------------------------
# The instance


def uniform(seed):
    """`lossnav::testbed::uniform`: a 64-bit LCG (wrapping arithmetic), values in [-1, 1]."""
    state = seed

    def draw():
        nonlocal state
        state = (state * 6364136223846793005 + 1442695040888963407) & 0xFFFF_FFFF_FFFF_FFFF
        # Exact: a 53-bit integer over 2^53, as `(s >> 11) as f64 / (1u64 << 53) as f64`.
        return ((state >> 11) / float(1 << 53)) * 2.0 - 1.0

    return draw


def low_rank_case(d, rank=RANK):
    """`LowRankCase::new(d, rank, ..)`: (diag, U, μ, θ0), drawn in the same order.

    nalgebra's `from_fn` fills column by column, so U is drawn column-major.
    """
    r = uniform(7)
    diag = np.array([1.0 + 0.5 * r() for _ in range(d)])
    sqrt_d = math.sqrt(d)
    u = np.empty((d, rank))
    for j in range(rank):
        for i in range(d):
            u[i, j] = r() / sqrt_d
    mu = np.array([0.5 * r() for _ in range(d)])
    theta0 = np.array([r() for _ in range(d)])
    return diag, u, mu, theta0


def fixed_end_cost(h, gamma, t_end):
    """`lossnav::rules::krylov::fixed_end_cost` with η = k = 1: the optimal cost per unit δ²
    of the scalar problem with curvature h."""
    s = np.sqrt(gamma * gamma / 4.0 + h)
    l1, l2 = gamma / 2.0 + s, gamma / 2.0 - s
    e = np.exp(-2.0 * s * t_end)
    return -(l2 - l1 * e) / (2.0 * (1.0 - e))


def dense_closed_form(diag, u, mu, theta0):
    """δᵀF(H)δ by a dense eigendecomposition of H (small D only)."""
    lam, q = np.linalg.eigh(np.diag(diag) + u @ u.T)
    coef = q.T @ (theta0 - mu)
    return float(np.sum(coef**2 * fixed_end_cost(lam, GAMMA, T_END)))


# ---------------------------------------------------------------------------------------------
# The discretised objective


class Discretised:
    """J_h over the free unknowns of `solvers/src/direct/mod.rs`, with its exact gradient.

    Per coordinate the unknowns u are, in lossnav's order, w_0, θ_1, w_1, …, θ_{N-1}, w_{N-1},
    w_N (m = 2N of them); the parameter vector is coordinate-major, x[k·m + a], also as in
    lossnav. Internally the path is held as arrays of shape (D, N+1) (node index last).
    """

    def __init__(self, diag, u, mu, theta0, intervals, precondition=True):
        self.diag, self.u, self.mu, self.theta0 = diag, u, mu, theta0
        self.d, self.n = len(mu), intervals
        self.m = 2 * intervals
        self.precondition = precondition
        self.h = T_END / intervals
        t = T_END * np.arange(intervals + 1) / intervals
        # Per Gauss point: quadrature weight times discount on every interval, and the basis.
        self.points = [
            (
                gw * self.h * np.exp(-GAMMA * (t[:-1] + gx * self.h)),
                hermite_basis(gx),
                hermite_basis_derivative(gx),
            )
            for gx, gw in zip(GAUSS_X, GAUSS_W)
        ]
        self.factor = self._kinetic_factor()
        self.seconds = 0.0  # spent in `value_and_gradient`

    def _kinetic_factor(self):
        """Lower band (LAPACK layout) of C, CCᵀ = ∫θ̇²dt over one coordinate's unknowns,
        assembled with the objective's Gauss rule (`kinetic_factor` in direct.rs)."""
        n, h = self.n, self.h
        # Dense over [θ_0, w_0, θ_1, w_1, …, θ_N, w_N], then restricted to the free unknowns.
        full = np.zeros((2 * n + 2, 2 * n + 2))
        for gx, gw in zip(GAUSS_X, GAUSS_W):
            db = hermite_basis_derivative(gx)
            c = np.array(db) / h  # ∂θ̇/∂(θ_i, w_i, θ_{i+1}, w_{i+1})
            local = gw * h * np.outer(c, c)
            for i in range(n):
                full[2 * i : 2 * i + 4, 2 * i : 2 * i + 4] += local
        free = np.r_[1 : 2 * n, 2 * n + 1]
        stiffness = full[np.ix_(free, free)]
        band = np.zeros((4, self.m))
        for k in range(4):
            band[k, : self.m - k] = np.diagonal(stiffness, -k)
        return cholesky_banded(band, lower=True)

    def _solve(self, rows, trans):
        """C⁻¹ (trans 'N') or C⁻ᵀ (trans 'T') applied to every coordinate's block; `rows` has
        shape (D, m), so its transpose is the (m, D) Fortran-ordered right-hand side LAPACK
        wants, without a copy."""
        out, info = lapack.dtbtrs(self.factor, rows.T, uplo="L", trans=trans, overwrite_b=1)
        assert info == 0, info
        return out.T

    def unknowns_to_path(self, u):
        """Nodal θ and w (each (D, N+1)) from the unknowns u (D, m)."""
        n = self.n
        theta = np.empty((self.d, n + 1))
        theta[:, 0], theta[:, n] = self.theta0, self.mu
        theta[:, 1:n] = u[:, 1 : 2 * n - 1 : 2]
        w = np.empty((self.d, n + 1))
        w[:, :n] = u[:, 0 : 2 * n : 2]
        w[:, n] = u[:, 2 * n - 1]
        return theta, w

    def initial(self):
        """The straight line from θ0 to μ, as a parameter vector."""
        n = self.n
        slope = (self.mu - self.theta0) / T_END
        t = T_END * np.arange(n + 1) / n
        theta = self.theta0[:, None] + slope[:, None] * t[None, :]
        u = np.empty((self.d, self.m))
        u[:, 1 : 2 * n - 1 : 2] = theta[:, 1:n]
        u[:, 0 : 2 * n : 2] = (slope * self.h)[:, None]
        u[:, 2 * n - 1] = slope * self.h
        if self.precondition:
            # z = Cᵀu: (Cᵀu)_j = Σ_k C[j+k, j] u_{j+k}, with C[j+k, j] = factor[k, j].
            z = np.zeros_like(u)
            for k in range(4):
                z[:, : self.m - k] += self.factor[k, : self.m - k] * u[:, k:]
            u = z
        return u.ravel()

    def hess(self, e):
        """(diag(c) + UUᵀ) e for the columns of e (D, ·)."""
        return self.diag[:, None] * e + self.u @ (self.u.T @ e)

    def cost_and_gradient_u(self, u):
        """J_h and ∂J_h/∂u for unknowns u of shape (D, m)."""
        theta, w = self.unknowns_to_path(u)
        h = self.h
        g_theta = np.zeros_like(theta)
        g_w = np.zeros_like(w)
        y0, w0, y1, w1 = theta[:, :-1], w[:, :-1], theta[:, 1:], w[:, 1:]  # interval ends
        cost = 0.0
        for weight, b, db in self.points:
            # θ and θ̇ at this Gauss point of every interval (h·v = w).
            th = b[0] * y0 + b[1] * w0 + b[2] * y1 + b[3] * w1
            thd = (db[0] * y0 + db[1] * w0 + db[2] * y1 + db[3] * w1) / h
            e = th - self.mu[:, None]
            l_th = self.hess(e) * weight  # weighted ∂ℓ/∂θ = H(θ-μ)
            l_thd = thd * weight  # weighted ∂ℓ/∂θ̇ = θ̇
            cost += 0.5 * (np.vdot(e, l_th) + np.vdot(thd, l_thd))
            l_thd /= h  # ∂θ̇/∂(θ_i, w_i, …) = db/h
            g_theta[:, :-1] += b[0] * l_th + db[0] * l_thd
            g_w[:, :-1] += b[1] * l_th + db[1] * l_thd
            g_theta[:, 1:] += b[2] * l_th + db[2] * l_thd
            g_w[:, 1:] += b[3] * l_th + db[3] * l_thd
        n = self.n
        g_u = np.empty_like(u)
        g_u[:, 1 : 2 * n - 1 : 2] = g_theta[:, 1:n]
        g_u[:, 0 : 2 * n : 2] = g_w[:, :n]
        g_u[:, 2 * n - 1] = g_w[:, n]
        return float(cost), g_u

    def value_and_gradient(self, x):
        """J_h and its gradient in the optimiser's variables; also records ‖∂J/∂z‖₂, the
        quantity lossnav's stopping test uses, in `last`."""
        start = time.perf_counter()
        x = x.reshape(self.d, self.m)
        u = self._solve(x.copy(), "T") if self.precondition else x
        cost, g_u = self.cost_and_gradient_u(u)
        # Without preconditioning this solve serves the stopping test only (and is timed with
        # the objective).
        g_z = self._solve(g_u if self.precondition else g_u.copy(), "N")
        self.last = (cost, float(np.linalg.norm(g_z)))
        grad = g_z if self.precondition else g_u
        self.seconds += time.perf_counter() - start
        return cost, grad.ravel()


def minimise(d, intervals, memory, precondition):
    """Builds the instance and minimises it with L-BFGS-B: cost, iterations and timings."""
    problem = Discretised(*low_rank_case(d), intervals, precondition)
    tol = GRADIENT_TOL * math.sqrt(d * problem.m)

    def stop(intermediate_result):
        # L-BFGS-B evaluates the accepted point last, so `last` belongs to this iterate.
        assert problem.last[0] == intermediate_result.fun
        if problem.last[1] <= tol:
            raise StopIteration

    x0 = problem.initial()
    start = time.perf_counter()
    result = minimize(
        problem.value_and_gradient,
        x0,
        jac=True,
        method="L-BFGS-B",
        callback=stop,
        options=dict(maxcor=memory, gtol=0.0, ftol=0.0, maxiter=MAX_ITERATIONS,
                     maxfun=10 * MAX_ITERATIONS),
    )
    seconds = time.perf_counter() - start
    return {
        "cost": float(result.fun),
        "iterations": int(result.nit),
        "evaluations": int(result.nfev),
        "gradient_norm": problem.last[1],
        "converged": problem.last[1] <= tol,
        "message": str(result.message),
        "solve_seconds": seconds,
        "objective_seconds": problem.seconds,
    }


# ---------------------------------------------------------------------------------------------
# Timing harness


def timed(command, env=None):
    """Runs `command` under `/usr/bin/time -v`: its stdout, wall seconds, peak RSS (MB), CPU %."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        done = subprocess.run(
            ["/usr/bin/time", "-v", "-o", report.name, *map(str, command)],
            capture_output=True, text=True, env=env,
        )
        if done.returncode != 0:
            sys.exit(f"{command[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        fields = dict(
            line.strip().rsplit(": ", 1) for line in report.read().splitlines() if ": " in line
        )
    clock = [float(v) for v in fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")]
    wall = sum(v * 60**i for i, v in enumerate(reversed(clock)))
    rss = int(fields["Maximum resident set size (kbytes)"]) / 1024
    cpu = float(fields["Percent of CPU this job got"].rstrip("%"))
    return done.stdout, wall, rss, cpu


LOSSNAV_LINE = re.compile(
    r"D = (?P<d>\d+), N = (?P<n>\d+): (?P<time>[\d.]+)(?P<unit>ns|µs|us|ms|s), "
    r"(?P<iterations>\d+) L-BFGS iterations, .*cost (?P<cost>\S+) vs closed form "
    r"(?P<exact>\S+) \(relative error"
)
UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def run_lossnav(binary, d, intervals, memory):
    env = dict(os.environ, MEM=str(memory))
    out, wall, rss, cpu = timed([binary, d, intervals], env)
    found = LOSSNAV_LINE.search(out)
    if not found:
        sys.exit(f"unexpected output from {binary}:\n{out}")
    return {
        "wall": wall, "rss": rss, "cpu": cpu,
        "solve": float(found["time"]) * UNITS[found["unit"]],
        "iterations": int(found["iterations"]),
        "cost": float(found["cost"]),
        "exact": float(found["exact"]),
    }


def run_scipy(d, intervals, memory, precondition):
    command = [sys.executable, __file__, "--child", d, intervals, memory, int(precondition)]
    out, wall, rss, cpu = timed(command)
    child = json.loads(out)
    if not child["converged"]:
        sys.exit(f"L-BFGS-B stopped before the tolerance at D = {d}: {child}")
    return {"wall": wall, "rss": rss, "cpu": cpu, "solve": child["solve_seconds"], **child}


def compare(binary, dims, intervals, reps, memory, precondition):
    label = "scipy L-BFGS-B" + ("" if precondition else " (raw u)")
    rows = []
    for d in dims:
        runs = {"lossnav": [], label: []}
        for _ in range(reps):  # interleaved, so slow drifts of the machine hit both alike
            runs["lossnav"].append(run_lossnav(binary, d, intervals, memory))
            runs[label].append(run_scipy(d, intervals, memory, precondition))
        exact = runs["lossnav"][0]["exact"]
        summary = {}
        for tool, results in runs.items():
            summary[tool] = {
                key: statistics.median(r[key] for r in results)
                for key in ("wall", "solve", "rss", "cpu")
            }
            last = results[-1]
            summary[tool].update(iterations=last["iterations"], cost=last["cost"],
                                 error=abs(last["cost"] - exact) / exact)
        rows.append((d, summary, runs[label][-1]))
    header = (f"{'D':>7}  {'tool':<24}{'wall s':>8}{'solve s':>9}{'peak RSS MB':>13}"
              f"{'CPU %':>7}{'iterations':>12}{'rel. cost error':>17}")
    print(f"N = {intervals}, L-BFGS memory {memory}, medians of {reps} interleaved runs; "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print(header)
    print("-" * len(header))
    for d, summary, child in rows:
        for tool, s in summary.items():
            print(f"{d:>7}  {tool:<24}{s['wall']:>8.2f}{s['solve']:>9.2f}{s['rss']:>13.0f}"
                  f"{s['cpu']:>7.0f}{s['iterations']:>12}{s['error']:>17.1e}")
        ours, theirs = summary["lossnav"], summary[label]
        print(f"{d:>7}  {'ratio scipy/lossnav':<24}{theirs['wall'] / ours['wall']:>8.2f}"
              f"{theirs['solve'] / ours['solve']:>9.2f}{theirs['rss'] / ours['rss']:>13.2f}"
              f"{'':>7}{theirs['iterations'] / ours['iterations']:>12.2f}")
        print(f"{'':>9}scipy: {child['evaluations']} evaluations, "
              f"{child['objective_seconds'] / child['solve_seconds']:.0%} of its solve time in "
              f"the numpy objective; discrete costs differ by "
              f"{abs(theirs['cost'] - ours['cost']) / ours['cost']:.1e} (relative)")


# ---------------------------------------------------------------------------------------------
# Checks of this script's objective, independent of lossnav


def check():
    d, intervals = 50, 20
    case = low_rank_case(d)
    problem = Discretised(*case, intervals, precondition=True)
    rng = np.random.default_rng(0)
    x = problem.initial() + 0.1 * rng.standard_normal(d * problem.m)
    _, grad = problem.value_and_gradient(x)
    step = 1e-5
    fd = np.empty_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = step
        fd[i] = (problem.value_and_gradient(x + e)[0] - problem.value_and_gradient(x - e)[0]) / (
            2 * step)
    print(f"gradient vs central differences (D = {d}, N = {intervals}, all {len(x)} unknowns, "
          f"preconditioned variables): max |error| {np.max(np.abs(fd - grad)):.1e}, "
          f"relative {np.linalg.norm(fd - grad) / np.linalg.norm(grad):.1e}")
    raw = Discretised(*case, intervals, precondition=False)
    u = raw.initial() + 0.1 * rng.standard_normal(d * raw.m)
    _, g_u = raw.value_and_gradient(u)
    direction = rng.standard_normal(len(u))
    slope = (raw.value_and_gradient(u + step * direction)[0]
             - raw.value_and_gradient(u - step * direction)[0]) / (2 * step)
    print(f"raw-variable gradient, directional central difference: relative error "
          f"{abs(slope - g_u @ direction) / abs(slope):.1e}")
    exact = dense_closed_form(*case)
    print(f"dense closed form δᵀF(H)δ (D = {d}): {exact:.15g}")
    errors = []
    for n in (10, 20, 40):
        for precondition in (True, False):
            out = minimise(d, n, memory=10, precondition=precondition)
            error = abs(out["cost"] - exact) / exact
            print(f"  N = {n:>2}, {'preconditioned' if precondition else 'raw u':<14}: "
                  f"{out['iterations']:>5} iterations, cost {out['cost']:.15g}, "
                  f"relative error {error:.2e}")
            if precondition:
                errors.append(error)
    print("  error ratios on halving h: "
          + ", ".join(f"{a / b:.1f}" for a, b in zip(errors, errors[1:])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[10_000], metavar="D")
    parser.add_argument("--intervals", type=int, default=200, metavar="N")
    parser.add_argument("--reps", type=int, default=3, metavar="R")
    parser.add_argument("--memory", type=int, default=10, help="L-BFGS memory (both tools)")
    parser.add_argument("--no-precondition", action="store_true",
                        help="give L-BFGS-B the raw unknowns instead of lossnav's z = Cᵀu")
    parser.add_argument("--binary", type=Path, default=BINARY)
    parser.add_argument("--check", action="store_true",
                        help="check this script's objective (gradient, closed form) and exit")
    parser.add_argument("--child", type=int, nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        d, intervals, memory, precondition = args.child
        print(json.dumps(minimise(d, intervals, memory, bool(precondition))))
    elif args.check:
        check()
    else:
        if not args.binary.is_file():
            sys.exit(f"{args.binary} not found: build it first with\n"
                     f"    cargo build --release --example direct_large")
        compare(args.binary, args.dims, args.intervals, args.reps, args.memory,
                not args.no_precondition)


if __name__ == "__main__":
    main()
