"""``dafab-static queryables``: JSON on stdout, one-line errors with exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import dafab_static


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dafab_static.cli", "queryables", *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("cli-queryables") / "cat"
    dafab_static.build([], str(dest), sample=True)
    return dest


def test_prints_the_catalog_queryables(catalog: Path) -> None:
    run = _cli(str(catalog))
    assert (run.returncode, run.stderr) == (0, "")
    assert json.loads(run.stdout) == json.loads((catalog / "queryables.json").read_bytes())


def test_prints_one_collection(catalog: Path) -> None:
    run = _cli(str(catalog / "catalog.json"), "--collection", "landsat-c2-l2")
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["title"] == "Queryables of landsat-c2-l2"
    assert doc["properties"]["platform"]["enum"] == ["landsat-8", "landsat-9"]
    on_disk = catalog / "sensors" / "landsat" / "landsat-c2-l2" / "queryables.json"
    assert doc == json.loads(on_disk.read_bytes())


def test_unknown_collection_is_one_line_and_exit_1(catalog: Path) -> None:
    run = _cli(str(catalog), "--collection", "nope")
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == (
        f"error: {catalog}: no collection 'nope' "
        "(collections: landsat-c2-l2, sentinel-2-l2a, sentinel-2-l2a-ndvi)\n"
    )


def test_missing_source_is_one_line_and_exit_1(tmp_path: Path) -> None:
    run = _cli(str(tmp_path / "nowhere"))
    assert (run.returncode, run.stdout) == (1, "")
    assert run.stderr == f"error: {tmp_path / 'nowhere'}: no such file or folder\n"


def test_a_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["a"], "view:off_nadir": pa.array([3.5], pa.float32())}), path)
    run = _cli(str(path))
    assert run.returncode == 0, run.stderr
    props = json.loads(run.stdout)["properties"]
    assert list(props) == ["id", "collection", "geometry", "datetime", "view:off_nadir"]
    assert props["view:off_nadir"] == {"type": "number"}  # view is not named: no description


def test_help() -> None:
    run = _cli("--help")
    assert run.returncode == 0
    assert "Usage:" in run.stdout and "--collection" in run.stdout
