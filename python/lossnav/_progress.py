"""Progress of long calls (sweeps, training) for notebooks and terminals.

``progress=True`` shows a tqdm bar (``tqdm.auto``: a widget in Jupyter, text in a terminal)
when tqdm is installed, else a one-line counter on standard error; a callable receives
``(done, total)`` itself. The Rust side reports from the calling thread, at most every 50 ms,
and once at the end.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Tuple, Union

ProgressArg = Union[bool, None, Callable[[int, int], Any]]


def reporter(progress: ProgressArg, desc: str) -> Tuple[Optional[Callable[[int, int], None]], Callable[[], None]]:
    """The ``(done, total)`` callable for ``progress`` and the function that closes its bar."""
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None  # type: ignore[return-value]
    if progress is not True:
        from ._errors import UsageError

        raise UsageError(f"progress {progress!r}: True, False or a callable (done, total)")
    try:
        from tqdm.auto import tqdm  # type: ignore[import-not-found]
    except ImportError:
        return _TextBar(desc), lambda: sys.stderr.write("\n")
    try:
        bar = tqdm(total=0, desc=desc, unit="")
    except ImportError:
        # tqdm's notebook bar needs ipywidgets; without it, its text bar (which Jupyter
        # also shows, rewritten in place).
        from tqdm.std import tqdm as text_tqdm  # type: ignore[import-not-found]

        bar = text_tqdm(total=0, desc=desc, unit="")

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        if done > bar.n:
            bar.update(done - bar.n)

    return update, bar.close


class _TextBar:
    """``desc: done/total`` rewritten in place on standard error."""

    def __init__(self, desc: str) -> None:
        self.desc = desc

    def __call__(self, done: int, total: int) -> None:
        sys.stderr.write(f"\r{self.desc}: {done}/{total}")
        sys.stderr.flush()
