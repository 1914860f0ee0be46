"""Type stubs of the extension module (python/src/lib.rs)."""

from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class Compiled:
    def __init__(self, spec: str, label: str) -> None: ...
    @staticmethod
    def with_python_loss(
        spec: str,
        label: str,
        value_and_grad: Callable[..., Any],
        hessian: Optional[Callable[..., Any]] = None,
        time_dependent: bool = False,
        name: str = "",
    ) -> "Compiled": ...
    def summary(self) -> str: ...

def solve(
    problem: Compiled,
    method: str = "bvp",
    tol: Optional[float] = None,
    intervals: int = 200,
    at: List[float] = ...,
    local: bool = False,
    max_seconds: Optional[float] = None,
    scheme: str = "auto",
    sensitivities: List[str] = ...,
) -> Solved: ...
def rule(problem: Compiled) -> str: ...
def simulate(
    problem: Compiled,
    rule: Optional[str] = None,
    rate: Optional[float] = None,
    beta: float = 0.0,
    t_end: Optional[float] = None,
    at: List[float] = ...,
    paths: int = 20000,
    seed: int = 1,
    dt: float = 0.01,
    gain_scale: float = 1.0,
) -> str: ...
def fit(
    problem: Compiled,
    free: List[str],
    t: Optional[List[float]] = None,
    theta: Optional[List[List[float]]] = None,
    sigma: Optional[float] = None,
    rule: Optional[str] = None,
    lr: Optional[float] = None,
    beta: Optional[float] = None,
    steps: Optional[int] = None,
    skip: int = 0,
    starts: int = 4,
    seed: int = 1,
    max_seconds: Optional[float] = None,
) -> str: ...
def check(filter: Optional[str] = None) -> str: ...
def schedule(problem: Compiled, steps: int = 100, max_seconds: Optional[float] = None) -> str: ...
def figures(
    out: str, published: bool = False, width: int = 800, height: int = 600, dpi: float = 192.0
) -> List[str]: ...
def escape(problem: Compiled, gammas: List[float], theta0s: List[List[float]]) -> str: ...
def train(
    data: str,
    model: str,
    optimizers: List[str],
    epochs: Optional[int],
    seeds: int,
    batch: int,
    lr: List[Tuple[str, float]],
    lr_grid: List[float],
    clip: float,
    progress: Optional[Callable[[int, int], Any]] = None,
) -> str: ...
def _shutdown() -> None: ...

class Solved:
    @property
    def document(self) -> str: ...
    @property
    def summary(self) -> str: ...
    def node_array(self, name: str) -> npt.NDArray[np.float64]: ...
    def eval(
        self, t: npt.NDArray[np.float64]
    ) -> Tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
    def rule_at(self, t: List[float]) -> str: ...

class Grid:
    def __init__(
        self, spec: str, label: str, axes: List[Tuple[str, List[float]]], tol: float
    ) -> None: ...
    def __len__(self) -> int: ...
    def rows(
        self,
        start: int,
        stop: int,
        jobs: Optional[int] = None,
        progress: Optional[Callable[[int, int], Any]] = None,
    ) -> str: ...
