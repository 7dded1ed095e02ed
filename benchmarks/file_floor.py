"""The file-creation floor of this machine: the files of a built catalog, without the work.

Walks SRC (untimed), then recreates in DEST the same directory structure and the same number
of files with the same sizes, writing ``b" " * size`` with plain ``open``/``write`` (what
dafab-static's ``FolderStore`` does), one file after the other. No JSON, no Parquet, no
validation: only ``mkdir``, ``open``, ``write`` and ``close``.

Prints one JSON object; ``seconds`` is the timed write phase, in-process.

Usage::

    python benchmarks/file_floor.py SRC DEST
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    src, dest = sys.argv[1], sys.argv[2]
    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = os.path.relpath(dirpath, src)
        dirs.append(rel)
        for name in sorted(filenames):
            files.append((os.path.join(rel, name), os.path.getsize(os.path.join(dirpath, name))))
    total = sum(size for _, size in files)
    started = time.perf_counter()
    for rel in dirs:
        os.makedirs(os.path.join(dest, rel), exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)
    for rel, size in files:
        fd = os.open(os.path.join(dest, rel), flags, 0o666)
        os.write(fd, b" " * size)
        os.close(fd)
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {"files": len(files), "dirs": len(dirs), "bytes": total, "seconds": round(seconds, 3)}
        )
    )


if __name__ == "__main__":
    main()
