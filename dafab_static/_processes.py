"""Process pools that start safely here: the start method, and whether children can start."""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.context import BaseContext


def start_method() -> str:
    """``forkserver`` where there is one, else ``spawn`` (Windows).

    Never ``fork``: the parent may already run obstore's Tokio threads (S3), and forking a
    process that holds other threads' locks can deadlock the child.
    """
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def context() -> BaseContext:
    """The multiprocessing context of :func:`start_method`, for a ``ProcessPoolExecutor``."""
    return multiprocessing.get_context(start_method())


def main_reloadable() -> bool:
    """Whether a forkserver or spawned child can set up this program's ``__main__``.

    Children re-run the main module from its ``__file__``; a script read from standard input
    (``python - < script.py``) names ``<stdin>``, which no child can open, and every pool
    would break (BrokenProcessPool).
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or os.path.exists(path)
