"""Exceptions raised by lossnav.

Every error of the Rust side arrives as one of these, with the same one-line message the
command line prints. Each also derives from the built-in exception a Python user would catch
for that kind of failure (``ValueError`` for a bad spec or argument, ``RuntimeError`` for a
solver that failed, ``TimeoutError`` for a spent budget).
"""

from __future__ import annotations

from typing import Optional


class LossnavError(Exception):
    """Base class of every lossnav error."""


class SpecError(LossnavError, ValueError):
    """A spec (dict, JSON text or file) was rejected; the message names the field."""


class UsageError(LossnavError, ValueError):
    """An argument is unusable (an unknown method, a time outside the horizon, ...)."""


class SolverError(LossnavError, RuntimeError):
    """A solver failed. ``kind`` is a short cause ("Newton's method did not converge",
    "memory limit", ...), the same as ``error_kind`` in sweep rows."""

    kind: Optional[str] = None


class TimeLimitError(SolverError, TimeoutError):
    """The wall-clock budget (``max_seconds``) ran out."""


class RuleError(LossnavError, ValueError):
    """The spec has no closed-form rule (not linear–quadratic, too large, ...)."""


__all__ = [
    "LossnavError",
    "SpecError",
    "UsageError",
    "SolverError",
    "TimeLimitError",
    "RuleError",
]
