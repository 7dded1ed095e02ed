"""Ingest benchmark: a large ndjson read by reader processes against one process, alternated.

Ingest is the build's first phase: reading other hubs' items, checking them and spooling
them by (collection, month). This times exactly that (``dafab_static.ingest.iter_records``
into a ``Spool``, as ``build`` does), each run in a fresh interpreter, alternating the two
modes so that the machine's drift falls on both:

* ``striped``: the file is read by one process per core (``dafab_static/ingest/striped.py``);
* ``one``: the same file read in the calling process (``workers=1``).

Usage::

    python benchmarks/bench_ingest.py [--items 100000] [--repeat 3] [--workdir DIR]

The items are ``generate_items.py``'s generated NAIP items (reused when present).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = """
import gc, json, resource, sys, tempfile, time
from pathlib import Path

if __name__ == "__main__":
    from dafab_static import entries, spool
    from dafab_static.ingest import Prepared, iter_records

    source, workers = sys.argv[1], int(sys.argv[2])
    pool, preparer = spool.Spool(Path(tempfile.mkdtemp())), entries.Preparer()
    gc.disable()  # as the build does over ingest
    started = time.perf_counter()
    for record in iter_records([source], on_error=print, on_notice=print, workers=workers,
                               prepare=preparer):
        if isinstance(record, Prepared):
            pool.add_packed(record.batch, record.index)
        else:
            pool.add(preparer.item(record.data, record.source))
    pool.flush()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"items": pool.total, "seconds": seconds,
                      "caller_cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def run(source: Path, workers: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(source), str(workers)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dafab-bench")
    args = parser.parse_args()
    subprocess.run([sys.executable, str(HERE / "generate_items.py"), str(args.items),
                    "--workdir", str(args.workdir)], check=True)  # fmt: skip
    source = args.workdir / f"naip-gen-{args.items}.ndjson"
    runs: dict[str, list[dict[str, float]]] = {"striped": [], "one": []}
    for _ in range(args.repeat):
        for mode, workers in (("striped", 0), ("one", 1)):
            result = run(source, workers)
            runs[mode].append(result)
            seconds, cpu = result["seconds"], result["caller_cpu_s"]
            print(f"  {mode:8} {seconds:7.2f} s  caller cpu {cpu:6.2f} s"
                  f"  {int(result['items'])} items", flush=True)  # fmt: skip
    medians = {mode: statistics.median(r["seconds"] for r in rs) for mode, rs in runs.items()}
    striped, one = medians["striped"], medians["one"]
    print(f"striped / one process: {striped / one:.2f} "
          f"(medians {striped:.2f} s / {one:.2f} s, n={args.repeat})")  # fmt: skip


if __name__ == "__main__":
    main()
