"""Build benchmark: dafab-static against its peers and the machine's floor, in one run.

See benchmarks/README.md for what each figure means. Every build runs in its own subprocess;
wall time is measured around it and peak RSS is that child's own ``ru_maxrss`` from
``os.wait4`` (so earlier children never inflate a later figure).

Usage::

    python benchmarks/bench_build.py [--sizes 10k,100k,1m] [--workdir DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAIP_10K = REPO.parent / "shared" / "data" / "stac-items" / "pc-naip-10000.parquet"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
# Measured on the generated NAIP items: ~3.3 kB of ndjson per item in, ~4.4 kB of tree out,
# and the build's spool holds another copy of the input while it runs.
BYTES_PER_ITEM_NEEDED = 3_300 * 2 + 4_400 * 2

# Targets of the issue.
TARGET_FLOOR = 1.25  # ours / file-creation floor, at most
TARGET_PYSTAC = 5.0  # pystac / ours, at least
TARGET_INDEX = 1.0  # ours / stac-geoparquet, at most
TARGET_SCALING = 1.2  # per-item time at 1M / at 10k, at most
TARGET_RSS_MB = 1024  # peak RSS at 1M, below
TARGET_1M_S = 600  # total time at 1M, below
SETTLE_S = 2.0


class TreeMemory(threading.Thread):
    """Polls the summed memory of a process and all its descendants (a build may use a
    process pool, and ``ru_maxrss`` is the largest single process, not their sum)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss = self.peak_pss = 0
        self.peak_procs = 0
        self.cpu: dict[tuple[int, float], float] = {}  # (pid, start) -> user + system s
        self.done = threading.Event()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self.done.is_set():
            rss = pss = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in procs:
                try:
                    # PSS splits pages shared after fork between the processes that share them.
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
                    times = proc.cpu_times()
                    self.cpu[(proc.pid, proc.create_time())] = times.user + times.system
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(procs))
            self.done.wait(self.interval)


# Where children run and with which environment; main() points them at a frozen snapshot.
CHILD: dict[str, Any] = {"cwd": REPO, "env": None, "package": REPO / "dafab_static"}


def code_digest(package: Path | None = None) -> str:
    """Digest of the package sources (``.py`` files)."""
    sources = sorted((package or CHILD["package"]).rglob("*.py"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]


def snapshot_package(workdir: Path) -> Path:
    """Freeze a copy of ``dafab_static`` for this run and make every child import it.

    Other engineers edit the package while a run of ~25 minutes goes on; without a copy the
    runs of one benchmark could measure different code. Children run in ``workdir`` (so the
    repository's folder is not first on their path) with ``PYTHONPATH`` set to the copy,
    which wins over the editable install.
    """
    digest = code_digest(REPO / "dafab_static")
    root = workdir / f"code-{digest}"
    if not (root / "dafab_static").exists():
        tmp = workdir / f".code-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(
            REPO / "dafab_static",
            tmp / "dafab_static",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        os.replace(tmp, root)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    CHILD.update(cwd=workdir, env=env, package=root / "dafab_static")
    return root


def settle() -> float:
    """Flush dirty pages and pause, so one run's writeback does not land in the next.

    Returns the 1-minute load average: the machine may be shared, and a load near the core
    count before a run means its figures are inflated.
    """
    os.sync()
    time.sleep(SETTLE_S)
    return round(os.getloadavg()[0], 2)


def measure(
    cmd: list[str], *, timeout: float, label: str, ok_codes: tuple[int, ...] = (0,)
) -> dict[str, Any]:
    """Run ``cmd`` as a child; its wall time, peak RSS, CPU time, exit code and output."""
    load = settle()
    code = code_digest()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=CHILD["cwd"], env=CHILD["env"])
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        memory = TreeMemory(proc.pid)
        memory.start()
        try:
            # wait4 gives this child's own rusage (its waited-for descendants included).
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            memory.done.set()
            memory.join()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    result = {
        "cmd": " ".join(cmd),
        "rc": proc.returncode,
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        # Largest single process of the tree (Linux reports kB).
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        # Sums over the process tree, polled every 0.2 s (may miss a short spike).
        "peak_tree_rss_mb": round(memory.peak_rss / 2**20, 1),
        "peak_tree_pss_mb": round(memory.peak_pss / 2**20, 1),
        "processes": memory.peak_procs,
        # CPU of every process seen in the tree (workers of a forkserver are not waited for
        # by the child, so its rusage misses them); the last 0.2 s of each may be missed.
        "tree_cpu_s": round(sum(memory.cpu.values()), 2),
        "load_before": load,
        "code": code,
    }
    if proc.returncode not in ok_codes:
        print(f"!! {label} failed (exit {proc.returncode}): {result['cmd']}", file=sys.stderr)
        print(stderr[-6000:] or stdout[-6000:], file=sys.stderr)
        result["error"] = (stderr or stdout)[-2000:]
        return result
    result["stdout"] = stdout
    return result


def _json_tail(stdout: str) -> dict[str, Any]:
    """The JSON object a child printed last (rich may wrap it over lines)."""
    start = stdout.find("{")
    return json.loads(stdout[start:]) if start >= 0 else {}


def dafab_build(src: Path, dest: Path, *, extra: list[str], timeout: float, label: str) -> dict:
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "dafab_static.cli", "build", str(src), "--out", str(dest)]
    # Exit code 2: published, but some inputs were skipped (listed in the report).
    result = measure(
        [*cmd, "--quiet", "--json", *extra], timeout=timeout, label=label, ok_codes=(0, 2)
    )
    if "stdout" in result:
        report = _json_tail(result.pop("stdout"))
        result["seconds"] = report.get("seconds")
        result["items"] = report.get("items")
        result["objects"] = report.get("objects")
        result["bytes"] = report.get("bytes")
        result["partitions"] = report.get("partitions")
        result["skipped"] = len(report.get("skipped", []))
        result["warnings"] = len(report.get("warnings", []))
        if not report.get("ok", False):
            skipped = report.get("skipped", [])
            print(f"!! {label}: ok=false, {len(skipped)} inputs skipped:", file=sys.stderr)
            for line in skipped[:5]:
                print(f"   {line}", file=sys.stderr)
        result["exit_code"] = result["rc"]
        result["rc"] = 0 if report.get("published") else result["rc"]
    return result


def script(name: str, args: list[str], *, timeout: float, label: str) -> dict[str, Any]:
    result = measure([sys.executable, str(HERE / name), *args], timeout=timeout, label=label)
    if "stdout" in result:
        result.update(_json_tail(result.pop("stdout")))
    return result


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free


def _git(*args: str) -> str:
    """``git`` output, or "" where there is no git or no repository (a copied tree)."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True
        ).stdout
    except OSError:
        return ""


def facts(workdir: Path) -> dict[str, Any]:
    # Versions from package metadata: importing pyarrow here would make this process big, and
    # a child's ru_maxrss starts at its parent's size at fork.
    from importlib.metadata import version

    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    df = subprocess.run(
        ["df", "-h", str(workdir), tempfile.gettempdir()], capture_output=True, text=True
    ).stdout
    git = _git("rev-parse", "--short", "HEAD").strip()
    dirty = _git("status", "--porcelain", "--", "dafab_static").splitlines()
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024**2, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "orjson": version("orjson"),
        "pyarrow": version("pyarrow"),
        "stac_geoparquet": version("stac-geoparquet"),
        "pystac": version("pystac"),
        "dafab_static": version("dafab-static"),
        "git_head": git,
        "dafab_static_uncommitted_files": len(dirty),
        "dafab_static_sources_sha256": code_digest(),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")},
        "workdir": str(workdir),
        "tmpdir": tempfile.gettempdir(),
        "df": df.strip(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _rate(items: int | None, seconds: float | None) -> float | None:
    return round(items / seconds, 1) if items and seconds else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run (by work seconds), with every run's figures listed beside it."""
    good = [r for r in runs if r.get("rc") == 0]
    if not good:
        return runs[-1]
    good.sort(key=lambda r: r.get("seconds") or r["wall_s"])
    result = dict(good[len(good) // 2])
    result["repeats"] = len(runs)
    result["failed"] = len(runs) - len(good)
    result["seconds_all"] = [r.get("seconds") for r in runs if r.get("rc") == 0]
    result["wall_s_all"] = [r["wall_s"] for r in runs if r.get("rc") == 0]
    result["load_before_all"] = [r.get("load_before") for r in runs]
    result["code_all"] = sorted({r["code"] for r in runs if r.get("code")})
    return result


def bench_10k(workdir: Path, timeout: float, repeat: int, *, pystac: bool) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    out = workdir / "runs"
    print(f"== 10k real NAIP items (parquet), dafab and floor {repeat} times each", flush=True)
    ours_runs: list[dict[str, Any]] = []
    floor_runs: list[dict[str, Any]] = []
    # Every run writes to a new folder, and nothing is deleted until the whole benchmark
    # ends: right after tens of thousands of files are deleted, ext4 creates files several
    # times slower for a while (perf showed `ext4_create` -> `recently_deleted` scanning
    # the freed inodes), which would fall on whichever run came next.
    for k in range(repeat):
        dest = out / f"dafab-{k}"
        ours = dafab_build(NAIP_10K, dest, extra=[], timeout=timeout, label="dafab 10k")
        ours_runs.append(ours)
        _show("dafab build", ours)
        if ours["rc"] == 0:
            # The floor recreates the files of the build just made, right after it.
            floor = script(
                "file_floor.py",
                [str(dest), str(out / f"floor-{k}")],
                timeout=timeout,
                label="floor",
            )
            floor_runs.append(floor)
            _show("file floor", floor)
    runs["dafab_10k_parquet"] = summarize(ours_runs)
    if floor_runs:
        runs["floor_10k"] = summarize(floor_runs)
    novalid_runs = []
    for k in range(repeat):
        novalid = dafab_build(
            NAIP_10K,
            out / f"dafab-novalidate-{k}",
            extra=["--no-validate"],
            timeout=timeout,
            label="dafab 10k --no-validate",
        )
        novalid_runs.append(novalid)
        _show("dafab --no-validate", novalid)
    runs["dafab_10k_parquet_no_validate"] = summarize(novalid_runs)
    if pystac:
        pystac_dest = out / "pystac"
        shutil.rmtree(pystac_dest, ignore_errors=True)
        peer = script(
            "pystac_build.py", [str(NAIP_10K), str(pystac_dest)], timeout=timeout, label="pystac"
        )
        runs["pystac_10k"] = peer
        _show("pystac", peer)
    idx = script(
        "index_write.py", [str(NAIP_10K), str(out / "index")], timeout=timeout, label="index"
    )
    runs["index_10k"] = idx
    _show("index (best of 3)", idx)
    return runs


def bench_generated(n: int, workdir: Path, timeout: float, repeat: int) -> dict[str, Any]:
    need = n * BYTES_PER_ITEM_NEEDED
    free = min(disk_free(workdir), disk_free(Path(tempfile.gettempdir())))
    if free < need:
        msg = f"only {free / 1e9:.1f} GB free, {need / 1e9:.1f} GB needed"
        print(f"!! skipping {n} generated items: {msg}", file=sys.stderr)
        return {"rc": None, "error": msg}
    print(f"== {n} generated items (ndjson), {repeat} time(s)", flush=True)
    # In a child: the generator holds the 10k templates and pyarrow, and a later child's
    # ru_maxrss would start at this process's size.
    started = time.perf_counter()
    gen = [sys.executable, str(HERE / "generate_items.py"), str(n), "--workdir", str(workdir)]
    done = subprocess.run(gen, cwd=REPO, capture_output=True, text=True, check=False)
    generated_s = time.perf_counter() - started
    if done.returncode != 0:
        print(f"!! generating {n} items failed:\n{done.stderr[-4000:]}", file=sys.stderr)
        return {"rc": done.returncode, "error": done.stderr[-2000:]}
    src = Path(done.stdout.strip().splitlines()[-1])
    results = []
    for k in range(repeat):  # each to its own folder, kept until the end (see bench_10k)
        dest = workdir / "runs" / f"dafab-gen-{n}-{k}"
        result = dafab_build(src, dest, extra=[], timeout=timeout, label=f"dafab {n} ndjson")
        _show(f"dafab build {n}", result)
        results.append(result)
    summary = summarize(results)
    summary["input_bytes"] = src.stat().st_size
    summary["generate_or_cache_s"] = round(generated_s, 1)
    summary["disk_free_before_gb"] = round(free / 1e9, 1)
    return summary


def _show(label: str, run: dict[str, Any]) -> None:
    if run.get("rc") != 0:
        print(f"  {label:<22} FAILED", flush=True)
        return
    seconds = run.get("seconds")
    print(
        f"  {label:<22} wall {run['wall_s']:8.2f} s  work {seconds if seconds else '-':>8} s  "
        f"RSS {run['peak_rss_mb']:6.0f} MB (tree {run['peak_tree_pss_mb']:6.0f} MB PSS, "
        f"{run['processes']} procs)  cpu {run['tree_cpu_s']:8.2f} s  code {run['code']}",
        flush=True,
    )


def ratios(runs: dict[str, Any]) -> dict[str, Any]:
    """Each figure against its peer in this run, with the issue's target."""

    def ok(run: str) -> dict[str, Any] | None:
        r = runs.get(run)
        return r if r and r.get("rc") == 0 else None

    out: dict[str, Any] = {}
    ours = ok("dafab_10k_parquet")
    floor = ok("floor_10k")
    novalid = ok("dafab_10k_parquet_no_validate")
    peer = ok("pystac_10k")
    idx = ok("index_10k")
    if ours and floor:
        out["ours_over_floor"] = {
            "value": _ratio(ours["seconds"], floor["seconds"]),
            "target": f"<= {TARGET_FLOOR}",
            "best_over_best": _ratio(
                min(ours.get("seconds_all") or [ours["seconds"]]),
                min(floor.get("seconds_all") or [floor["seconds"]]),
            ),
            "wall_value": _ratio(ours["wall_s"], floor["wall_s"]),
        }
    if novalid and floor:
        out["ours_no_validate_over_floor"] = {
            "value": _ratio(novalid["seconds"], floor["seconds"]),
            "target": f"<= {TARGET_FLOOR}",
        }
    if ours and novalid:
        out["validation_share"] = {
            "value": round(1 - novalid["seconds"] / ours["seconds"], 3),
            "note": "share of the build's work time spent validating",
        }
    if ours and peer:
        out["pystac_over_ours"] = {
            "value": _ratio(peer["seconds"], ours["seconds"]),
            "target": f">= {TARGET_PYSTAC}",
            "wall_value": _ratio(peer["wall_s"], ours["wall_s"]),
        }
        out["pystac_save_over_ours"] = {"value": _ratio(peer["save_s"], ours["seconds"])}
        out["pystac_items_per_s"] = {"value": _rate(peer["items"], peer["seconds"])}
    if idx:
        out["index_ours_over_stac_geoparquet"] = {
            "value": _ratio(idx["ours_s"], idx["stac_geoparquet_s"]),
            "target": f"<= {TARGET_INDEX}",
        }
    base = ok("dafab_gen_10000")
    for n in (100_000, 1_000_000):
        run = ok(f"dafab_gen_{n}")
        if not run:
            continue
        per_item = run["seconds"] / n
        entry: dict[str, Any] = {"per_item_ms": round(per_item * 1e3, 4)}
        if base:
            entry["vs_10k_ndjson"] = _ratio(per_item, base["seconds"] / 10_000)
        if ours:
            entry["vs_10k_parquet"] = _ratio(per_item, ours["seconds"] / 10_000)
        entry["target"] = f"<= {TARGET_SCALING}"
        out[f"per_item_{n}"] = entry
        if n == 1_000_000:
            out["peak_rss_1m_mb"] = {
                "value": run["peak_tree_pss_mb"],
                "target": f"< {TARGET_RSS_MB}",
                "largest_process_mb": run["peak_rss_mb"],
                "tree_rss_mb": run["peak_tree_rss_mb"],
            }
            out["wall_1m_s"] = {"value": run["wall_s"], "target": f"< {TARGET_1M_S}"}
    return out


def _spread(run: dict[str, Any]) -> str:
    values = [v for v in run.get("seconds_all", []) if v is not None]
    if len(values) < 2:
        return ""
    return f"{min(values):.2f}-{max(values):.2f} ({len(values)})"


def table(runs: dict[str, Any]) -> str:
    rows = [
        (
            "run",
            "items",
            "wall s",
            "work s",
            "range (n)",
            "items/s",
            "RSS MB",
            "tree PSS MB",
            "tree cpu s",
        ),
    ]
    for name, run in runs.items():
        if run.get("rc") != 0:
            rows.append((name, "-", "FAILED", "", "", "", "", "", ""))
            continue
        if name == "index_10k":
            for who in ("ours", "stac_geoparquet"):
                rows.append(
                    (
                        f"index_10k[{who}] best of {run['repeat']}",
                        str(run["items"]),
                        "",
                        f"{run[who + '_s']:.3f}",
                        _spread({"seconds_all": run[who + "_all_s"]}),
                        f"{_rate(run['items'], run[who + '_s']):.0f}",
                        "",
                        "",
                        "",
                    )
                )
            continue
        items = run.get("items") or run.get("files")
        seconds = run.get("seconds")
        rows.append(
            (
                name if name != "floor_10k" else f"floor_10k ({run['files']} files)",
                str(items),
                f"{run['wall_s']:.2f}",
                f"{seconds:.3f}" if seconds is not None else "",
                _spread(run),
                f"{_rate(items, seconds):.0f}" if items and seconds else "",
                f"{run['peak_rss_mb']:.0f}",
                f"{run['peak_tree_pss_mb']:.0f}",
                f"{run['tree_cpu_s']:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10k,100k,1m", help="comma list of 10k, 100k, 1m")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dafab-bench")
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    parser.add_argument(
        "--no-pystac", action="store_true", help="skip the pystac peer (about 7 minutes)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each 10k build and floor (median kept)"
    )
    args = parser.parse_args()
    sizes = [s.strip().lower() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        sys.exit(f"error: --sizes {','.join(unknown)}: expected some of {', '.join(SIZES)}")
    if not NAIP_10K.exists():
        sys.exit(f"error: {NAIP_10K} is missing; the benchmark needs ../shared/data/stac-items/")
    args.workdir.mkdir(parents=True, exist_ok=True)
    info = facts(args.workdir)
    print(f"{info['date']}  {info['nproc']} x {info['cpu']}  python {info['python']}")
    print(info["df"], flush=True)
    snapshot = snapshot_package(args.workdir)
    check = subprocess.run(
        [sys.executable, "-c", "import dafab_static; print(dafab_static.__file__)"],
        cwd=CHILD["cwd"],
        env=CHILD["env"],
        capture_output=True,
        text=True,
        check=False,
    )
    print(f"children import {check.stdout.strip()} (a copy of the package)", flush=True)
    info["snapshot"] = str(snapshot)
    # Warm the page cache with the interpreter and package imports (untimed).
    subprocess.run(
        [sys.executable, "-m", "dafab_static.cli", "--version"],
        cwd=CHILD["cwd"],
        env=CHILD["env"],
        check=False,
    )
    started = time.perf_counter()
    runs: dict[str, Any] = {}
    if "10k" in sizes:
        runs.update(bench_10k(args.workdir, args.timeout, args.repeat, pystac=not args.no_pystac))
    # The 10k ndjson slice is the like-for-like baseline of the generated sizes.
    for n in sorted({10_000, *(SIZES[s] for s in sizes)}):
        repeat = args.repeat if n == 10_000 else 1
        runs[f"dafab_gen_{n}"] = bench_generated(n, args.workdir, args.timeout, repeat)
    shutil.rmtree(args.workdir / "runs", ignore_errors=True)
    codes = sorted({c for r in runs.values() for c in r.get("code_all", [r.get("code")]) if c})
    if len(codes) > 1:
        print(f"!! the package changed during the run: {codes}", file=sys.stderr)
    result = {
        "facts": info,
        "code_versions_measured": codes,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "total_s": round(time.perf_counter() - started, 1),
        "runs": runs,
        "ratios": ratios(runs),
    }
    print()
    print(table(runs))
    print()
    for name, entry in result["ratios"].items():
        print(f"  {name:<36} {json.dumps(entry)}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
