"""A stop the program was asked for (SIGTERM, Ctrl-C), remembered.

The CLI's signal handler raises KeyboardInterrupt to unwind a run, but an exception raised
at an arbitrary point can be lost: one that lands inside an import pyarrow makes lazily
(of pandas) leaves the module half-initialised, and pyarrow takes the failure for "pandas
is not installed" and carries on. So the request is also kept here, and every irreversible
step (publishing a release, moving a pipeline run into place) calls :func:`check` first.
"""

from __future__ import annotations

_REQUESTED: list[int] = []


def request(signum: int) -> None:
    """Remember that signal ``signum`` asked the program to stop."""
    _REQUESTED.append(signum)


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
