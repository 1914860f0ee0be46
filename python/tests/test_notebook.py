"""docs/notebooks/figure1.ipynb runs top to bottom."""

from __future__ import annotations


import pytest

from conftest import ROOT

NOTEBOOK = ROOT / "docs" / "notebooks" / "figure1.ipynb"


def test_the_figure1_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "the notebook is stored with its outputs cleared"
    )
    figure = tmp_path / "figure1.png"
    monkeypatch.setenv("LOSSNAV_NOTEBOOK_FIGURE", str(figure))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()
    text = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "J = 0.6194630244" in text
    assert "strict local minimum" in text
    assert figure.stat().st_size > 10_000
