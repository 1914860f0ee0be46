"""Shared fixtures: the repository's paths and the command-line binary to compare with."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Any, List

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "problems" / "specs").glob("*.json"))


def cli_path() -> pathlib.Path:
    """The `lossnav` binary of this checkout (LOSSNAV_BIN overrides; CARGO_TARGET_DIR is
    honoured)."""
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    path = pathlib.Path(os.environ.get("LOSSNAV_BIN", target / "release" / "lossnav"))
    if not path.exists():
        pytest.fail(
            f"{path} is missing: build it with `cargo build --release` (the tests compare "
            "the package with the command line)"
        )
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(cli_path()), *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def cli_json(*args: str) -> Any:
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def cli_lines(*args: str) -> List[Any]:
    out = run_cli(*args)
    return [json.loads(line) for line in out.stdout.splitlines()]
