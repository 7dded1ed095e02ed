"""kNN benchmark: ``dafab_static.search(near=...)`` against DuckDB brute force, in one run.

Data: N items (default 1M) with random 64-d unit vectors (fixed seed) in ``emb:bench``, built
directly as Arrow tables in the stac-geoparquet layout of ``index.to_table`` and written by
the project's index writer (``index.encode``: Hilbert order, 8192-row groups, zstd, GeoParquet
and stac-geoparquet metadata) as a real build lays them out: one Collection whose
``collection-mirror`` asset leads to ``index/year=Y/month=M/items.parquet`` (24 monthly
files) and their partitions manifest. Cached under ``--workdir`` (``/tmp/dafab-bench-knn``).

Queries, top 10 by cosine similarity of one seeded random query vector:

* ``knn``: no filter;
* ``knn_cql2``: after ``eo:cloud_cover < 30`` (30 % of the items);
* ``knn_bbox_time``: after a bbox over Europe and three months (about 0.3 % of them).

Ours returns ``ID_ONLY`` rows (the Fields extension's default set minus all but ``id``:
the 4 columns every item keeps, plus ``dafab:score``) as an Arrow table; DuckDB runs
``SELECT id, array_cosine_similarity(...) AS s FROM read_parquet(...) WHERE ...
ORDER BY s DESC, id LIMIT 10`` to Arrow. Each (engine, query)
runs in its own process: setup (imports, torch for ours; connect and LOAD spatial for
DuckDB) is timed apart, then the first query (cold: no footer cached, OS page cache warm)
and ``--repeat`` more (warm, median reported). Both must return the same ids in the same
order.

Usage::

    python benchmarks/bench_knn.py --json benchmarks/knn-results.json
    python benchmarks/bench_knn.py --size 100000 --repeat 3      # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # bench_build: the machine facts shared by the benchmarks
SEED = 20261130
DIM = 64
MODEL = "bench"
COLUMN = f"emb:{MODEL}"
MONTHS = [(2022 + m // 12, 1 + m % 12) for m in range(24)]
K = 10
TARGET = 0.5  # warm: ours / DuckDB, at most
EUROPE = (-10.0, 35.0, 30.0, 60.0)
SPRING = ("2023-03-01", "2023-05-31")

# The ids and scores alone: the Fields extension adds its default set to what is included,
# so the rest of that set is excluded (the same 4 columns the DuckDB query returns 2 of).
ID_ONLY = {
    "include": ["id"],
    "exclude": ["geometry", "bbox", "links", "assets", "properties.datetime",
                "properties.start_datetime", "properties.end_datetime"],
}  # fmt: skip

QUERIES: dict[str, dict[str, Any]] = {
    "knn": {"params": {}, "where": "true"},
    "knn_cql2": {
        "params": {"filter": '"eo:cloud_cover" < 30'},
        "where": '"eo:cloud_cover" < 30',
    },
    "knn_bbox_time": {
        "params": {"bbox": list(EUROPE), "datetime": "/".join(SPRING)},
        # The bbox covering prunes row groups by statistics (what a DuckDB user writes);
        # ST_Intersects gives the exact STAC answer. Both ends of datetime are inclusive.
        "where": (
            f"bbox.xmin <= {EUROPE[2]} AND bbox.xmax >= {EUROPE[0]} "
            f"AND bbox.ymin <= {EUROPE[3]} AND bbox.ymax >= {EUROPE[1]} "
            f"AND ST_Intersects(geometry, ST_MakeEnvelope({', '.join(map(str, EUROPE))})) "
            f"AND datetime BETWEEN TIMESTAMPTZ '{SPRING[0]}T00:00:00Z' "
            f"AND TIMESTAMPTZ '{SPRING[1]}T23:59:59.999999Z'"
        ),
    },
}


# --------------------------------------------------------------------------- data


def query_vector() -> list[float]:
    import numpy as np

    q = np.random.default_rng(SEED + 1).standard_normal(DIM)
    return (q / np.linalg.norm(q)).tolist()  # type: ignore[no-any-return]


def _template() -> Any:
    """The stac-geoparquet schema ``index.to_table`` gives such items (one example)."""
    from dafab_static import index

    example = {
        "type": "Feature", "stac_version": "1.1.0", "stac_extensions": [], "id": "x",
        "collection": MODEL,
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
        "bbox": [0.0, 0.0, 1.0, 1.0],
        "properties": {"datetime": "2022-01-01T00:00:00Z", "platform": "sentinel-2a",
                       "eo:cloud_cover": 1.5, COLUMN: [0.125] * DIM},
        "links": [],
        "assets": {"data": {"href": "https://example.com/x.tif", "type": "image/tiff",
                            "roles": ["data"]}},
    }  # fmt: skip
    return index.to_table([example, example]).schema


def _partition(n: int, year: int, month: int, start: int, rng: Any, schema: Any) -> Any:
    """``n`` items of one month as a stac-geoparquet table (columns built with numpy)."""
    import calendar
    import datetime as dt

    import numpy as np
    import pyarrow as pa
    import shapely

    def const(value: str) -> pa.Array:
        return pa.array([value]).take(pa.array(np.zeros(n, dtype=np.int64)))

    def empty_lists(kind: pa.DataType) -> pa.Array:
        return pa.ListArray.from_arrays(np.zeros(n + 1, dtype=np.int32), pa.nulls(0, kind))

    ids = [f"bench-{i:07d}" for i in range(start, start + n)]
    size = 0.1
    x0 = rng.uniform(-180.0, 180.0 - size, n)
    y0 = rng.uniform(-60.0, 75.0 - size, n)
    x1, y1 = x0 + size, y0 + size
    wkb = shapely.to_wkb(shapely.box(x0, y0, x1, y1), flavor="iso")
    first = dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)
    seconds = calendar.monthrange(year, month)[1] * 86400
    offsets = rng.integers(0, seconds, n) * 1_000_000
    micros = int(first.timestamp()) * 1_000_000 + offsets
    platforms = np.array(["sentinel-2a", "sentinel-2b", "landsat-8", "landsat-9"], dtype=object)
    vectors = rng.standard_normal((n, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    roles = pa.ListArray.from_arrays(np.arange(n + 1, dtype=np.int32), const("data"))
    data = pa.StructArray.from_arrays(
        [pa.array([f"https://example.com/bench/{i}.tif" for i in ids]), const("image/tiff"), roles],
        names=["href", "type", "roles"],
    )
    columns = {
        "type": const("Feature"),
        "stac_version": const("1.1.0"),
        "stac_extensions": empty_lists(pa.null()),
        "id": pa.array(ids),
        "collection": const(MODEL),
        "geometry": pa.array(list(wkb), pa.binary()),
        "bbox": pa.StructArray.from_arrays(
            [pa.array(v) for v in (x0, y0, x1, y1)], names=["xmin", "ymin", "xmax", "ymax"]
        ),
        "links": empty_lists(pa.null()),
        "assets": pa.StructArray.from_arrays([data], names=["data"]),
        "datetime": pa.array(micros, pa.timestamp("us", tz="UTC")),
        "platform": pa.array(platforms[rng.integers(0, 4, n)]),
        "eo:cloud_cover": pa.array(np.round(rng.uniform(0, 100, n), 2)),
        COLUMN: pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
    }
    arrays = [columns[f.name].cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def generate(n: int, root: Path) -> dict[str, Any]:
    """The catalog of ``n`` items under ``root`` (reused when its marker says so)."""
    marker = root / "generated.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("n") == n and info.get("seed") == SEED and info.get("vectors"):
            info["cached"] = True
            return info  # type: ignore[no-any-return]
    import shutil

    import numpy as np

    from dafab_static import index

    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    schema = _template()
    rng = np.random.default_rng(SEED)
    parts = []
    per_month = [n // len(MONTHS) + (i < n % len(MONTHS)) for i in range(len(MONTHS))]
    start = 0
    for (year, month), count in zip(MONTHS, per_month, strict=True):
        table = _partition(count, year, month, start, rng, schema)
        start += count
        table = table.take(index.hilbert_order(table))
        path = f"index/year={year}/month={month:02d}/items.parquet"
        data, part = index.encode(table, {"id": MODEL}, path=path)
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
        vectors = index.encode_vectors(table, parquet=data)  # the sidecar a build writes
        if vectors is not None:
            (root / index.vectors_path(path)).write_bytes(vectors)
        parts.append(part)
        print(f"   {path}: {count} items, {len(data) / 1e6:.1f} MB", file=sys.stderr, flush=True)
    (root / "index" / "_partitions.json").write_bytes(index.manifest(MODEL, parts, base="index"))
    collection = {
        "type": "Collection", "stac_version": "1.1.0", "id": MODEL,
        "description": "kNN benchmark: random 64-d unit vectors", "license": "other",
        "extent": {"spatial": {"bbox": [[-180.0, -60.0, 180.0, 75.0]]},
                   "temporal": {"interval": [["2022-01-01T00:00:00Z", "2023-12-31T23:59:59Z"]]}},
        "links": [],
        "assets": {"geoparquet": {"href": "index/", "type": "application/vnd.apache.parquet",
                                  "roles": ["collection-mirror"]}},
    }  # fmt: skip
    (root / "collection.json").write_text(json.dumps(collection, indent=2))
    info = {
        "n": n,
        "seed": SEED,
        "vectors": True,
        "files": len(parts),
        "bytes": sum(p.bytes for p in parts),
        "row_group_size": index.ROW_GROUP_SIZE,
        "seconds": round(time.perf_counter() - started, 1),
    }
    marker.write_text(json.dumps(info, indent=2) + "\n")
    info["cached"] = False
    return info


def plain_variant(root: Path, dest: Path) -> dict[str, Any]:
    """The same catalog with the vector column stored PLAIN and uncompressed (no dictionary,
    no zstd): what the decode costs without them. Other columns keep the writer's choices."""
    import shutil

    import pyarrow.parquet as pq

    from dafab_static import index

    marker = dest / "generated.json"
    source_info = json.loads((root / "generated.json").read_text())
    if marker.exists() and json.loads(marker.read_text()).get("from") == source_info:
        return {**json.loads(marker.read_text()), "cached": True}
    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    # No vectors sidecar here: this variant measures what reading the Parquet column costs.
    shutil.copytree(
        root, dest, ignore=shutil.ignore_patterns("*.parquet", "*.arrow", "generated.json")
    )
    total = 0
    for path in sorted(root.glob("index/year=*/month=*/items.parquet")):
        table = pq.read_table(path)
        out = dest / path.relative_to(root)
        others = [n for n in table.column_names if n != COLUMN]
        pq.write_table(
            table, out, row_group_size=index.ROW_GROUP_SIZE, write_statistics=True,
            use_dictionary=others, compression={**dict.fromkeys(others, "zstd"), COLUMN: "none"},
        )  # fmt: skip
        total += out.stat().st_size
    # The manifest's sizes and checksums describe the writer's files: drop the checksums
    # (they key the footer cache) and fix the sizes.
    manifest = json.loads((dest / "index" / "_partitions.json").read_text())
    for part in manifest["partitions"]:
        part["bytes"] = (dest / "index" / part["path"]).stat().st_size
        part.pop("checksum", None)
    (dest / "index" / "_partitions.json").write_text(json.dumps(manifest, indent=2))
    info = {"from": source_info, "bytes": total, "seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info, indent=2) + "\n")
    return {**info, "cached": False}


# --------------------------------------------------------------------------- engines (child)


def _duckdb(root: Path, workdir: Path) -> Any:
    import duckdb
    from bench_search import extension_dir

    con = duckdb.connect(config={"extension_directory": str(extension_dir(workdir))})
    con.execute("LOAD spatial")
    files = f"{root}/index/year=*/month=*/items.parquet"
    source = f"read_parquet('{files}', hive_partitioning = false)"
    q = query_vector()

    def run(name: str) -> list[tuple[str, float]]:
        sql = (
            f'SELECT id, array_cosine_similarity(CAST("{COLUMN}" AS FLOAT[{DIM}]), '
            f"$q::FLOAT[{DIM}]) AS s FROM {source} WHERE {QUERIES[name]['where']} "
            f"ORDER BY s DESC, id LIMIT {K}"
        )
        table = con.execute(sql, {"q": q}).to_arrow_table()
        return list(zip(table["id"].to_pylist(), table["s"].to_pylist(), strict=True))

    return run


def _dafab(root: Path, workdir: Path) -> Any:
    import torch  # noqa: F401  (the search imports it lazily; timed as setup, not as a query)

    import dafab_static

    q = query_vector()

    def run(name: str) -> list[tuple[str, float]]:
        params = QUERIES[name]["params"]
        result = dafab_static.search(str(root), near=q, k=K, fields=ID_ONLY, **params)
        table = result.to_arrow()
        return list(zip(table["id"].to_pylist(), table["dafab:score"].to_pylist(), strict=True))

    return run


def _floor(root: Path, workdir: Path) -> Any:
    """Not an engine: pyarrow decoding the vector column of every row group the query keeps
    unpruned (all of them), on the same 2 threads over files, nothing else. The floor of
    any Parquet-reading scan of ours."""
    from concurrent.futures import ThreadPoolExecutor

    from pyarrow._parquet import ParquetReader

    paths = sorted(str(p) for p in root.glob("index/year=*/month=*/items.parquet"))

    def decode(path: str) -> int:
        reader = ParquetReader()
        reader.open(path, pre_buffer=True)
        leaves = [i for i in range(reader.metadata.num_columns)
                  if reader.metadata.schema.column(i).path.startswith(COLUMN + ".")]  # fmt: skip
        rows = 0
        for group in range(reader.metadata.num_row_groups):
            rows += reader.read_row_group(group, column_indices=leaves).num_rows
        reader.close()
        return rows

    def run(name: str) -> list[tuple[str, float]]:
        with ThreadPoolExecutor(2) as pool:
            sum(pool.map(decode, paths))
        return []

    return run


ENGINES = {"dafab": _dafab, "duckdb": _duckdb, "floor": _floor}


def child(args: argparse.Namespace) -> None:
    """One engine, one query: setup, a cold run, ``--repeat`` warm runs; JSON on stdout."""
    sys.path.insert(0, str(HERE))
    started = time.perf_counter()
    run = ENGINES[args.engine](Path(args.root), Path(args.workdir))
    setup = time.perf_counter() - started
    times, answer = [], None
    for i in range(1 + args.repeat):
        started = time.perf_counter()
        got = run(args.query)
        times.append(time.perf_counter() - started)
        if i == 0:
            answer = got
    out = {
        "engine": args.engine,
        "query": args.query,
        "setup_ms": round(setup * 1000, 1),
        "cold_ms": round(times[0] * 1000, 1),
        "warm_ms": [round(t * 1000, 1) for t in times[1:]],
        "median_ms": round(statistics.median(times[1:]) * 1000, 1) if args.repeat else None,
        "ids": [i for i, _ in answer or []],
        "scores": [round(s, 6) for _, s in answer or []],
    }
    if args.engine == "dafab":  # where the cosine scores were computed (search/cosine.py)
        import torch

        out["scorer"] = "cuda" if torch.cuda.is_available() else "cpu"
    print(json.dumps(out))


# --------------------------------------------------------------------------- parent


def _facts(workdir: Path) -> dict[str, Any]:
    """The machine facts every benchmark records (``bench_build.facts``), plus the versions
    of this benchmark's engines."""
    from importlib.metadata import PackageNotFoundError, version

    from bench_build import facts

    versions = {}
    for package in ("torch", "duckdb"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:  # --engines without duckdb, e.g. on a GPU machine
            versions[package] = None
    return {**facts(workdir), "versions": versions}


def _run_child(engine: str, query: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", engine, "--query", query, "--root", str(root),
           "--workdir", str(args.workdir), "--repeat", str(args.repeat)]  # fmt: skip
    time.sleep(1)  # let the previous child's exit settle
    load = os.getloadavg()[0]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    lines = done.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("{"):
        print(done.stderr[-4000:], file=sys.stderr)
        return {"engine": engine, "query": query, "rc": done.returncode}
    # A child that printed its figures and then died at exit still counts, with its exit
    # code recorded: pyarrow can abort at interpreter exit ("terminate called without an
    # active exception", apache/arrow#34314), after the timed work is done.
    result: dict[str, Any] = json.loads(lines[-1])
    result["rc"] = done.returncode
    if done.returncode != 0:
        result["stderr_tail"] = done.stderr[-300:]
    result["load_before"] = round(load, 2)
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 1) if values else None


def compare(query: str, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Ours against DuckDB on one query: medians over the rounds, ratios, agreement."""
    answers = {tuple(r.get("ids", ())) for e in ("dafab", "duckdb") for r in runs.get(e, [])}
    # Agreement needs both engines; without DuckDB (--engines) there is nothing to agree with.
    both = "dafab" in runs and "duckdb" in runs
    row: dict[str, Any] = {
        "same_ids": len(answers) == 1 and bool(next(iter(answers))) if both else None
    }
    for kind in ("median_ms", "cold_ms", "setup_ms"):
        for engine, values in runs.items():
            row[f"{engine}_{kind}"] = _median(values, kind)
        a, b = row.get(f"dafab_{kind}"), row.get(f"duckdb_{kind}")
        row[f"ratio_{kind.removesuffix('_ms')}"] = round(a / b, 3) if a and b else None
    if row.get("floor_median_ms"):
        row["ratio_dafab_to_floor"] = round(row["dafab_median_ms"] / row["floor_median_ms"], 3)
    row["target_met"] = row["ratio_median"] is not None and row["ratio_median"] <= TARGET
    row["scorer"] = sorted({r["scorer"] for r in runs.get("dafab", []) if "scorer" in r})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="warm runs after the cold one")
    parser.add_argument("--rounds", type=int, default=3, help="children per engine and query")
    parser.add_argument("--workdir", default="/tmp/dafab-bench-knn")
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--queries", default=",".join(QUERIES))
    parser.add_argument("--variants", default="writer,plain", help="writer and/or plain")
    parser.add_argument(
        "--engines",
        default="dafab,duckdb,floor",
        help="which to run (the floor only on knn); without duckdb, no ratios",
    )
    parser.add_argument("--child", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.engine = args.child
        child(args)
        return
    workdir = Path(args.workdir)
    root = workdir / f"catalog-{args.size}"
    print(f"== data: {args.size} items under {root}", file=sys.stderr, flush=True)
    data = {"writer": generate(args.size, root)}
    roots = {"writer": root}
    if "plain" in args.variants:
        roots["plain"] = workdir / f"catalog-{args.size}-plain"
        data["plain"] = plain_variant(root, roots["plain"])
    print(f"   {json.dumps(data)}", file=sys.stderr, flush=True)
    runs: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for variant in args.variants.split(","):
        for query in args.queries.split(","):
            engines = [e for e in args.engines.split(",") if e != "floor" or query == "knn"]
            # Rounds alternate the engines, so that load from elsewhere on the machine
            # falls on both alike; each figure is the median over the rounds.
            got: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
            for _ in range(args.rounds):
                for engine in engines:
                    got[engine].append(_run_child(engine, query, args, roots[variant]))
            key = f"{variant}/{query}"
            runs[key] = got
            summary[key] = compare(query, got)
            print(f"{key:22s} {json.dumps(summary[key])}", file=sys.stderr, flush=True)
    report = {
        "command": " ".join(["python", *sys.argv]),
        "facts": _facts(workdir),
        "data": data,
        "k": K,
        "target_ratio_warm": TARGET,
        "summary": summary,
        "runs": runs,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))


def _agreement(same: bool | None) -> str:
    return "n/a" if same is None else "yes" if same else "NO"


def table(report: dict[str, Any]) -> str:
    """The RESULTS.md section's table."""
    lines = [
        "| files / query | ours warm ms | DuckDB warm ms | ratio warm | ours cold ms "
        "| DuckDB cold ms | ratio cold | decode floor ms | same ids (scorer) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, row in report["summary"].items():
        floor = row.get("floor_median_ms") or ""
        lines.append(
            f"| `{key}` | {row['dafab_median_ms']} | {row.get('duckdb_median_ms')} | "
            f"{row['ratio_median']} | {row['dafab_cold_ms']} | {row.get('duckdb_cold_ms')} | "
            f"{row['ratio_cold']} | {floor} | {_agreement(row['same_ids'])} "
            f"({', '.join(row['scorer'])}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
