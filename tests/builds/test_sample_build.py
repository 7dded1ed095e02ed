"""The bundled sample, built end to end into a folder: layout, links, index, validity."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pyarrow.parquet as pq
import pytest

import dafab_static
from dafab_static.options import BuildOptions
from tests.padding import drop_padding

from .crawl import crawl, file_reader, join, link


@pytest.fixture(scope="module")
def sample_catalog(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dafab_static.BuildReport]:
    dest = tmp_path_factory.mktemp("sample") / "catalog"
    report = dafab_static.build([], str(dest), sample=True)
    return dest, report


@pytest.fixture(scope="module")
def objects(sample_catalog: tuple[Path, Any]) -> dict[str, dict[str, Any]]:
    dest, _ = sample_catalog
    return crawl((dest / "catalog.json").as_uri(), file_reader)


def test_report_counts(sample_catalog: tuple[Path, dafab_static.BuildReport]) -> None:
    _, report = sample_catalog
    assert report.published and report.ok, report.summary()
    assert report.skipped == []
    from dafab_static.sample import write_sample

    manifest = write_sample(sample_catalog[0].parent / "again")
    expected = {cid: len(ids) for cid, ids in manifest.items_by_collection.items()}
    assert report.collections == expected
    assert report.items == sum(expected.values())


def test_layout_has_every_part(sample_catalog: tuple[Path, Any]) -> None:
    dest, _ = sample_catalog
    assert (dest / "catalog.json").is_file()
    assert (dest / "sensors" / "catalog.json").is_file()
    assert (dest / "sensors" / "sentinel-2" / "catalog.json").is_file()
    assert (dest / "sensors" / "sentinel-2" / "sentinel-2-l2a.json").is_file()
    assert (dest / "sensors" / "landsat" / "landsat-c2-l2.json").is_file()
    assert (dest / "derived" / "catalog.json").is_file()
    assert sorted(
        p.name for p in (dest / "sensors" / "sentinel-2" / "sentinel-2-l2a").iterdir()
    ) == ["2024", "queryables.json"]
    months = sorted(
        p.name
        for p in (dest / "sensors" / "sentinel-2" / "sentinel-2-l2a" / "2024").iterdir()
        if p.is_dir()
    )
    assert len(months) >= 2
    assert list((dest / "index" / "sentinel-2-l2a").glob("year=2024/month=*/items.parquet"))


def test_derived_product_links_the_item_it_came_from(sample_catalog: tuple[Path, Any]) -> None:
    """STAC's ``derived_from`` names a STAC entity: the NDVI item's link to the scene's
    GeoTIFF points at the scene's item in the tree (it pointed at the GeoTIFF)."""
    dest, _ = sample_catalog
    (ndvi,) = (dest / "derived").rglob("*_NDVI.json")
    (link,) = [ln for ln in json.loads(ndvi.read_text())["links"] if ln["rel"] == "derived_from"]
    assert link["type"] == "application/geo+json"
    source = json.loads((ndvi.parent / link["href"]).resolve().read_text())
    assert source["type"] == "Feature" and source["id"] == link["title"]
    assert source["collection"] == "sentinel-2-l2a"


def test_every_item_reachable_and_every_object_leads_home(
    sample_catalog: tuple[Path, dafab_static.BuildReport], objects: dict[str, dict[str, Any]]
) -> None:
    dest, report = sample_catalog
    root_url = (dest / "catalog.json").as_uri()
    items = {u: d for u, d in objects.items() if d["type"] == "Feature"}
    assert len(items) == report.items
    on_disk = [p for p in dest.rglob("*.json") if not {"index", "sample"} & set(p.parts)]
    features = [p for p in on_disk if b'"type": "Feature"' in p.read_bytes()]
    assert len(features) == report.items
    for url, doc in objects.items():
        assert join(url, link(doc, "root")["href"]) == root_url
        hops = 0
        while url != root_url:
            url = join(url, link(objects[url], "parent")["href"])
            assert url in objects
            hops += 1
            assert hops < 12
    for url, doc in items.items():
        collection = objects[urljoin(url, link(doc, "collection")["href"])]
        assert collection["type"] == "Collection" and collection["id"] == doc["collection"]


def test_no_self_links_without_base_url(objects: dict[str, dict[str, Any]]) -> None:
    assert all(ln["rel"] != "self" for d in objects.values() for ln in d["links"])


def test_tree_and_index_agree(
    sample_catalog: tuple[Path, Any], objects: dict[str, dict[str, Any]]
) -> None:
    from stac_geoparquet.arrow import stac_table_to_items

    for url, doc in objects.items():
        if doc["type"] != "Collection":
            continue
        mirror = doc["assets"]["geoparquet"]
        assert mirror["roles"] == ["collection-mirror"]
        assert mirror["type"] == "application/vnd.apache.parquet"
        folder = Path(urljoin(url, mirror["href"])[len("file://") :])
        tables = [
            pq.read_table(io.BytesIO(p.read_bytes())) for p in sorted(folder.rglob("*.parquet"))
        ]
        from_index = {it["id"]: drop_padding(it) for t in tables for it in stac_table_to_items(t)}
        from_tree = {
            d["id"]: d
            for d in objects.values()
            if d.get("collection") == doc["id"] and d["type"] == "Feature"
        }
        assert sorted(from_index) == sorted(from_tree)
        for item_id, item in from_tree.items():
            assert _comparable(from_index[item_id]) == _comparable(item)
        # The asset says no spec version the files' own metadata contradicts (it said
        # "stac-geoparquet 1.1.0" beside files recording 1.0.0).
        recorded = {json.loads(t.schema.metadata[b"stac-geoparquet"])["version"] for t in tables}
        stated = set(re.findall(r"\d+\.\d+\.\d+", mirror.get("description", "")))
        assert stated <= recorded, (stated, recorded)


_TIMES = ("datetime", "start_datetime", "end_datetime", "created", "updated")


def _comparable(item: dict[str, Any]) -> dict[str, Any]:
    """The item with its timestamps parsed: Parquet stores instants, not their spelling."""
    import datetime as dt

    out = dict(item)
    out["properties"] = {
        k: dt.datetime.fromisoformat(v.replace("Z", "+00:00")) if k in _TIMES and v else v
        for k, v in item["properties"].items()
    }
    return out


def test_build_is_deterministic(tmp_path: Path, sample_catalog: tuple[Path, Any]) -> None:
    first, _ = sample_catalog
    second = tmp_path / "again"
    dafab_static.build([], str(second), sample=True)
    names = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert names == sorted(
        p.relative_to(second).as_posix() for p in second.rglob("*") if p.is_file()
    )
    for name in names:
        if name == ".dafab-release.json":
            continue
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_source_date_epoch_fixes_the_recorded_build_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    dafab_static.build([], str(tmp_path / "a"), sample=True)
    dafab_static.build([], str(tmp_path / "b"), sample=True)
    a = (tmp_path / "a" / ".dafab-release.json").read_bytes()
    assert a == (tmp_path / "b" / ".dafab-release.json").read_bytes()
    assert b'"built": "2023-11-14T22:13:20Z"' in a


def test_base_url_makes_self_links_absolute(tmp_path: Path) -> None:
    dest = tmp_path / "pub"
    dafab_static.build(
        [], str(dest), sample=True, options=BuildOptions(base_url="https://example.com/stac/")
    )
    objects = crawl((dest / "catalog.json").as_uri(), file_reader)
    root = objects[(dest / "catalog.json").as_uri()]
    assert link(root, "self")["href"] == "https://example.com/stac/catalog.json"
    for url, doc in objects.items():
        rel = url[len(dest.as_uri()) + 1 :]
        assert link(doc, "self")["href"] == f"https://example.com/stac/{rel}"


def test_collections_have_extent_summaries_and_manifest(
    objects: dict[str, dict[str, Any]], sample_catalog: tuple[Path, Any]
) -> None:
    import json

    collections = {d["id"]: (u, d) for u, d in objects.items() if d["type"] == "Collection"}
    url, s2 = collections["sentinel-2-l2a"]
    bbox = s2["extent"]["spatial"]["bbox"]
    assert len(bbox) == 1 and len(bbox[0]) == 4
    start, end = s2["extent"]["temporal"]["interval"][0]
    assert start < end
    assert "platform" in s2["summaries"]
    manifest_url = urljoin(url, s2["assets"]["partitions"]["href"])
    manifest = json.loads(file_reader(manifest_url))
    assert manifest["rows"] == sample_catalog[1].collections["sentinel-2-l2a"]
    for part in manifest["partitions"]:
        data = file_reader(urljoin(manifest_url, part["path"]))
        import hashlib

        assert part["bytes"] == len(data)
        assert part["checksum"] == "1220" + hashlib.sha256(data).hexdigest()
        assert pq.ParquetFile(io.BytesIO(data)).metadata.num_rows == part["rows"]


def test_validate_accepts_the_build(sample_catalog: tuple[Path, Any]) -> None:
    report = dafab_static.validate(str(sample_catalog[0]))
    errors = [p for p in report.problems if p.severity == "error"]
    assert errors == []
    assert report.ok


def test_the_summary_counts_every_file_published(
    sample_catalog: tuple[Path, dafab_static.BuildReport],
) -> None:
    """objects and bytes are what DEST holds: the tree, the indexes, the queryables, and the
    sample's rasters copied in; only the release marker is left out (it records them)."""
    dest, report = sample_catalog
    files = [p for p in dest.rglob("*") if p.is_file() and p.name != ".dafab-release.json"]
    assert report.objects == len(files)
    assert report.bytes == sum(p.stat().st_size for p in files)
