"""A sweep of the Figure 1 problem on Dask: one worker against two.

    target/python-venv/bin/python benches/python_dask.py [POINTS]   # default 200

LocalCluster with one thread per worker process, default chunks (about four per worker),
after a warm-up sweep on each cluster; also the in-process sweep on one and on all threads.
"""

from __future__ import annotations

import pathlib
import sys
import time

import lossnav
from dask.distributed import Client, LocalCluster

SPEC = pathlib.Path(__file__).resolve().parents[1] / "problems" / "specs" / \
    "figure1-double-well-infinite.json"
POINTS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
GRID = {"gamma": [0.05 + 0.8 * i / (POINTS - 1) for i in range(POINTS)]}


def timed(f) -> float:
    f()
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main() -> None:
    print(f"{POINTS} points")
    for jobs in (1, None):
        s = timed(lambda: lossnav.sweep(SPEC, GRID, jobs=jobs, as_frame=False))
        print(f"in-process, jobs={jobs or 'all'}: {s:.2f} s")
    results = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            results[workers] = timed(
                lambda: lossnav.sweep(SPEC, GRID, client=client, as_frame=False)
            )
        print(f"dask, {workers} worker(s): {results[workers]:.2f} s")
    print(f"speedup 2 vs 1 workers: {results[1] / results[2]:.2f}x")


if __name__ == "__main__":
    main()
