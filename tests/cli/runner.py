"""Run the CLI as a user does: a new process, text in, text out."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``dafab-static ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "dafab_static.cli", *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
