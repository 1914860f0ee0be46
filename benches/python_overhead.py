"""Python against Rust on the Figure 1 problem, side by side in one run.

    cargo build --release --examples && python/test.sh -k nothing   # or any environment with the package
    target/python-venv/bin/python benches/python_overhead.py

Rust: `certificate_cost` (the solve with its check, and the search, in-process). Python:
`lossnav.solve` on the same problem (local and search), the same solves with the loss as a
numpy callable (values, gradients, Hessians on batches), and the direct method.
Medians of repeated runs after one warm-up; wall clock.
"""

from __future__ import annotations

import pathlib
import re
import statistics
import subprocess
import time

import numpy as np

import lossnav

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPEC = ROOT / "problems" / "specs" / "figure1-double-well.json"
A, B, C, D = 1.0, 1.0, 1.0, -0.5


def median_ms(f, n: int) -> float:
    f()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def value_and_grad(theta, t):
    x, y = theta[:, 0], theta[:, 1]
    return A * (x**2 - B) ** 2 + C * y**2 + D * x, np.stack(
        [4 * A * x * (x**2 - B) + D, 2 * C * y], axis=1
    )


def hessian(theta, t):
    h = np.zeros((len(theta), 2, 2))
    h[:, 0, 0] = 12 * A * theta[:, 0] ** 2 - 4 * A * B
    h[:, 1, 1] = 2 * C
    return h


def main() -> None:
    rust = subprocess.run(
        ["cargo", "run", "--release", "-q", "--example", "certificate_cost"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    print(rust.strip())
    expr = lossnav.Problem.from_spec(SPEC)
    call = lossnav.Problem(
        lossnav.CallableLoss(value_and_grad, hessian),
        theta0=[-0.6, 0.55], horizon=4.0, gamma=0.1, end={"fixed": [1.0625, 0.0]},
    )
    rows = [
        ("local bvp solve + check", lambda p: lossnav.solve(p, local=True), 101),
        ("search (lossnav solve default)", lambda p: lossnav.solve(p), 11),
        ("direct method (200 intervals)", lambda p: lossnav.solve(p, "direct"), 11),
    ]
    print(f"{'python':34} {'expression':>12} {'numpy callable':>16} {'ratio':>7}")
    for name, f, n in rows:
        e = median_ms(lambda: f(expr), n)
        c = median_ms(lambda: f(call), max(3, n // 10))
        print(f"{name:34} {e:10.3f} ms {c:14.2f} ms {c / e:6.1f}x")
    m = re.search(r"solve incl. check ([0-9.]+) ms.*search ([0-9.]+) ms", rust)
    if m:
        local = median_ms(lambda: lossnav.solve(expr, local=True), 101)
        search = median_ms(lambda: lossnav.solve(expr), 11)
        print(f"python/rust: local solve {local:.3f}/{m.group(1)} ms = "
              f"{local / float(m.group(1)):.2f}, search {search:.2f}/{m.group(2)} ms = "
              f"{search / float(m.group(2)):.2f}")


if __name__ == "__main__":
    main()
