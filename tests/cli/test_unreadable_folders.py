"""An unreadable source folder is one line naming it, in every command, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _unprivileged() -> list[str]:
    """A prefix that runs a command without root's right to read any file, or [] when
    this user is not root; skips when there is no such way here."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads any folder, and setpriv is missing")
    caps = "-dac_override,-dac_read_search"
    return [setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["build", "locked", "--out", "cat"], "locked: cannot list folder: Permission denied"),
        (["validate", "locked"], "locked: cannot read folder: permission denied"),
        (["search", "locked"], "locked: cannot read folder: permission denied"),
    ],
)
def test_an_unreadable_folder_is_one_line(
    tmp_path: Path, command: list[str], expected: str
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "items.ndjson").write_text("{}\n")
    locked.chmod(0)
    try:
        run = subprocess.run(
            [*_unprivileged(), sys.executable, "-m", "dafab_static.cli", *command],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert expected in run.stderr
