"""Scratch folders of a build in the system's temporary folder, and the sweep of those that
killed builds left behind.

A build spools its items (and generates the bundled sample) in ``$TMPDIR``; a ``finally``
removes them, which a SIGKILL or a power cut skips. Each folder's name holds the process id
of its build, so the next build removes the ones whose build is gone, as it removes a dead
build's staging folder beside DEST. A folder of a live process, or of another user, is
never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

#: The prefixes of the scratch folders builds make.
PREFIXES = ("dafab-spool-", "dafab-sample-")
_NAME = re.compile(r"(dafab-(?:spool|sample)-)(\d+)-[^/]+")


def make(prefix: str) -> Path:
    """A new scratch folder ``<prefix><pid>-<random>`` in the temporary folder."""
    if prefix not in PREFIXES:
        raise ValueError(f"unknown scratch prefix {prefix!r}")
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def sweep(folder: str | None = None) -> list[Path]:
    """Remove the scratch folders of builds that no longer run; return what was removed.

    Only folders this user owns, named as :func:`make` names them, whose process id is not
    a running process. A process id reused since by another process keeps its folder until
    that process ends too: never a live build's folder removed.
    """
    root = Path(folder or tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if uid is not None and entry.stat(follow_symlinks=False).st_uid != uid:
                continue
        except OSError:
            continue
        if _running(int(match[2])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True  # someone's process, or unknowable: keep the folder
    return True
