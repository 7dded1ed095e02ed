"""``dafab-static search`` on the bundled sample: every output format, errors as one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli.runner import cli


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("search-cli") / "cat"
    run = cli("build", "--sample", "--out", str(dest), "--quiet")
    assert run.returncode == 0, run.stderr
    return dest


LANDSAT_JULY = ["LC09_L2SP_193028_20240702_02_T1", "LC09_L2SP_194028_20240709_02_T1",
                "LC08_L2SP_193028_20240710_02_T1"]  # fmt: skip


def test_ids_sorted_with_filter_and_datetime(sample: Path) -> None:
    run = cli("search", str(sample), "--collections", "landsat-c2-l2", "--datetime", "2024-07",
               "--sortby", "datetime", "--format", "ids")  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == LANDSAT_JULY


def test_ndjson_geojson_count_parquet(sample: Path, tmp_path: Path) -> None:
    query = ["--filter", "platform IN ('landsat-8','landsat-9') AND eo:cloud_cover < 50"]
    ndjson = cli("search", str(sample), *query)
    lines = [json.loads(line) for line in ndjson.stdout.splitlines()]
    assert {f["properties"]["platform"] for f in lines} <= {"landsat-8", "landsat-9"}
    assert all(f["properties"]["eo:cloud_cover"] < 50 for f in lines) and lines
    collection = json.loads(cli("search", str(sample), *query, "--format", "geojson").stdout)
    assert collection["type"] == "FeatureCollection"
    assert [f["id"] for f in collection["features"]] == [f["id"] for f in lines]
    assert cli("search", str(sample), *query, "--format", "count").stdout.strip() == str(len(lines))
    out = tmp_path / "hits.parquet"
    run = cli("search", str(sample), *query, "--format", "parquet", "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert pq.read_table(out).num_rows == len(lines)


def test_cql2_json_from_a_file_and_verbose(sample: Path, tmp_path: Path) -> None:
    query = tmp_path / "q.json"
    query.write_text(json.dumps({"op": "like", "args": [{"property": "id"}, "LC09%"]}))
    run = cli("search", str(sample), "--filter", f"@{query}", "--format", "ids", "--verbose")
    assert run.returncode == 0, run.stderr
    found = run.stdout.split()
    assert len(found) == 3 and all(i.startswith("LC09") for i in found)  # two July, one Sept
    assert "3 items" in run.stderr and "requests" in run.stderr and "bytes read" in run.stderr


def test_a_bare_filter_is_never_read_as_a_file(sample: Path, tmp_path: Path) -> None:
    """Only ``@FILE`` reads a file: a filter that names a file in the working directory is
    still the filter, and one longer than a file name may be is not given to the file system."""
    import os
    import subprocess
    import sys

    (tmp_path / "FALSE").write_text("TRUE")
    long = " OR ".join(["eo:cloud_cover < 0"] * 40 + ["id LIKE 'LC09%'"])
    assert len(long) > 255
    counts = []
    for text in ("FALSE", long):
        run = subprocess.run(
            [sys.executable, "-m", "dafab_static.cli", "search", str(sample), "--filter", text,
             "--format", "count"],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        counts.append(int(run.stdout))
    assert counts == [0, 3]


def test_geojson_carries_the_item_collection_counts(sample: Path) -> None:
    every = json.loads(cli("search", str(sample), "--format", "geojson").stdout)
    assert every["numberReturned"] == every["numberMatched"] == len(every["features"]) == 12
    cut = json.loads(cli("search", str(sample), "--limit", "5", "--format", "geojson").stdout)
    assert cut["numberReturned"] == 5 and "numberMatched" not in cut  # unknown without a count


def _bytes_read(stderr: str) -> int:
    line = next(ln for ln in stderr.splitlines() if "bytes read" in ln)
    return int(line.split(" requests, ")[1].split(" bytes")[0].replace(",", ""))


def test_ids_format_reads_the_id_column_only(sample: Path) -> None:
    ids = cli("search", str(sample), "--sortby", "id", "--format", "ids", "--verbose")
    full = cli("search", str(sample), "--sortby", "id", "--verbose")
    assert ids.returncode == 0 and full.returncode == 0, ids.stderr + full.stderr
    assert ids.stdout.split() == [json.loads(line)["id"] for line in full.stdout.splitlines()]
    assert len(ids.stdout.split()) == 12
    # Same footers (most of the bytes of these small files); no asset or link for ids.
    assert _bytes_read(ids.stderr) < _bytes_read(full.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bbox", "1,2,3"], "bbox: expected 4 or 6 numbers"),
        (["--datetime", "2024-99"], "datetime: '2024-99'"),
        (["--filter", "eo:cloud_cover >"], "CQL2 text, line 1 column"),
        (["--sortby", "nope"], "sortby: unknown property 'nope'"),
        (["--geometry-column", "geometr"], "has no column 'geometr'; did you mean 'geometry'?"),
        (["--format", "xml"], "--format must be one of"),
        (["--format", "parquet"], "--format parquet needs --output"),
        (["--filter", "@/nonexistent.json"], "--filter: no such file"),
        (["--intersects", "/nonexistent.geojson"], "--intersects: no such file /nonexistent"),
        (["--intersects", '{"type": "Point"'], "intersects: not GeoJSON"),
        (["--filter-crs", "EPSG:4326"], "filter-crs: only CRS84"),
    ],
)
def test_errors_are_one_line(sample: Path, args: list[str], message: str) -> None:
    run = cli("search", str(sample), *args)
    assert run.returncode == 1
    assert message in run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_output_is_replaced_whole_or_not_at_all(sample: Path, tmp_path: Path) -> None:
    """-o writes beside the file and renames: a search that fails (a bad filter found only
    when the files are read) leaves the file as it was; bad paths are one line."""
    keep = tmp_path / "keep.ndjson"
    keep.write_text("previous\n")
    run = cli("search", str(sample), "-o", str(keep), "--filter", "nosuch = 1")
    assert run.returncode == 1 and run.stderr.startswith("error: unknown property 'nosuch'")
    assert keep.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ndjson"]  # no temporary left
    keep.chmod(0o640)
    ok = cli("search", str(sample), "-o", str(keep), "--format", "ids")
    assert ok.returncode == 0 and len(keep.read_text().split()) == 12
    assert keep.stat().st_mode & 0o777 == 0o640  # the file it replaced kept its permissions
    new = tmp_path / "new.ndjson"
    old_umask = os.umask(0o022)
    try:
        assert cli("search", str(sample), "-o", str(new), "--format", "ids").returncode == 0
    finally:
        os.umask(old_umask)
    assert new.stat().st_mode & 0o777 == 0o644  # a new file as any other, not tempfile's 0600
    for output, message in [
        (tmp_path / "nodir" / "x.parquet", f"no such folder {tmp_path / 'nodir'}"),
        (tmp_path, "is a folder, not a file"),
        (Path("/dev/full"), "No space left on device"),
    ]:
        bad = cli("search", str(sample), "--format", "ndjson", "-o", str(output))
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr == f"error: --output {output}: {message}\n"


def test_output_never_overwrites_what_the_search_reads(sample: Path, tmp_path: Path) -> None:
    """-o naming one of the catalog's partitions rewrote it, and the catalog no longer
    matched its manifest."""
    partition = next(sample.glob("index/*/year=*/month=*/*.parquet"))
    before = partition.read_bytes()
    run = cli("search", str(sample), "--format", "parquet", "-o", str(partition))
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "an index file this search reads" in run.stderr
    assert partition.read_bytes() == before
    run = cli("search", str(partition), "--format", "parquet", "-o", str(partition))
    assert run.returncode == 1 and "an index file this search reads" in run.stderr
    assert partition.read_bytes() == before
    run = cli("search", str(sample), "--format", "ids", "-o", str(sample / "catalog.json"))
    assert run.returncode == 1 and "inside the catalog this search reads" in run.stderr
    assert json.loads((sample / "catalog.json").read_text())["type"] == "Catalog"
    assert cli("validate", str(sample)).returncode == 0
