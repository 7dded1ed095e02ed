"""Worker processes that start safely and quickly: the start method, whether children can
start, and the forkserver they fork from with their imports loaded."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading
import time
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


#: Environment variables that configure object storage (credentials, endpoint, region) for
#: obstore, and GDAL's reads of remote rasters.
STORAGE_ENV = ("AWS_", "OBSTORE_", "GDAL_", "CPL_")


def storage_environment() -> dict[str, str]:
    """This process's :data:`STORAGE_ENV` variables, for :func:`use_environment` in a worker."""
    return {k: v for k, v in os.environ.items() if k.startswith(STORAGE_ENV)}


def use_environment(environment: dict[str, str]) -> None:
    """In a worker process, replace the :data:`STORAGE_ENV` variables by the parent's.

    A forkserver child has the environment of the forkserver, which is that of the parent
    when the server started (perhaps an earlier build of a long-lived process): with other
    or no AWS variables, a worker reading or writing S3 would use stale credentials, or ask
    the instance metadata service. :func:`init_child` calls it.
    """
    for key in [k for k in os.environ if k.startswith(STORAGE_ENV)]:
        del os.environ[key]
    os.environ.update(environment)


def parent_facts() -> tuple[dict[str, str], int]:
    """What a worker process takes from the process that starts it: the storage
    environment and that process's id; the arguments of :func:`init_child`."""
    return storage_environment(), os.getpid()


def init_child(environment: dict[str, str], parent: int) -> None:
    """Set up a worker process: the parent's storage environment (:func:`use_environment`),
    an exit as soon as the parent is gone (:func:`exit_with`), and a quiet one at Ctrl-C.
    Pass it, with :func:`parent_facts`, as a pool's ``initializer``.

    A terminal's Ctrl-C reaches every process of the build's group. The build reports it
    and removes what it wrote; a worker has nothing to add, but a KeyboardInterrupt in it
    printed a traceback (from concurrent.futures, or from a reader process's bootstrap).
    """
    signal.signal(signal.SIGINT, _exit_at_interrupt)
    use_environment(environment)
    exit_with(parent)


def _exit_at_interrupt(signum: int, frame: object) -> None:
    os._exit(128 + signum)  # the build unwinds and cleans up; a worker leaves no trace


def exit_with(parent: int) -> None:
    """End this worker process when process ``parent`` ends, however it ends.

    A killed build (SIGKILL, the OOM killer) unwinds nothing, and its workers would wait
    for work forever: a ``ProcessPoolExecutor`` worker holds both ends of its call queue's
    pipe, so it never reads EOF; and each keeps the forkserver alive, since every forkserver
    child holds the server's "alive" pipe. A daemon thread waits on a pidfd of the parent
    (Linux 5.3+: readable when it exits), or polls for it once a second elsewhere.
    """

    def watch() -> None:
        try:
            fd = os.pidfd_open(parent)
        except ProcessLookupError:
            os._exit(1)  # gone already
        except (AttributeError, OSError):  # no pidfd (macOS, old kernels): poll
            while alive(parent):
                time.sleep(1.0)
        else:
            select.select([fd], [], [])
        os._exit(1)  # no cleanup to run: the parent's release is abandoned anyway

    threading.Thread(target=watch, name="dafab-parent-watch", daemon=True).start()


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: What the worker processes of a build import: the month writers, and the readers of large
#: files (:mod:`dafab_static.ingest.striped`). The forkserver loads them once (:func:`warm_up`).
PRELOAD = (
    "dafab_static.writer",
    "dafab_static.validate",
    "stac_geoparquet.arrow._batch",
    "dafab_static.ingest.striped",
)


def warm_up(workers: int) -> None:
    """Start the forkserver that worker processes fork from, with their imports loaded.

    A build calls it once ingest has read ``dafab_static.workers.WARM_UP_ITEMS`` items,
    and the readers of a large file (:mod:`dafab_static.ingest.striped`) before they
    start. A writer spends about
    0.7 s importing pyarrow, pandas (which ``pyarrow.dataset`` imports, and stac-geoparquet
    imports that) and stac-geoparquet before it writes anything; with two workers importing
    side by side, phase 2 began with that while the main process waited. Ingest keeps
    about one core busy, so the server's one import runs on the other core, and every
    writer forks from it already loaded. 10k NAIP items, 4 alternated pairs into fresh
    folders: ingest 0.4 s slower, phase 2 0.8 s faster, and the build faster in every pair
    (3.3-4.9 s against 4.1-5.0 s).

    The forkserver is one per process: when it already runs (an earlier build or pipeline
    in this process), it keeps the modules it has, and writers import the rest themselves;
    once started here, it serves the process's later forkserver pools too, with these
    modules loaded. Nothing is started when months would be written in this process.
    """
    if (workers or os.cpu_count() or 1) < 2 or start_method() != "forkserver":
        return  # Windows spawns its workers: each imports what it needs itself
    if not main_reloadable():
        return
    from multiprocessing import forkserver

    # "__main__" is the default preload: keep it, so workers see what they saw before.
    multiprocessing.get_context("forkserver").set_forkserver_preload(["__main__", *PRELOAD])
    if threading.current_thread() is not threading.main_thread():
        forkserver.ensure_running()  # only the main thread may set signal handlers
        return
    # The server shares the build's process group, so a terminal's Ctrl-C reached it while
    # it imported pyarrow, and it printed a traceback under the build's "interrupted". An
    # ignored signal stays ignored across fork and exec (a blocked one does not stay
    # blocked), so the server starts ignoring SIGINT, and so do the workers it forks, until
    # init_child. Blocked meanwhile here, a Ctrl-C is kept pending, not lost.
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
