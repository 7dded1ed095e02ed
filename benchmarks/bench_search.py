"""Search benchmark: dafab-static against rustac's DuckdbClient and plain DuckDB SQL, in one run.

See benchmarks/README.md ("Search benchmark") for what each figure means. The catalog is
built once from generated items (``generate_search_items.py``, cached under the workdir);
every engine then runs every query shape on the same index files, each (engine, shape) in its
own child process whose peak memory the parent measures, as ``bench_build.py`` does.

Usage::

    python benchmarks/bench_search.py --size 1m --json benchmarks/search-results.json
    python benchmarks/bench_search.py --size 100k            # a quick run
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_build  # noqa: E402  (the child runner, memory poller and machine facts)
from bench_build import CHILD, facts, measure, snapshot_package  # noqa: E402

REPO = HERE.parent
SIZES = {"100k": 100_000, "1m": 1_000_000}
ENGINES = ("dafab", "rustac", "duckdb")
PEERS = ("rustac", "duckdb")
MODES = ("warm", "cold", "s3")
# Index files of every collection; the build writes index/<collection>/year=Y/month=M/.
INDEX_GLOB = "index/*/year=*/month=*/items.parquet"
BUCKET = "bench"
DICTS_MAX = 5_000  # "results as STAC dicts for up to 5k items"

# Targets of issue 4, section 8.
TARGET_WORST = 1.0  # warm: ours / fastest peer on every shape, at most
TARGET_GEOMEAN = 0.5  # warm: geometric mean of those ratios, at most
TARGET_COLD = 1.0  # cold: ours / rustac, at most
TARGET_RSS_MB = 1024  # peak RSS at 1M, below (and no higher than DuckDB's)
TARGET_DICTS = 0.5  # STAC dicts: ours / rustac, at most


# --------------------------------------------------------------------------- query shapes

# An irregular pentagon in the Alps, where replica 4 of every collection lands
# (generate_items.replica_offset), and other replicas overlap at 1M.
POLYGON = [[5.0, 44.0], [6.5, 43.6], [7.5, 44.8], [6.6, 46.0], [5.2, 45.6], [5.0, 44.0]]


@dataclass(frozen=True)
class Shape:
    """One query: STAC API parameters (ours and rustac) and the same query in DuckDB SQL."""

    name: str
    params: dict[str, Any]
    where: str = "true"
    order: str = ""
    limit: int | None = None
    count: bool = False  # only the number of matches is asked for
    ordered: bool = False  # the order of the ids is part of the answer (sortby)
    dicts: bool = False  # also time the result as STAC dicts (at most DICTS_MAX rows)
    cli: list[str] = field(default_factory=list)  # `dafab-static search` options


def _bbox_sql(w: float, s: float, e: float, n: float) -> str:
    # The bbox covering lets DuckDB skip row groups by their statistics (what a DuckDB user
    # writes); ST_Intersects then gives the exact STAC answer, as rustac and we do.
    return (
        f"bbox.xmin <= {e} AND bbox.xmax >= {w} AND bbox.ymin <= {n} AND bbox.ymax >= {s} "
        f"AND ST_Intersects(geometry, ST_MakeEnvelope({w}, {s}, {e}, {n}))"
    )


def _time_sql(start: str, end: str) -> str:
    return f"datetime BETWEEN TIMESTAMPTZ '{start}' AND TIMESTAMPTZ '{end}'"


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def shapes(sample_ids: list[str]) -> list[Shape]:
    """The fixed query shapes; ``sample_ids`` are the generator's 10 seeded ids."""
    small = [-105.2, 39.5, -104.7, 39.9]  # Denver: replica 0 of the three collections
    europe = [-20.0, 30.0, 60.0, 70.0]
    june = ("2020-06-01T00:00:00Z", "2020-06-30T23:59:59Z")
    tropics = [-30.0, -40.0, 60.0, 40.0]
    years = ("2018-01-01T00:00:00Z", "2020-12-31T23:59:59Z")
    polygon = {"type": "Polygon", "coordinates": [POLYGON]}
    wkt = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in POLYGON) + "))"
    id_list = ", ".join(_sql_string(i) for i in sample_ids)
    like = "S2B_MSIL2A_20240828%"
    return [
        Shape(
            "small_bbox",
            {"bbox": small},
            where=_bbox_sql(*small),
            dicts=True,
            cli=["--bbox", ",".join(map(str, small))],
        ),
        Shape(
            "bbox_month",
            {"bbox": europe, "datetime": "/".join(june)},
            where=f"{_bbox_sql(*europe)} AND {_time_sql(*june)}",
            dicts=True,
            cli=["--bbox", ",".join(map(str, europe)), "--datetime", "/".join(june)],
        ),
        Shape(
            "property_eq",
            {"filter": "platform = 'landsat-7'"},
            where="platform = 'landsat-7'",
            dicts=True,
            cli=["--filter", "platform = 'landsat-7'"],
        ),
        Shape(
            "cloud_range",
            {"filter": '"eo:cloud_cover" BETWEEN 10 AND 12'},
            where='"eo:cloud_cover" BETWEEN 10 AND 12',
            cli=["--filter", '"eo:cloud_cover" BETWEEN 10 AND 12'],
        ),
        Shape(
            "intersects",
            {"intersects": polygon},
            where=f"ST_Intersects(geometry, ST_GeomFromText('{wkt}'))",
            dicts=True,
            cli=["--intersects", json.dumps(polygon)],
        ),
        Shape(
            "ids_10",
            {"ids": list(sample_ids)},
            where=f"id IN ({id_list})",
            dicts=True,
            cli=["--ids", ",".join(sample_ids)],
        ),
        Shape(
            "id_like",
            {"filter": f"id LIKE '{like}'"},
            where=f"id LIKE '{like}'",
            cli=["--filter", f"id LIKE '{like}'"],
        ),
        Shape(
            "bbox_time_prop_sort",
            {
                "bbox": tropics,
                "datetime": "/".join(years),
                "filter": '"eo:cloud_cover" < 5',
                # id breaks the (rare) ties of the generated whole-second datetimes.
                "sortby": ["-datetime", "id"],
                "limit": 100,
            },
            where=f'{_bbox_sql(*tropics)} AND {_time_sql(*years)} AND "eo:cloud_cover" < 5',
            order="datetime DESC, id ASC",
            limit=100,
            ordered=True,
            dicts=True,
            cli=[
                "--bbox",
                ",".join(map(str, tropics)),
                "--datetime",
                "/".join(years),
                "--filter",
                '"eo:cloud_cover" < 5',
                "--sortby",
                "-datetime,id",
                "--limit",
                "100",
            ],
        ),
        Shape("count_all", {}, count=True),
    ]


# --------------------------------------------------------------------------- engines (child)


@dataclass
class Target:
    """Where an engine reads: the catalog root (ours) and the index glob (peers)."""

    root: str
    glob: str
    s3_endpoint: str | None = None


def extension_dir(workdir: Path) -> Path:
    """DuckDB's extension directory, laid out from the ``duckdb-extension-*`` wheels.

    DuckDB cannot download extensions here. It (and rustac, which embeds DuckDB 1.5.5)
    loads them from ``DIR/v{version}/{platform}/{name}.duckdb_extension``; the wheels ship
    the files under ``duckdb_extension_{name}/extensions/v{version}/``.
    """
    import importlib

    import duckdb

    version = "v" + duckdb.__version__
    platform = duckdb.connect().sql("PRAGMA platform").fetchone()[0]
    root = workdir / "duckdb-extensions"
    folder = root / version / platform
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("spatial", "icu", "parquet", "httpfs"):
        dest = folder / f"{name}.duckdb_extension"
        if dest.exists():
            continue
        try:
            module = importlib.import_module(f"duckdb_extension_{name}")
        except ImportError:
            sys.exit(f"error: pip install duckdb-extension-{name}=={duckdb.__version__}")
        src = Path(module.__file__).parent / "extensions" / version / dest.name
        shutil.copy(src, dest)
    return root


def _s3_secret(endpoint: str) -> str:
    host = endpoint.split("://", 1)[1]
    return (
        "CREATE OR REPLACE SECRET bench (TYPE s3, KEY_ID 'testing', SECRET 'testing', "
        f"REGION 'us-east-1', ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)"
    )


def dafab_engine(target: Target, workdir: Path) -> Callable[[Shape, bool], Any]:
    """dafab-static's own search, on the catalog root (its indexes found via the manifest)."""
    import dafab_static

    def run(shape: Shape, dicts: bool) -> Any:
        result = dafab_static.search(target.root, **shape.params)
        if shape.count:
            return result.count()
        if dicts:
            return list(result)
        return result.to_arrow()

    return run


def rustac_engine(target: Target, workdir: Path) -> Callable[[Shape, bool], Any]:
    """rustac 0.9.17's ``DuckdbClient.search_to_arrow`` (full rows) on the index glob."""
    import rustac

    client = rustac.DuckdbClient(extension_directory=str(extension_dir(workdir)))
    if target.s3_endpoint:
        client.execute("LOAD httpfs")
        client.execute(_s3_secret(target.s3_endpoint))

    def run(shape: Shape, dicts: bool) -> Any:
        if dicts:
            return client.search(target.glob, **shape.params)
        if shape.count:
            # rustac has no count: the cheapest full search asks for the ids alone.
            return client.search_to_arrow(target.glob, include=["id"])
        return client.search_to_arrow(target.glob, **shape.params)

    return run


def duckdb_engine(target: Target, workdir: Path) -> Callable[[Shape, bool], Any]:
    """Plain DuckDB SQL over ``read_parquet`` with the spatial extension, fetched as Arrow."""
    import duckdb

    con = duckdb.connect(config={"extension_directory": str(extension_dir(workdir))})
    con.execute("LOAD spatial")
    if target.s3_endpoint:
        con.execute("LOAD httpfs")
        con.execute(_s3_secret(target.s3_endpoint))
    # The collections' schemas differ; hive columns (year, month) would not be item fields.
    source = f"read_parquet('{target.glob}', union_by_name = true, hive_partitioning = false)"

    def run(shape: Shape, dicts: bool) -> Any:
        if shape.count:
            return con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
        sql = f"SELECT * FROM {source} WHERE {shape.where}"
        if shape.order:
            sql += f" ORDER BY {shape.order}"
        if shape.limit:
            sql += f" LIMIT {shape.limit}"
        return con.execute(sql).to_arrow_table()

    return run


ENGINE_FACTORIES = {"dafab": dafab_engine, "rustac": rustac_engine, "duckdb": duckdb_engine}


def answer(shape: Shape, value: Any) -> dict[str, Any]:
    """What an engine returned, reduced to comparable facts: rows, columns and an id digest."""
    if isinstance(value, int):
        return {"rows": value}
    if isinstance(value, list):  # STAC dicts
        ids = [item["id"] for item in value]
        columns = None
    elif value is None:  # rustac's search_to_arrow when nothing matched
        ids, columns = [], None
    else:
        import pyarrow as pa

        table = value if isinstance(value, pa.Table) else pa.table(value)
        ids = table.column("id").to_pylist()
        columns = table.num_columns
    if shape.count:
        return {"rows": len(ids)}
    key = ids if shape.ordered else sorted(ids)
    return {
        "rows": len(ids),
        "columns": columns,
        "ids_sha256": hashlib.sha256("\n".join(key).encode()).hexdigest()[:16],
        "first_ids": key[:3],
    }


def child(args: argparse.Namespace) -> None:
    """Run one engine on one shape ``--repeat`` times in this process; print JSON."""
    generated = json.loads((Path(args.input) / "generated.json").read_text())
    shape = next(s for s in shapes(generated["sample_ids"]) if s.name == args.shape)
    target = Target(args.root, args.glob, args.s3_endpoint)
    started = time.perf_counter()
    run = ENGINE_FACTORIES[args.engine](target, Path(args.workdir))
    setup = time.perf_counter() - started
    times: list[float] = []
    result: dict[str, Any] = {"engine": args.engine, "shape": shape.name, "setup_s": setup}
    for i in range(args.repeat):
        started = time.perf_counter()
        value = run(shape, args.dicts)
        times.append(time.perf_counter() - started)
        if i == 0:
            result.update(answer(shape, value))
        del value
        # A peer that takes minutes is timed fewer times (the JSON says how many).
        if i == 0 and times[0] > args.slow:
            break
    result["times_s"] = [round(t, 4) for t in times]
    result["median_s"] = round(statistics.median(times), 4)
    print(json.dumps(result))


# --------------------------------------------------------------------------- data (parent)


def ensure_input(n: int, workdir: Path) -> tuple[Path, float]:
    """The generated input of ``n`` items (generated in a child: it imports pyarrow)."""
    started = time.perf_counter()
    gen = [sys.executable, str(HERE / "generate_search_items.py"), str(n)]
    gen += ["--workdir", str(workdir)]
    done = subprocess.run(gen, cwd=REPO, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"error: generating {n} items failed (exit {done.returncode})")
    return Path(done.stdout.strip().splitlines()[-1]), time.perf_counter() - started


def ensure_catalog(n: int, src: Path, workdir: Path, timeout: float) -> dict[str, Any]:
    """Build the catalog of ``n`` items once; later runs reuse it (``build.json`` marker)."""
    dest = workdir / f"catalog-{n}"
    marker = workdir / f"catalog-{n}.build.json"
    if marker.exists() and (dest / "catalog.json").exists():
        report = json.loads(marker.read_text())
        report["cached"] = True
        return report
    shutil.rmtree(dest, ignore_errors=True)
    inputs = sorted(str(p) for p in src.glob("*.parquet"))
    cmd = [sys.executable, "-m", "dafab_static.cli", "build", *inputs, "--out", str(dest)]
    print(f"== building the {n}-item catalog (about {n / 4000:.0f} s)", file=sys.stderr, flush=True)
    run = measure([*cmd, "--quiet", "--json"], timeout=timeout, label="build", ok_codes=(0, 2))
    if "stdout" not in run:
        sys.exit(f"error: the build failed: {run.get('error', '')[-500:]}")
    report = bench_build._json_tail(run.pop("stdout"))
    report.pop("warnings", None)
    report.update(run)
    files = (p for p in (dest / "index").rglob("*") if p.is_file())
    report["index_bytes"] = sum(p.stat().st_size for p in files)
    marker.write_text(json.dumps(report, indent=2) + "\n")
    report["cached"] = False
    return report


# --------------------------------------------------------------------------- S3 (parent)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def s3_env(endpoint: str) -> dict[str, str]:
    """The AWS environment of tests/conftest.py, pointing at the local server."""
    empty = tempfile.mkdtemp(prefix="dafab-bench-aws-")
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "AWS_CONFIG_FILE": os.path.join(empty, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(empty, "credentials"),
    }


UPLOAD = """
import sys, boto3
from pathlib import Path
root, bucket, prefix, endpoint = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket=bucket)
n = 0
# The catalog's JSON above the items (catalogs, collections, queryables) and every index
# file: the search needs nothing else, and a million item documents would take an hour.
for path in sorted(root.rglob("*")):
    rel = path.relative_to(root).as_posix()
    top = rel.split("/")[0] == "index" or rel.count("/") <= 2
    if path.is_file() and top:
        s3.upload_file(str(path), bucket, f"{prefix}/{rel}")
        n += 1
print(n)
"""


class S3Server:
    """moto's S3 server on 127.0.0.1 in its own process (it holds the objects in memory)."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        cmd = [moto or "moto_server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        sys.exit("error: moto_server did not start (pip install 'moto[server]')")

    def upload(self, catalog: Path, prefix: str) -> tuple[int, float]:
        started = time.perf_counter()
        env = {**os.environ, **s3_env(self.endpoint)}
        done = subprocess.run(
            [sys.executable, "-c", UPLOAD, str(catalog), BUCKET, prefix, self.endpoint],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            self.stop()
            sys.exit(f"error: upload to the S3 server failed:\n{done.stderr[-2000:]}")
        return int(done.stdout.strip()), time.perf_counter() - started

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --------------------------------------------------------------------------- runs (parent)


@dataclass
class Plan:
    input: Path
    workdir: Path
    root: str
    glob: str
    repeat: int
    slow: float
    timeout: float
    s3_endpoint: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _child_cmd(plan: Plan, engine: str, shape: Shape, *, repeat: int, dicts: bool) -> list[str]:
    cmd = [sys.executable, str(HERE / "bench_search.py"), "--child", engine, "--shape", shape.name]
    cmd += ["--input", str(plan.input), "--workdir", str(plan.workdir)]
    cmd += ["--root", plan.root, "--glob", plan.glob, "--repeat", str(repeat)]
    cmd += ["--slow", str(plan.slow)]
    if plan.s3_endpoint:
        cmd += ["--s3-endpoint", plan.s3_endpoint]
    if dicts:
        cmd.append("--dicts")
    return cmd


def _measure(cmd: list[str], plan: Plan, label: str) -> dict[str, Any]:
    saved = CHILD["env"]
    CHILD["env"] = {**saved, **plan.env}
    try:
        run = measure(cmd, timeout=plan.timeout, label=label)
    finally:
        CHILD["env"] = saved
    for key in ("cmd",):
        run[key] = run[key].replace(str(HERE) + "/", "benchmarks/")
    return run


def warm(plan: Plan, engine: str, shape: Shape, *, dicts: bool = False) -> dict[str, Any]:
    """``plan.repeat`` runs in one child process; median kept, child's peak memory."""
    cmd = _child_cmd(plan, engine, shape, repeat=plan.repeat, dicts=dicts)
    run = _measure(cmd, plan, f"{engine} {shape.name}")
    if "stdout" in run:
        run.update(bench_build._json_tail(run.pop("stdout")))
    return run


def cli_args(shape: Shape, output: str = os.devnull) -> list[str]:
    """`dafab-static search` options for ``shape``: the count, or full items as ndjson."""
    if shape.count:
        return ["--format", "count"]
    return [*shape.cli, "--format", "ndjson", "-o", output]


def _ndjson_answer(shape: Shape, path: Path) -> dict[str, Any]:
    """The answer of an ndjson output file (read line by line: this process stays small)."""
    ids = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                ids.append(json.loads(line)["id"])
    key = ids if shape.ordered else sorted(ids)
    return {
        "rows": len(ids),
        "ids_sha256": hashlib.sha256("\n".join(key).encode()).hexdigest()[:16],
        "first_ids": key[:3],
    }


def cold(plan: Plan, engine: str, shape: Shape) -> dict[str, Any]:
    """One query as a new process: our CLI, or a one-shot python process for a peer."""
    if engine == "dafab":
        # Full items as ndjson into a file of the page cache (cheaper to check than stdout).
        out = plan.workdir / "cold-output.ndjson"
        cmd = [sys.executable, "-m", "dafab_static.cli", "search", plan.root]
        run = _measure([*cmd, *cli_args(shape, str(out))], plan, f"cold {engine} {shape.name}")
        if "stdout" in run:
            text = run.pop("stdout").strip()
            if shape.count and text:
                run["rows"] = int(text.splitlines()[-1].strip())
            elif out.exists():
                run.update(_ndjson_answer(shape, out))
        out.unlink(missing_ok=True)
        return run
    run = _measure(_child_cmd(plan, engine, shape, repeat=1, dicts=False), plan, f"cold {engine}")
    if "stdout" in run:
        run.update(bench_build._json_tail(run.pop("stdout")))
    return run


def agree(shape: Shape, results: dict[str, dict[str, Any]]) -> str | None:
    """None when every engine that ran gave the same answer, else what differs."""
    keys = ("rows",) if shape.count else ("rows", "ids_sha256")
    answers = {e: tuple(r.get(k) for k in keys) for e, r in results.items() if r.get("rc") == 0}
    if len(set(answers.values())) <= 1:
        return None
    return "; ".join(f"{e}: {dict(zip(keys, a, strict=True))}" for e, a in answers.items())


def run_mode(mode: str, plan: Plan, engines: list[str], all_shapes: list[Shape]) -> dict[str, Any]:
    """Every shape with every engine in one mode: warm (local), cold (local) or s3 (warm)."""
    out: dict[str, Any] = {}
    for shape in all_shapes:
        print(f"== {mode}: {shape.name}", file=sys.stderr, flush=True)
        results: dict[str, Any] = {}
        for engine in engines:
            run = cold(plan, engine, shape) if mode == "cold" else warm(plan, engine, shape)
            results[engine] = run
            _show(engine, run, mode)
        entry: dict[str, Any] = {"engines": results}
        problem = agree(shape, results)
        entry["agree"] = problem is None
        if problem:
            print(f"!! {mode} {shape.name}: engines disagree: {problem}", file=sys.stderr)
            entry["disagreement"] = problem
        out[shape.name] = entry
    return out


def run_dicts(plan: Plan, all_shapes: list[Shape], rows: dict[str, int]) -> dict[str, Any]:
    """Results as STAC dicts (shapes of at most DICTS_MAX rows): ours iterated vs rustac."""
    out: dict[str, Any] = {}
    for shape in all_shapes:
        if not shape.dicts or not 0 < rows.get(shape.name, 0) <= DICTS_MAX:
            continue
        print(f"== dicts: {shape.name}", file=sys.stderr, flush=True)
        results = {e: warm(plan, e, shape, dicts=True) for e in ("dafab", "rustac")}
        for engine, run in results.items():
            _show(engine, run, "dicts")
        problem = agree(shape, results)
        out[shape.name] = {"engines": results, "agree": problem is None}
        if problem:
            out[shape.name]["disagreement"] = problem
            print(f"!! dicts {shape.name}: engines disagree: {problem}", file=sys.stderr)
    return out


def _show(engine: str, run: dict[str, Any], mode: str) -> None:
    if run.get("rc") != 0:
        print(f"   {engine:<7} FAILED", file=sys.stderr, flush=True)
        return
    median = None if mode == "cold" else run.get("median_s")
    print(
        f"   {engine:<7} {'median' if median is not None else 'wall'} "
        f"{median if median is not None else run['wall_s']:>9.3f} s  "
        f"rows {run.get('rows', '?'):>8}  n={len(run.get('times_s', [1]))}  "
        f"RSS {run['peak_rss_mb']:6.0f} MB  PSS {run['peak_tree_pss_mb']:6.0f} MB",
        file=sys.stderr,
        flush=True,
    )


# --------------------------------------------------------------------------- report


def _seconds(run: dict[str, Any] | None, mode: str) -> float | None:
    if not run or run.get("rc") != 0:
        return None
    return run["wall_s"] if mode == "cold" else run.get("median_s")


def _geomean(values: list[float]) -> float | None:
    return round(math.exp(sum(map(math.log, values)) / len(values)), 3) if values else None


def ratios(modes: dict[str, Any]) -> dict[str, Any]:
    """Ours against the fastest peer (warm, s3) or rustac (cold), per shape, with targets."""
    out: dict[str, Any] = {}
    for mode, shapes_ in modes.items():
        if mode == "dicts":
            per = {}
            for name, entry in shapes_.items():
                ours = _seconds(entry["engines"].get("dafab"), "warm")
                peer = _seconds(entry["engines"].get("rustac"), "warm")
                per[name] = round(ours / peer, 3) if ours and peer else None
            out["dicts"] = {"ours_over_rustac": per, "target": f"<= {TARGET_DICTS}"}
            continue
        per: dict[str, Any] = {}
        for name, entry in shapes_.items():
            ours = _seconds(entry["engines"].get("dafab"), mode)
            peers = {p: _seconds(entry["engines"].get(p), mode) for p in PEERS}
            if mode == "cold":
                peers = {"rustac": peers["rustac"]}
            known = {p: s for p, s in peers.items() if s}
            if not ours or not known:
                per[name] = None
                continue
            best = min(known, key=known.__getitem__)
            per[name] = {"ratio": round(ours / known[best], 3), "peer": best}
        values = [r["ratio"] for r in per.values() if r]
        entry = {"per_shape": per, "geomean": _geomean(values)}
        entry["worst"] = max(values) if values else None
        if mode == "cold":
            entry["target"] = f"every shape <= {TARGET_COLD} x rustac"
        else:
            entry["target"] = f"every shape <= {TARGET_WORST}, geomean <= {TARGET_GEOMEAN}"
        out[mode] = entry
    return out


def memory(modes: dict[str, Any]) -> dict[str, Any]:
    """Peak memory per engine over every child it ran (largest process RSS, tree PSS)."""
    out: dict[str, Any] = {}
    for mode, shapes_ in modes.items():
        for name, entry in shapes_.items():
            for engine, run in entry["engines"].items():
                if run.get("rc") != 0:
                    continue
                mem = out.setdefault(engine, {"peak_rss_mb": 0.0, "peak_pss_mb": 0.0})
                if run["peak_rss_mb"] > mem["peak_rss_mb"]:
                    mem["peak_rss_mb"] = run["peak_rss_mb"]
                    mem["rss_at"] = f"{mode}/{name}"
                mem["peak_pss_mb"] = max(mem["peak_pss_mb"], run["peak_tree_pss_mb"])
    return out


def table(mode: str, shapes_: dict[str, Any], ratio: dict[str, Any] | None) -> str:
    engines = list(next(iter(shapes_.values()))["engines"]) if shapes_ else []
    head = ["shape", "rows", *(f"{e} s" for e in engines), "ours / fastest peer", "agree"]
    if mode in ("cold", "dicts"):
        head[-2] = "ours / rustac"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, entry in shapes_.items():
        runs = entry["engines"]
        rows = next((r.get("rows") for r in runs.values() if r.get("rows") is not None), "")
        cells = [name, f"{rows:,}" if isinstance(rows, int) else str(rows)]
        for engine in engines:
            run = runs[engine]
            seconds = _seconds(run, "cold" if mode == "cold" else "warm")
            if seconds is None:
                cells.append("error" if run.get("rc") not in (0, None) else "-")
            else:
                n = len(run.get("times_s", [])) if mode != "cold" else 1
                cells.append(f"{seconds:.3f}" + (f" (n={n})" if mode != "cold" else ""))
        if mode == "dicts":
            r = (ratio or {}).get("ours_over_rustac", {}).get(name)
        else:
            r = ((ratio or {}).get("per_shape") or {}).get(name)
            r = f"{r['ratio']:.3f} ({r['peer']})" if r else None
        cells.append(str(r) if r is not None else "-")
        cells.append({True: "yes", False: "**NO**"}.get(entry.get("agree"), "-"))
        lines.append("| " + " | ".join(cells) + " |")
    if ratio and ratio.get("geomean") is not None:
        lines.append(f"\ngeomean {ratio['geomean']}, worst {ratio['worst']} ({ratio['target']})")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="100k", choices=list(SIZES))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "dafab-bench-search"
    )
    parser.add_argument("--json", type=Path, help="write all results here")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma list of engines")
    parser.add_argument("--modes", default=",".join(MODES), help="comma list: warm,cold,s3")
    parser.add_argument("--shapes", default="", help="comma list of shapes (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per child (median)")
    parser.add_argument(
        "--slow", type=float, default=60.0, help="a first run slower than this is not repeated"
    )
    parser.add_argument(
        "--s3-size", choices=list(SIZES), help="catalog size for the s3 mode (default --size)"
    )
    parser.add_argument("--no-dicts", action="store_true", help="skip the STAC-dicts runs")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    # Child mode (internal): one engine, one shape.
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    for name in ("--shape", "--input", "--root", "--glob", "--s3-endpoint"):
        parser.add_argument(name, help=argparse.SUPPRESS)
    parser.add_argument("--dicts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.engine = args.child
        child(args)
        return
    bench(args)


def bench(args: argparse.Namespace) -> None:
    engines = [e for e in args.engines.split(",") if e]
    modes = [m for m in args.modes.split(",") if m]
    for value, known, what in ((engines, ENGINES, "--engines"), (modes, MODES, "--modes")):
        unknown = sorted(set(value) - set(known))
        if unknown:
            sys.exit(f"error: {what} {','.join(unknown)}: expected some of {', '.join(known)}")
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    n = SIZES[args.size]
    info = facts(workdir)
    print(f"{info['date']}  {info['nproc']} x {info['cpu']}  python {info['python']}")
    print(info["df"], flush=True)
    snapshot = snapshot_package(workdir)
    info["snapshot"] = str(snapshot)
    from importlib.metadata import version

    info["versions"] = {p: version(p) for p in ("rustac", "duckdb", "moto", "shapely", "boto3")}
    extension_dir(workdir)  # fails early, with the pip line, when a wheel is missing
    started = time.perf_counter()
    data: dict[str, Any] = {}
    catalogs: dict[int, Path] = {}
    sizes = {n, SIZES[args.s3_size]} if "s3" in modes and args.s3_size else {n}
    for size in sorted(sizes):
        src, gen_s = ensure_input(size, workdir)
        generated = json.loads((src / "generated.json").read_text())
        build = ensure_catalog(size, src, workdir, args.timeout)
        data[str(size)] = {
            "generated": generated,
            "generate_or_cache_s": round(gen_s, 1),
            "input_bytes": sum(p.stat().st_size for p in src.glob("*.parquet")),
            "build": build,
        }
        catalogs[size] = src
    src = catalogs[n]
    all_shapes = shapes(json.loads((src / "generated.json").read_text())["sample_ids"])
    if args.shapes:
        wanted = set(args.shapes.split(","))
        all_shapes = [s for s in all_shapes if s.name in wanted]
    catalog = workdir / f"catalog-{n}"
    plan = Plan(
        input=src,
        workdir=workdir,
        root=str(catalog),
        glob=str(catalog / INDEX_GLOB),
        repeat=args.repeat,
        slow=args.slow,
        timeout=args.timeout,
    )
    results: dict[str, Any] = {}
    for mode in modes:
        if mode == "s3":
            continue
        results[mode] = run_mode(mode, plan, engines, all_shapes)
    if "warm" in results and not args.no_dicts and "dafab" in engines and "rustac" in engines:
        rows = {
            k: max(r.get("rows") or 0 for r in v["engines"].values())
            for k, v in results["warm"].items()
        }
        results["dicts"] = run_dicts(plan, all_shapes, rows)
    s3_info: dict[str, Any] = {}
    if "s3" in modes:
        s3_n = SIZES[args.s3_size or args.size]
        server = S3Server()
        try:
            objects, upload_s = server.upload(workdir / f"catalog-{s3_n}", f"catalog-{s3_n}")
            s3_info = {"items": s3_n, "objects": objects, "upload_s": round(upload_s, 1)}
            print(f"== s3: {objects} objects uploaded in {upload_s:.0f} s", flush=True)
            s3_src = catalogs[s3_n]
            s3_plan = Plan(
                input=s3_src,
                workdir=workdir,
                root=f"s3://{BUCKET}/catalog-{s3_n}",
                glob=f"s3://{BUCKET}/catalog-{s3_n}/{INDEX_GLOB}",
                repeat=args.repeat,
                slow=args.slow,
                timeout=args.timeout,
                s3_endpoint=server.endpoint,
                env=s3_env(server.endpoint),
            )
            s3_shapes = shapes(json.loads((s3_src / "generated.json").read_text())["sample_ids"])
            s3_shapes = [s for s in s3_shapes if s.name in {x.name for x in all_shapes}]
            results["s3"] = run_mode("s3", s3_plan, engines, s3_shapes)
        finally:
            server.stop()
    codes = sorted(
        {
            r.get("code")
            for mode in results.values()
            for entry in mode.values()
            for r in entry["engines"].values()
            if r.get("code")
        }
    )
    summary = {
        "facts": info,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "code_versions_measured": codes,
        "size": n,
        "data": data,
        "s3": s3_info,
        "shapes": [
            {k: v for k, v in vars(s).items() if k != "cli"} | {"cli": cli_args(s)}
            for s in all_shapes
        ],
        "total_s": round(time.perf_counter() - started, 1),
        "results": results,
        "ratios": ratios(results),
        "memory": memory(results),
    }
    print()
    for mode, shapes_ in results.items():
        print(f"### {mode} ({n if mode != 's3' else s3_info.get('items')} items)\n")
        print(table(mode, shapes_, summary["ratios"].get(mode)))
        print()
    print("### peak memory per engine (MB)\n")
    print("| engine | largest process RSS | tree PSS |\n|---|---|---|")
    for engine, mem in summary["memory"].items():
        print(f"| {engine} | {mem['peak_rss_mb']:.0f} | {mem['peak_pss_mb']:.0f} |")
    disagree = [
        f"{mode}/{name}"
        for mode, shapes_ in results.items()
        for name, e in shapes_.items()
        if e.get("agree") is False
    ]
    if disagree:
        print(f"\n!! engines disagree on {', '.join(disagree)}: those figures are invalid")
    summary["disagreements"] = disagree
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
