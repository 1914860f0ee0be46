"""lossnav: learning rules as optimal control.

Solve a loss-landscape navigation problem, check what was verified, and sweep it over a
grid — the command-line tool's computations, from Python::

    import lossnav
    problem = lossnav.Problem.from_spec("problems/specs/figure1-double-well.json")
    sol = lossnav.solve(problem)
    print(sol.cost, sol.status)
    theta, p = sol.eval([0.0, 1.0, 2.0])

See docs/python.md.
"""

from __future__ import annotations

from ._core import (
    CallableLoss,
    Problem,
    Solution,
    check,
    escape,
    figures,
    fit,
    rule,
    schedule,
    simulate,
    solve,
    train,
)
from ._errors import (
    LossnavError,
    RuleError,
    SolverError,
    SpecError,
    TimeLimitError,
    UsageError,
)
from ._lossnav import __version__
from ._sweep import sweep

import atexit as _atexit

from . import _lossnav

# Workers an interrupt left finishing their step end before the interpreter finalises.
_atexit.register(_lossnav._shutdown)

__all__ = [
    "Problem",
    "CallableLoss",
    "Solution",
    "solve",
    "simulate",
    "rule",
    "schedule",
    "figures",
    "escape",
    "train",
    "fit",
    "check",
    "sweep",
    "LossnavError",
    "SpecError",
    "UsageError",
    "SolverError",
    "TimeLimitError",
    "RuleError",
    "__version__",
]
