"""Bad input: one clear line naming the file and the problem, never a traceback, never a
half-written catalog, never a path outside the destination."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

import dafab_static
from dafab_static.errors import InputError, ValidationError
from dafab_static.options import BuildOptions
from tests.cli.runner import cli

from .crawl import crawl, file_reader
from .generate import item, write_ndjson


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dafab_static.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _raster(path: Path, *, crs: str | None = "EPSG:32632") -> Path:
    import rasterio
    from affine import Affine

    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": 32,
        "height": 32,
        "count": 1,
        "dtype": "uint8",
    }
    if crs:
        profile.update(crs=crs, transform=Affine(10, 0, 500000, 0, -10, 5000000))
    with warnings.catch_warnings():
        # writing a deliberately non-georeferenced file is this fixture's point
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        ds = rasterio.open(path, "w", **profile)
    with ds:
        ds.write(np.full((1, 32, 32), 7, dtype="uint8"))
        ds.update_tags(TIFFTAG_DATETIME="2024:07:01 10:00:00")
    return path


@pytest.fixture
def bad_sources(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    good = [item(i) for i in range(3)]
    dup = item(1)
    slash = item(10, item_id="a/b")
    dots = item(11, item_id="..")
    no_time = item(12)
    no_time["properties"].pop("datetime")
    leap = item(18)
    leap["properties"]["datetime"] = "2016-12-31T23:59:60Z"  # RFC 3339 5.7 allows it
    schema = item(14)
    schema["properties"]["gsd"] = -10  # the core schema wants a positive number
    schema["properties"]["instruments"] = "msi"  # and an array here: one input, one line
    # Both pass the GeoJSON schemas; GEOS cannot read them (it raised, a traceback).
    pos4 = item(15)
    pos4["geometry"] = {"type": "Point", "coordinates": [10.0, 40.0, 5.0, 1.0]}
    unclosed = item(16)
    unclosed["geometry"]["coordinates"][0][-1] = [0.5, 0.5]
    # null datetime and a range that ends before it starts (published, the manifest
    # spanned 2024 to 2023 and validate failed)
    backwards = item(19)
    backwards["properties"].update(datetime=None, start_datetime="2024-01-01T00:00:00Z",
                                   end_datetime="2023-01-01T00:00:00Z")  # fmt: skip
    unclosed_no_bbox = item(17)
    unclosed_no_bbox["geometry"]["coordinates"][0][-1] = [0.5, 0.5]
    del unclosed_no_bbox["bbox"]
    out: dict[str, Path] = {
        "good": write_ndjson(src / "good.ndjson", good),
        "dup": write_ndjson(src / "dup.ndjson", [dup]),
        "slash": write_ndjson(src / "slash.ndjson", [slash]),
        "dots": write_ndjson(src / "dots.ndjson", [dots]),
        "no_time": write_ndjson(src / "no_time.ndjson", [no_time]),
        "schema": write_ndjson(src / "schema.ndjson", [schema]),
        "leap": write_ndjson(src / "leap.ndjson", [leap]),
        "pos4": write_ndjson(src / "pos4.ndjson", [pos4]),
        "unclosed": write_ndjson(src / "unclosed.ndjson", [unclosed, unclosed_no_bbox]),
        "backwards": write_ndjson(src / "backwards.ndjson", [backwards]),
    }
    (src / "not_stac.json").write_text(json.dumps({"hello": "world"}))
    out["not_stac"] = src / "not_stac.json"
    old = item(13)
    old["stac_version"] = "0.9.0"
    old["id"] = "old-0.9"
    (src / "old.json").write_text(json.dumps(old))
    out["old"] = src / "old.json"
    truncated = _raster(src / "truncated.tif")
    truncated.write_bytes(truncated.read_bytes()[:300])
    out["truncated"] = truncated
    (src / "corrupt.tif").write_bytes(b"II*\x00" + b"\x00garbage" * 20)
    out["corrupt"] = src / "corrupt.tif"
    out["nogeo"] = _raster(src / "nogeo.tif", crs=None)
    return out


def test_default_build_skips_each_bad_input_with_one_line(
    tmp_path: Path, bad_sources: dict[str, Path]
) -> None:
    dest = tmp_path / "cat"
    report = dafab_static.build([str(p) for p in bad_sources.values()], str(dest))
    assert report.published and not report.ok
    text = "\n".join(report.skipped)
    assert all("\n" not in s for s in report.skipped)
    expected = {
        "dup": "duplicate id",
        "slash": "would escape",
        "dots": "would escape",
        "no_time": "datetime",
        # the input, not the unwritten path; its second problem counted on the one line
        "schema": "(and 1 more problem)",
        "pos4": "a position has more than 3 numbers",
        "leap": "is a leap second, which stac-geoparquet's timestamps (POSIX time) cannot hold",
        "unclosed": "polygon ring not closed: RFC 7946 3.1.6",
        "backwards": "end_datetime '2023-01-01T00:00:00Z' is before start_datetime",
        "not_stac": "not STAC",
        "truncated": "truncated.tif",
        "corrupt": "corrupt.tif",
        "nogeo": "georeferenc",
    }
    for key, words in expected.items():
        lines = [s for s in report.skipped if bad_sources[key].name in s]
        assert lines, f"no skip line names {bad_sources[key].name}: {text}"
        assert any(words.lower() in s.lower() for s in lines), (key, lines)
    assert len(report.skipped) == len(expected) + 1  # unclosed.ndjson holds two items
    assert any("0.9.0" in w and "old-0.9" in w for w in report.warnings), report.warnings
    ids = sorted(
        d["id"]
        for d in crawl((dest / "catalog.json").as_uri(), file_reader).values()
        if d["type"] == "Feature"
    )
    assert ids == ["gen-0000000", "gen-0000001", "gen-0000002", "old-0.9"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat", "src"]


def test_strict_stops_at_first_problem_and_publishes_nothing(
    tmp_path: Path, bad_sources: dict[str, Path]
) -> None:
    dest = tmp_path / "cat"
    with pytest.raises(InputError):
        dafab_static.build(
            [str(bad_sources["good"]), str(bad_sources["dup"])],
            str(dest),
            options=BuildOptions(strict=True),
        )
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_strict_names_the_input_of_an_item_that_fails_its_schemas(
    tmp_path: Path, bad_sources: dict[str, Path]
) -> None:
    """Schema validation runs on the written document, but the error names the file the
    item was read from: the document's path is never published."""
    source = bad_sources["schema"]
    with pytest.raises(ValidationError, match=rf"^{source}: item 'gen-0000014': \$\.properties\."):
        dafab_static.build([str(source)], str(tmp_path / "cat"), options=BuildOptions(strict=True))


def test_cli_prints_one_line_errors_and_exits_non_zero(
    tmp_path: Path, bad_sources: dict[str, Path]
) -> None:
    run = _cli(
        "build", str(bad_sources["good"]), str(bad_sources["corrupt"]), "--out", str(tmp_path / "c")
    )
    assert run.returncode == 2
    assert "Traceback" not in run.stderr + run.stdout
    assert "corrupt.tif" in run.stdout
    strict = _cli(
        "build",
        str(bad_sources["good"]),
        str(bad_sources["slash"]),
        "--out",
        str(tmp_path / "d"),
        "--strict",
    )
    assert strict.returncode == 1
    assert "Traceback" not in strict.stderr
    assert strict.stderr.strip().count("\n") == 0
    assert "slash.ndjson" in strict.stderr and "'a/b'" in strict.stderr
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "option",
    [["--datetime", "yesterday"], ["--base-url", "not a url"], ["--max-children", "1"],
     ["--device", "cuda"]],  # a device without --pipeline would be silently ignored
)  # fmt: skip
def test_cli_bad_options_name_the_option(tmp_path: Path, option: list[str]) -> None:
    run = _cli("build", "--sample", "--out", str(tmp_path / "c"), *option)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert option[0].lstrip("-").split("-")[0] in run.stderr.replace("_", "-")


def test_unwritable_destination_is_one_line_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run = _cli("build", "--sample", "--out", str(blocker / "cat"))
    assert run.returncode == 1
    reason = f"cannot create the catalog there ({blocker} is a file, not a folder)"
    assert run.stderr == f"error: {blocker / 'cat'}: {reason}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_nothing_found_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no STAC items found"):
        dafab_static.build([str(empty)], str(tmp_path / "cat"))
    assert not (tmp_path / "cat").exists()
    # When every input was skipped, the one line says why (no summary follows it).
    missing = str(tmp_path / "nowhere.json")
    with pytest.raises(InputError) as caught:
        dafab_static.build([missing], str(tmp_path / "cat"))
    assert str(caught.value) == (
        f"no STAC items found in {missing}; 1 input skipped: {missing}: no such file or folder"
    )


AWKWARD = ["with space", "hash#tag", "what?", "100%", "ünïcødé-東京", "x" * 300, "semi;colon&amp"]


def test_awkward_ids_are_kept_and_encoded_safely(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "a.ndjson", [item(i, item_id=v) for i, v in enumerate(AWKWARD)])
    dest = tmp_path / "cat"
    report = dafab_static.build([str(src)], str(dest))
    assert report.ok, report.summary()
    objects = crawl((dest / "catalog.json").as_uri(), file_reader)
    features = {d["id"]: u for u, d in objects.items() if d["type"] == "Feature"}
    assert sorted(features) == sorted(AWKWARD)
    for url in features.values():
        path = Path(unquote(urlsplit(url).path))
        assert path.is_file() and dest in path.parents
        assert len(path.name.encode()) < 255
        assert all(ord(c) < 128 for c in path.name)
        assert "#" not in path.name and "?" not in path.name and " " not in path.name


def test_field_types_differing_between_months_are_a_clear_error(tmp_path: Path) -> None:
    """Each month alone is consistent; only unifying the collection's partitions finds it.
    (Within a month, the clashing items are set aside:
    test_what_one_index_file_cannot_hold_is_set_aside_in_one_line.)"""
    expected = (
        "error: collection 'gen': field 'assets.data.raster:bands[].nodata' is int64 in one "
        "file and string in another (partitions of different months)"
    )
    a, b = item(1, month=7), item(2, month=8)
    a["assets"]["data"]["raster:bands"] = [{"nodata": 0}]
    b["assets"]["data"]["raster:bands"] = [{"nodata": "nan"}]
    src = write_ndjson(tmp_path / "mixed.ndjson", [a, b])
    run = _cli("build", str(src), "--out", str(tmp_path / "cat"))
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith(expected)
    assert "cannot hold both" in run.stderr
    assert not (tmp_path / "cat").exists()


def test_ids_named_catalog_do_not_overwrite_the_tree(tmp_path: Path) -> None:
    """An item or a collection called "catalog" (in any case) would land on the catalog.json
    beside it; its file name takes a hash suffix instead, and its id stays as it is."""
    items = [item(1, item_id="catalog"), item(2, item_id="Catalog"), item(3)]
    items[2]["collection"] = "catalog"
    dest = tmp_path / "cat"
    report = dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", items))], str(dest))
    assert report.ok, report.summary()
    objects = crawl((dest / "catalog.json").as_uri(), file_reader)
    assert sorted(d["id"] for d in objects.values() if d["type"] == "Feature") == [
        "Catalog", "catalog", "gen-0000003",
    ]  # fmt: skip
    assert sorted(d["id"] for d in objects.values() if d["type"] == "Collection") == [
        "catalog",
        "gen",
    ]
    catalogs = [u for u, d in objects.items() if d["type"] == "Catalog"]
    assert all(u.endswith("/catalog.json") for u in catalogs)
    assert dafab_static.validate(str(dest)).ok


def test_a_build_whose_every_item_fails_validation_publishes_nothing(tmp_path: Path) -> None:
    """A hollow catalog (a root and no item) would replace the previous one: the build
    fails instead, saying why, and the previous catalog stays."""
    dest = tmp_path / "cat"
    assert dafab_static.build([str(write_ndjson(tmp_path / "ok.ndjson", [item(1)]))], str(dest)).ok
    before = sorted(p.relative_to(dest) for p in dest.rglob("*"))
    bad = item(2)
    bad["properties"]["gsd"] = -10  # the core schema wants a positive number
    with pytest.raises(
        InputError, match=r"^no STAC item of .* passes validation; 1 input skipped: "
    ):
        dafab_static.build([str(write_ndjson(tmp_path / "bad.ndjson", [bad]))], str(dest))
    assert sorted(p.relative_to(dest) for p in dest.rglob("*")) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("bbox3d", "bbox is 3-D here and 2-D in 2 other items of its collection and month"),
        ("uint64", "properties.count holds an integer beyond the 64 bits Parquet holds"),
        ("nodata", "assets.data.raster:bands[].nodata is text here and a number in 2 other"),
        ("own", "assets.data.raster:bands[].nodata holds a number and text; one Parquet"),
        ("list", "properties.qa:mixed[] holds a number and text; one Parquet column holds"),
    ],
)
def test_what_one_index_file_cannot_hold_is_set_aside_in_one_line(
    tmp_path: Path, change: str, message: str
) -> None:
    """Valid STAC that one Parquet column cannot hold (a field typed differently by two
    items of a month, or twice within one item): the item is skipped with a line naming its
    input, the field and why, and the others are published (the whole build failed). With
    --strict the build stops there."""
    a, b, c = item(1), item(2), item(3)
    for it in (a, c):
        it["assets"]["data"]["raster:bands"] = [{"nodata": 0}]
    if change == "bbox3d":
        b["bbox"] = [*b["bbox"][:2], 0.0, *b["bbox"][2:], 10.0]
    elif change == "uint64":
        b["properties"]["count"] = 2**63 + 5  # JSON allows it; int64 does not
    elif change == "nodata":
        b["assets"]["data"]["raster:bands"] = [{"nodata": "nan"}]
    elif change == "own":
        b["assets"]["data"]["raster:bands"] = [{"nodata": 0}, {"nodata": "nan"}]
    else:
        b["properties"]["qa:mixed"] = ["a", 1]
    src = write_ndjson(tmp_path / "a.ndjson", [a, b, c])
    run = cli("build", str(src), "--out", str(tmp_path / "cat"))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert f"skipped: {src}: item 'gen-0000002': {message}" in run.stdout + run.stderr
    tree = crawl((tmp_path / "cat" / "catalog.json").as_uri(), file_reader).values()
    ids = sorted(d["id"] for d in tree if d["type"] == "Feature")
    assert ids == ["gen-0000001", "gen-0000003"]
    assert dafab_static.validate(str(tmp_path / "cat")).ok
    strict = cli("build", str(src), "--out", str(tmp_path / "strict"), "--strict")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr
    assert strict.stderr.startswith(f"error: {src}: item 'gen-0000002': {message}")
    assert not (tmp_path / "strict").exists()


@pytest.mark.parametrize(
    ("depth", "message"),
    [
        (60, "{src}: item 'gen-0000002': properties.deep nests more than 32 levels deep; a "
             "Parquet column holds no deeper"),
        (300, "{src}:2: item 'gen-0000002': cannot be written as JSON (Recursion limit "
              "reached)"),
    ],
)  # fmt: skip
def test_a_value_nested_deeper_than_parquet_holds_is_skipped_in_one_line(
    tmp_path: Path, depth: int, message: str
) -> None:
    """60 levels: a file no reader could open was published, or, beside other items, the
    build ended in a traceback ("Parquet schema too deeply nested"); 300: orjson's."""
    deep: Any = 1
    for _ in range(depth):
        deep = [deep]
    a, b = item(1), item(2)
    b["properties"]["deep"] = deep
    src = write_ndjson(tmp_path / "a.ndjson", [a, b])
    run = cli("build", str(src), "--out", str(tmp_path / "cat"))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert f"skipped: {message.format(src=src)}" in run.stdout + run.stderr
    assert dafab_static.validate(str(tmp_path / "cat")).ok


def test_a_multipolygon_beside_polygons_is_no_type_clash(tmp_path: Path) -> None:
    """Geometries are WKB in the index: a MultiPolygon's coordinates nesting deeper than a
    Polygon's is no clash, and an item split at the antimeridian was set aside with the
    one whose nodata really clashed."""
    a, b, c = item(1), item(2), item(3)
    for it in (a, b, c):
        it["assets"]["data"]["raster:bands"] = [{"nodata": 0}]
    b["assets"]["data"]["raster:bands"] = [{"nodata": "nan"}]
    c["geometry"] = {"type": "MultiPolygon", "coordinates": [c["geometry"]["coordinates"]]}
    src = write_ndjson(tmp_path / "a.ndjson", [a, b, c])
    report = dafab_static.build([str(src)], str(tmp_path / "cat"))
    assert report.items == 2 and len(report.skipped) == 1, report.skipped
    assert "item 'gen-0000002': assets.data.raster:bands[].nodata" in report.skipped[0]
