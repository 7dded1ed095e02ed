"""``build --pipeline`` and ``pipeline run``: derived files land in the catalog, hrefs
resolve, the catalog validates, the index carries the new columns."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static.options import BuildOptions
from tests.cli.runner import cli
from tests.pipeline.scenes import halves, s2_name, write_scene

RECIPE = """
[pipeline]
name = "test"
collections = ["sentinel-2-*"]
[execution]
window = 64
[[steps]]
name = "indices"
[[steps]]
name = "thumbnail"
size = 32
[[steps]]
name = "tests.pipeline.plugin:Brightness"
"""


@pytest.fixture
def scenes(tmp_path: Path) -> Path:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for day in (3, 4):
        write_scene(folder / f"{s2_name(day)}.tif", halves(64, 64, "water", "vegetation"),
                    seed=day)  # fmt: skip
    return folder


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "test.toml"
    path.write_text(RECIPE)
    return path


def test_build_with_pipeline(scenes: Path, recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "cat"
    report = dafab_static.build([str(scenes)], str(out),
                                options=BuildOptions(pipeline=str(recipe), workers=1))  # fmt: skip
    assert report.ok, report.summary()
    assert report.pipeline.processed == 2
    items = sorted(out.rglob(f"{s2_name(3)}.json"))
    assert len(items) == 1
    item = json.loads(items[0].read_text())
    thumb = (items[0].parent / item["assets"]["thumbnail"]["href"]).resolve()
    assert thumb.is_file() and thumb.read_bytes().startswith(b"\x89PNG")
    assert thumb.is_relative_to(out.resolve())
    assert item["properties"]["test:red_mean"] > 0
    assert dafab_static.validate(str(out)).ok
    table = pq.read_table(next(out.rglob("*.parquet")))
    for column in ("dafab:ndvi_mean", "test:red_mean", "processing:datetime"):
        assert column in table.column_names
    found = dafab_static.search(str(out), filter="dafab:ndvi_mean > 0").to_arrow()
    assert sorted(found["id"].to_pylist()) == [s2_name(3), s2_name(4)]


def test_build_with_pipeline_to_s3(scenes: Path, recipe: Path, s3_bucket: str) -> None:
    import boto3

    dest = f"s3://{s3_bucket}/cat"
    report = dafab_static.build([str(scenes)], dest, options=BuildOptions(pipeline=str(recipe)))
    assert report.ok, report.summary()
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]}
    thumbs = sorted(k for k in keys if k.endswith("thumbnail.png"))
    assert len(thumbs) == 2 and all(k.startswith("cat/") for k in thumbs)


def test_bad_recipe_writes_nothing(scenes: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[steps]]\nname = 'indices'\nindices = ['evi']\n")
    out = tmp_path / "never"
    result = cli("build", str(scenes), "--out", str(out), "--pipeline", str(bad))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ")
    assert "bad.toml step 1 (indices): indices: unknown index 'evi'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_pipeline_run_command(scenes: Path, recipe: Path, tmp_path: Path) -> None:
    out = tmp_path / "derived"
    result = cli("pipeline", "run", str(recipe), str(scenes), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["scenes"], report["processed"], report["failed"]) == (2, 2, [])
    lines = [json.loads(line) for line in (out / "items.ndjson").read_text().splitlines()]
    assert sorted(i["id"] for i in lines) == [s2_name(3), s2_name(4)]
    for item in lines:  # relative to items.ndjson: the folder can move
        assert (out / item["assets"]["thumbnail"]["href"]).is_file()
    again = cli("pipeline", "run", str(recipe), str(scenes), "--out", str(out))
    assert again.returncode == 1 and "exists and is not an empty folder" in again.stderr
    inside_a_file = out / "items.ndjson" / "sub"
    blocked = cli("pipeline", "run", str(recipe), str(scenes), "--out", str(inside_a_file))
    assert blocked.returncode == 1
    assert blocked.stderr == (
        f"error: --out {inside_a_file}: cannot create the folder there "
        f"({out / 'items.ndjson'} is a file, not a folder)\n"
    )
    # validate reads the folder's items.ndjson: each names its collection and links to it
    # (STAC 1.1 allows the one only with the other), a Collection of the folder's own.
    checked = dafab_static.validate(str(out))
    assert checked.counts == {"Item": 2} and checked.ok, [str(p) for p in checked.problems]
    for item in lines:
        (link,) = [ln for ln in item["links"] if ln["rel"] == "collection"]
        assert (item["collection"], link["href"]) == (
            "sentinel-2-l2a",
            "collections/sentinel-2-l2a.json",
        )
    collection = json.loads((out / "collections" / "sentinel-2-l2a.json").read_text())
    assert collection["id"] == "sentinel-2-l2a"
    assert collection["extent"]["temporal"]["interval"] == [
        [lines[0]["properties"]["datetime"], lines[1]["properties"]["datetime"]]
    ]
    assert dafab_static.validate(str(out / "collections" / "sentinel-2-l2a.json")).ok
    # The output is a build source like any other, moved or not (run on a GPU node, built
    # elsewhere); its files are published with its items, as a build with --pipeline does.
    moved = tmp_path / "moved"
    out.rename(moved)
    for source in (moved / "items.ndjson", moved):
        cat = tmp_path / f"cat-{source.name}"
        report = dafab_static.build([str(source)], str(cat))
        assert report.ok and report.items == 2, report.summary()
        assert dafab_static.validate(str(cat)).ok
        scene = next(it for it in dafab_static.search(str(cat), ids=[s2_name(3)]))
        thumb = next(cat.rglob(f"{s2_name(3)}.json")).parent / scene["assets"]["thumbnail"]["href"]
        assert thumb.resolve().is_file() and cat in thumb.resolve().parents
        assert (cat / "assets" / "sentinel-2-l2a" / s2_name(3) / "thumbnail.png").is_file()
        # The build describes the collection itself, as from any items: not from the
        # folder's minimal Collection, which it does not read.
        (built,) = cat.rglob("sentinel-2-l2a.json")
        assert "pipeline run" not in json.loads(built.read_text())["description"]


def test_pipeline_steps_lists_builtins_and_devices_are_checked(scenes: Path, recipe: Path,
                                                               tmp_path: Path) -> None:  # fmt: skip
    result = cli("pipeline", "steps")
    assert {"indices", "thumbnail"} <= set(result.stdout.split())
    bad = cli("pipeline", "run", str(recipe), str(scenes), "--out", str(tmp_path / "o"),
              "--device", "tpu")  # fmt: skip
    assert bad.returncode == 1 and "--device 'tpu'" in bad.stderr
    bad = cli("pipeline", "run", str(recipe), str(scenes), "--out", str(tmp_path / "o"),
              "--workers", "-3")  # fmt: skip
    assert bad.stderr == "error: --workers -3: must be 0 (read in this thread) or more\n"
    assert bad.returncode == 1 and not (tmp_path / "o").exists()
    # Checked before anything is written beside --out: no hidden staging folder is left.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]
