"""Sweeps: a problem solved over a grid of parameters, in-process or on a cluster.

The rows are those of ``lossnav sweep`` (the same Rust function computes them): index,
params, solved, cost, cost_is_relative, end, minimum, second_order, or error_kind and error.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _lossnav
from ._core import Problem, SpecLike, _problem
from ._errors import UsageError
from ._progress import ProgressArg, reporter

Axes = List[Tuple[str, List[float]]]


def _axes(grid: Mapping[str, Union[Sequence[float], np.ndarray]]) -> Axes:
    if not isinstance(grid, Mapping) or not grid:
        raise UsageError(
            "grid maps parameter names (gamma, eta, k, horizon, theta0.I, params.NAME, or a "
            "field's path such as metric.diag[0]) to their values, e.g. "
            "{'gamma': numpy.linspace(0.05, 2, 40)}"
        )
    axes: Axes = []
    for name, values in grid.items():
        vals = np.atleast_1d(np.asarray(values, dtype=float))
        if vals.ndim != 1:
            raise UsageError(f"grid[{name!r}] is a one-dimensional sequence of values")
        axes.append((str(name), [float(v) for v in vals]))
    return axes


def sweep_chunk(spec: str, label: str, axes: Axes, tol: float, start: int, stop: int,
                jobs: Optional[int] = 1) -> List[Dict[str, Any]]:
    """The rows of grid points ``start..stop`` (a task for a worker: its arguments are plain
    data, so it travels to any process or machine)."""
    grid = _lossnav.Grid(spec, label, axes, tol)
    text = grid.rows(start, stop, jobs)
    return [json.loads(line) for line in text.splitlines()]


def sweep(
    problem: Union[Problem, SpecLike],
    grid: Mapping[str, Union[Sequence[float], np.ndarray]],
    *,
    tol: float = 1e-8,
    jobs: Optional[int] = None,
    client: Any = None,
    chunk_size: Optional[int] = None,
    as_frame: Optional[bool] = None,
    progress: ProgressArg = False,
) -> Any:
    """Solves ``problem`` at every point of ``grid``, as ``lossnav sweep`` does.

    Args:
        problem: a :class:`Problem` or a spec.
        grid: parameter name → values; several names make a product grid whose first name
            varies slowest (``{"gamma": [...], "k": [...]}``). Names: ``gamma``, ``eta``,
            ``k``, ``horizon``, ``theta0.I``, ``params.NAME``, or any numeric field
            of the spec by its path (``metric.diag[1]``, ``drift.linear[0][1]``).
        tol: the boundary-value solver's tolerance.
        jobs: threads for an in-process sweep (all cores when None).
        client: a ``dask.distributed.Client`` or any ``concurrent.futures.Executor``: the grid
            is cut into chunks of consecutive points that run as tasks there (Dask retries a
            chunk whose worker died). None: in-process, in parallel, without the GIL.
        chunk_size: points per task (default: about four tasks per worker).
        as_frame: a pandas DataFrame (default when pandas is installed) or a list of dicts.
        progress: True for a bar over the points (tqdm in Jupyter or a terminal, when
            installed; else a counter on standard error), or a callable receiving
            ``(done, total)`` as points (in-process) or chunks (on a cluster) finish.

    Failed points are rows with ``solved`` False and the cause; the sweep goes on.
    """
    p = _problem(problem)
    if p.python_loss is not None:
        raise UsageError(
            "sweeps travel as specs, and a Python loss is not one: loop over "
            "problem.replace(...) and lossnav.solve instead"
        )
    axes = _axes(grid)
    spec, label = p.to_json(), p._label
    # Checks the axes (names, sizes) and finds the minima before any task is sent.
    g = _lossnav.Grid(spec, label, axes, float(tol))
    n = len(g)
    report, close = reporter(progress, "sweep")
    try:
        rows = _rows(g, n, spec, label, axes, tol, jobs, client, chunk_size, report)
    finally:
        close()
    return _frame(rows) if _want_frame(as_frame) else rows


def _rows(g: Any, n: int, spec: str, label: str, axes: Axes, tol: float, jobs: Optional[int],
          client: Any, chunk_size: Optional[int], report: Any) -> List[Dict[str, Any]]:
    if client is None:
        rows = [json.loads(line) for line in g.rows(0, n, jobs, report).splitlines()]
    else:
        if chunk_size is None:
            workers = _worker_count(client)
            chunk_size = max(1, -(-n // (4 * workers)))
        if int(chunk_size) < 1:
            raise UsageError("chunk_size must be at least 1")
        bounds = [(lo, min(n, lo + int(chunk_size))) for lo in range(0, n, int(chunk_size))]
        is_dask = hasattr(client, "gather") and hasattr(client, "scheduler_info")
        futures = []
        try:
            for lo, hi in bounds:
                args = (sweep_chunk, spec, label, axes, float(tol), lo, hi, 1)
                if is_dask:
                    futures.append(client.submit(*args, pure=False, retries=3))
                else:
                    futures.append(client.submit(*args))
            if report is not None:
                # Chunks as they finish (in any order); the rows are still taken in order.
                size = {f: hi - lo for f, (lo, hi) in zip(futures, bounds)}
                done = 0
                report(0, n)
                for f in _as_completed(futures, is_dask):
                    # A failed chunk raises here, at once (the others are then cancelled).
                    f.result()
                    done += size[f]
                    report(done, n)
            rows = [row for f in futures for row in f.result()]
        except BaseException:
            # Ctrl-C or a failed chunk: the chunks not started are not left to run.
            if is_dask:
                client.cancel(futures)
            else:
                for f in futures:
                    f.cancel()
            raise
    return rows


def _as_completed(futures: List[Any], is_dask: bool) -> Any:
    """The futures in the order they finish (Dask's own ``as_completed`` for a Dask client)."""
    if is_dask:
        from distributed import as_completed  # type: ignore[import-not-found]

        return as_completed(futures)
    import concurrent.futures

    return concurrent.futures.as_completed(futures)


def _worker_count(client: Any) -> int:
    try:
        info = client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
    except Exception:  # noqa: BLE001 - any executor: fall back to its max_workers
        return max(1, int(getattr(client, "_max_workers", 1) or 1))


def _want_frame(as_frame: Optional[bool]) -> bool:
    if as_frame is False:
        return False
    try:
        import pandas  # noqa: F401
    except ImportError:
        if as_frame:
            raise ImportError("as_frame=True needs pandas (pip install pandas)") from None
        return False
    return True


def _frame(rows: List[Dict[str, Any]]) -> Any:
    import pandas as pd

    flat = []
    for r in rows:
        row = {"index": r["index"], **r["params"]}
        for key in ("solved", "cost", "cost_is_relative", "end", "minimum", "second_order",
                    "error_kind", "error"):
            row[key] = r.get(key)
        flat.append(row)
    return pd.DataFrame(flat).set_index("index")
