"""Sweeps from Python: the command line's rows, in-process and on a Dask cluster."""

from __future__ import annotations

import numpy as np
import pytest

import lossnav

from conftest import ROOT, cli_lines

SPEC = ROOT / "problems" / "specs" / "figure1-double-well-infinite.json"


def cli_range(lo: float, hi: float, n: int) -> list:
    """The values of the command line's LO:HI:N: evenly spaced, each the shortest decimal
    within 4 ulp of the range's scale (0.4, not 0.39999999999999997), the ends exact."""
    scale = max(abs(lo), abs(hi))
    tol = 4 * 2.0**-52 * scale

    def shortest(v: float) -> float:
        for digits in range(1, 17):
            w = float(f"{v:.{digits - 1}e}")
            if abs(w - v) <= tol:
                return w
        return v

    inner = [shortest(lo + (hi - lo) * i / (n - 1)) for i in range(1, n - 1)]
    return [lo, *inner, hi]


def test_in_process_sweep_equals_the_command_line():
    gammas = cli_range(0.05, 0.85, 17)
    rows = lossnav.sweep(SPEC, {"gamma": gammas}, as_frame=False)
    expected = cli_lines("sweep", str(SPEC), "--set", "gamma=0.05:0.85:17")
    assert rows == expected


def test_a_two_axis_grid_and_failures_are_rows():
    rows = lossnav.sweep(
        SPEC, {"gamma": [0.1, 1.05], "k": [0.5, 1.0]}, as_frame=False, jobs=1
    )
    expected = cli_lines(
        "sweep", str(SPEC), "--set", "gamma=0.1,1.05", "--set", "k=0.5,1", "--jobs", "1"
    )
    assert rows == expected
    assert [r["index"] for r in rows] == [0, 1, 2, 3]


def test_a_data_frame_when_pandas_is_installed():
    pd = pytest.importorskip("pandas")
    frame = lossnav.sweep(SPEC, {"gamma": [0.1, 0.2]})
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["gamma"]) == [0.1, 0.2]
    assert frame["solved"].all()


def test_bad_grids_are_refused():
    with pytest.raises(lossnav.UsageError):
        lossnav.sweep(SPEC, {})
    with pytest.raises(lossnav.UsageError, match="bogus: expected a numeric field of the spec"):
        lossnav.sweep(SPEC, {"bogus": [1.0]})
    with pytest.raises(lossnav.UsageError, match="finite"):
        lossnav.sweep(SPEC, {"gamma": [float("nan")]})
    with pytest.raises(lossnav.UsageError, match="params.zz"):
        lossnav.sweep(SPEC, {"params.zz": [1.0]})


def test_an_executor_gives_the_same_rows():
    from concurrent.futures import ThreadPoolExecutor

    grid = {"gamma": np.linspace(0.05, 0.85, 9)}
    local = lossnav.sweep(SPEC, grid, as_frame=False)
    with ThreadPoolExecutor(2) as pool:
        remote = lossnav.sweep(SPEC, grid, client=pool, chunk_size=2, as_frame=False)
    assert remote == local


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("dask.distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_a_dask_sweep_of_200_points_equals_the_in_process_one(dask_client):
    grid = {"gamma": cli_range(0.05, 0.85, 200)}
    local = lossnav.sweep(SPEC, grid, as_frame=False)
    remote = lossnav.sweep(SPEC, grid, client=dask_client, as_frame=False)
    assert remote == local
    expected = cli_lines("sweep", str(SPEC), "--set", "gamma=0.05:0.85:200")
    assert local == expected


def test_a_dask_sweep_survives_a_killed_worker(dask_client):
    import os
    import signal
    import threading
    import time

    grid = {"gamma": cli_range(0.05, 0.85, 400)}
    local = lossnav.sweep(SPEC, grid, as_frame=False)
    pids = list(dask_client.run(os.getpid).values())
    killed = {}

    def kill_one():
        killed["at"] = time.monotonic()
        os.kill(pids[0], signal.SIGKILL)

    # One point per task: the sweep is still running when a worker dies; the nanny restarts
    # it and the scheduler reruns its lost tasks.
    timer = threading.Timer(0.3, kill_one)
    timer.start()
    remote = lossnav.sweep(SPEC, grid, client=dask_client, chunk_size=1, as_frame=False)
    finished = time.monotonic()
    timer.join()
    assert killed["at"] < finished, "the worker died after the sweep ended: nothing was tested"
    assert remote == local


def test_progress_is_reported_and_does_not_change_the_rows():
    gammas = cli_range(0.05, 0.85, 17)
    calls = []
    rows = lossnav.sweep(SPEC, {"gamma": gammas}, as_frame=False, jobs=2,
                         progress=lambda done, total: calls.append((done, total)))
    assert rows == lossnav.sweep(SPEC, {"gamma": gammas}, as_frame=False)
    assert calls[-1] == (17, 17)
    assert all(total == 17 for _, total in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    # On an executor, chunk by chunk.
    import concurrent.futures

    chunks = []
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        on_pool = lossnav.sweep(SPEC, {"gamma": gammas}, as_frame=False, client=pool,
                                chunk_size=5, progress=lambda d, t: chunks.append((d, t)))
    assert on_pool == rows
    assert chunks[0] == (0, 17) and chunks[-1] == (17, 17) and len(chunks) == 1 + 4


def test_a_progress_bar_on_standard_error(capsys):
    lossnav.sweep(SPEC, {"gamma": [0.1, 0.2, 0.3]}, as_frame=False, progress=True)
    err = capsys.readouterr().err
    assert "sweep" in err and "3/3" in err, err


def test_an_exception_in_the_progress_callable_stops_the_sweep():
    def fail(done: int, total: int) -> None:
        raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here"):
        lossnav.sweep(SPEC, {"gamma": cli_range(0.05, 0.85, 17)}, progress=fail)
    with pytest.raises(lossnav.UsageError, match="progress"):
        lossnav.sweep(SPEC, {"gamma": [0.1]}, progress="yes")


def test_progress_appears_in_a_jupyter_kernel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cell = (
        "import lossnav\n"
        f"rows = lossnav.sweep({str(SPEC)!r}, {{'gamma': [0.1, 0.2, 0.3, 0.4]}}, "
        "as_frame=False, progress=True)\n"
        "print(len(rows), 'rows')"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert "4 rows" in text
    # The bar (tqdm's, or the plain counter without tqdm) on the kernel's standard error.
    err = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    widgets = [o for o in outputs if o.get("output_type") == "display_data"]
    assert "4/4" in err or widgets, outputs
