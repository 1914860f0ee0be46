"""`lossnav.figures` and `lossnav.escape`: the command line's pictures and diagrams."""

from __future__ import annotations

import json
import os

import pytest

import lossnav

from conftest import ROOT, cli_json

SPECS = ROOT / "problems" / "specs"


def test_published_figures_are_written(tmp_path) -> None:
    paths = lossnav.figures(tmp_path, published=True, width=400, height=300, dpi=96)
    names = {os.path.basename(p) for p in paths}
    assert {"pub-fig2a", "pub-fig3c", "pub-fig1", "pub-fig2", "pub-fig3"} <= names
    for p in paths:
        for ext in (".svg", ".png", ".json"):
            assert os.path.isfile(p + ext), p + ext
    panel = json.loads((tmp_path / "pub-fig3c.json").read_text())
    assert "end point as published (erratum)" in {m["name"] for m in panel["markers"]}


def test_escape_equals_the_command_line() -> None:
    spec = str(SPECS / "figure1-double-well-infinite.json")
    doc = lossnav.escape(spec, [0.1, 1.0], [[-0.6, 0.55], [-0.4, 0.55]])
    cli = cli_json("escape", spec, "--gamma", "0.1,1", "--theta0-grid", "-0.6,-0.4")
    assert doc == cli


def test_what_escape_and_figures_refuse() -> None:
    with pytest.raises(lossnav.UsageError, match="infinite-horizon"):
        lossnav.escape(str(SPECS / "figure1-double-well.json"), [0.5])
    with pytest.raises(lossnav.UsageError, match="coordinates"):
        lossnav.escape(str(SPECS / "figure1-double-well-infinite.json"), [0.5], [[0.1]])
    with pytest.raises(lossnav.LossnavError, match="γ"):
        lossnav.escape(str(SPECS / "figure1-double-well-infinite.json"), [0.0])
    with pytest.raises(lossnav.UsageError, match="width"):
        lossnav.figures("unused", width=0)
