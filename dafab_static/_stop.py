"""A stop the program was asked for (SIGTERM, Ctrl-C), remembered.

The CLI's signal handler raises KeyboardInterrupt to unwind a run, but an exception raised
at an arbitrary point can be lost: one that lands inside an import pyarrow makes lazily
(of pandas) leaves the module half-initialised, and pyarrow takes the failure for "pandas
is not installed" and carries on. So the request is also kept here, and every irreversible
step (publishing a release, moving a pipeline run into place) calls :func:`check` first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_REQUESTED: list[int] = []
_DEFERRING: list[bool] = []


def request(signum: int) -> None:
    """Remember that signal ``signum`` asked the program to stop."""
    _REQUESTED.append(signum)


def interrupt(signum: int) -> None:
    """What a signal handler calls: remember the request, and raise KeyboardInterrupt to
    unwind the run, unless a step that must not be cut short is running (:func:`deferred`)."""
    request(signum)
    if not _DEFERRING:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A step that must run to its end once begun: publishing a release past its commit
    point. A stop asked for meanwhile is remembered, not raised; the step is done, so the
    run ends as if it came after. (An interrupt inside it left a bucket's new root naming a
    release that the unwinding then deleted: the live catalog was gone.)

    Example:
        >>> with deferred():
        ...     pass
    """
    _DEFERRING.append(True)
    try:
        yield
    finally:
        _DEFERRING.pop()


def requested() -> int | None:
    """The first signal that asked the program to stop, or None."""
    return _REQUESTED[0] if _REQUESTED else None


def check() -> None:
    """Raise KeyboardInterrupt if a stop was requested; call it before an irreversible step.

    Example:
        >>> check()  # nothing requested: returns
    """
    if _REQUESTED:
        raise KeyboardInterrupt
