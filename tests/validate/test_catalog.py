"""Whole catalogs: crawled from a folder, a file, a local HTTP server and an S3 bucket."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dafab_static.errors import InputError, StorageError
from dafab_static.validate import ValidationReport, validate, validate_with_stac_validator

from .conftest import write_json

SPEC_COUNTS = {"Catalog": 1, "Collection": 3, "Item": 2}


def rows(report: ValidationReport, root: Path) -> set[tuple[str, str, str, str]]:
    """(file relative to root, JSON path, rule, severity) of every problem."""
    return {
        (str(Path(p.href).relative_to(root)), p.json_path, p.rule, p.severity)
        for p in report.problems
    }


@pytest.mark.parametrize("version", ["v1.0.0", "v1.1.0"])
def test_spec_examples_crawl(spec_examples: Path, version: str) -> None:
    report = validate(str(spec_examples / version))
    assert report.root == str(spec_examples / version / "catalog.json")
    assert (report.objects_checked, report.counts, report.problems) == (6, SPEC_COUNTS, [])
    assert report.ok
    assert report.summary() == (
        f"valid: {report.root}: 6 objects (1 Catalog, 3 Collection, 2 Item), 0 errors, 0 warnings"
    )


def test_spec_collection_reuses_one_item_id(spec_examples: Path) -> None:
    # The spec's simple, core and extended items share id 20201211_223832_CS2.
    root = spec_examples / "v1.1.0"
    report = validate(str(root / "collection.json"))
    assert (report.objects_checked, report.counts) == (4, {"Collection": 1, "Item": 3})
    # STAC: an id SHOULD be unique within its Collection; the spec's example is valid STAC.
    assert rows(report, root) == {
        ("core-item.json", "$.id", "dafab:unique-id", "warning"),
        ("extended-item.json", "$.id", "dafab:unique-id", "warning"),
    }
    assert report.ok
    assert report.to_dict()["ok"] is True
    assert json.dumps(report.to_dict())  # plain data


def test_not_recursive_checks_the_root_only(spec_examples: Path) -> None:
    report = validate(str(spec_examples / "v1.1.0" / "collection.json"), recursive=False)
    assert (report.objects_checked, report.counts, report.problems) == (1, {"Collection": 1}, [])


def test_small_catalog_is_valid(small_catalog: Path) -> None:
    report = validate(str(small_catalog))
    assert (report.objects_checked, report.counts, report.problems) == (
        4,
        {"Catalog": 1, "Collection": 1, "Item": 2},
        [],
    )


def test_broken_item_is_found_by_file(small_catalog: Path) -> None:
    path = small_catalog / "c1" / "b" / "b.json"
    item = json.loads(path.read_text())
    del item["properties"]["datetime"]
    item["bbox"] = "not a box"
    write_json(path, item)
    report = validate(str(small_catalog))
    assert report.objects_checked == 4
    assert {(p.href, p.json_path) for p in report.errors} == {
        (str(path), "$.properties.datetime"),
        (str(path), "$.bbox"),
    }
    assert not report.ok
    assert "INVALID" in report.summary() and "errors" in report.summary()
    assert any(str(p).startswith(f"{path}: $.properties.datetime: error: ") for p in report.errors)


def test_crawl_defects(small_catalog: Path) -> None:
    collection_path = small_catalog / "c1" / "collection.json"
    collection = json.loads(collection_path.read_text())
    collection["links"] += [
        {"rel": "item", "href": "./missing/missing.json"},
        {"rel": "item", "href": "./garbage.json"},
        {"rel": "child", "href": "../catalog.json"},
        {"rel": "item", "href": "./c/c.json"},
        {"rel": "item", "href": "a/./a.json"},
        {"rel": "license", "href": "./not-followed.json"},
    ]
    write_json(collection_path, collection)
    (small_catalog / "c1" / "garbage.json").write_text("{not json")
    twin = json.loads((small_catalog / "c1" / "a" / "a.json").read_text())
    write_json(small_catalog / "c1" / "c" / "c.json", twin)  # a second item with id "a"
    report = validate(str(small_catalog))
    assert report.counts == {"Catalog": 1, "Collection": 1, "Item": 3}
    assert rows(report, small_catalog) == {
        ("c1/collection.json", "$.links[4].href", "dafab:readable", "error"),
        ("c1/garbage.json", "$", "dafab:json", "error"),
        ("c1/collection.json", "$.links[6].href", "dafab:cycle", "error"),
        ("c1/c/c.json", "$.id", "dafab:unique-id", "warning"),
        ("c1/collection.json", "$.links[8].href", "dafab:linked-twice", "warning"),
    }
    readable = next(p for p in report.problems if p.rule == "dafab:readable")
    assert str(small_catalog / "c1" / "missing" / "missing.json") in readable.message


def test_root_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        validate(str(tmp_path / "nope"))
    with pytest.raises(InputError, match=r"folder has no catalog\.json"):
        validate(str(tmp_path))
    (tmp_path / "catalog.json").write_text("[")
    with pytest.raises(InputError, match=r"catalog\.json: not JSON"):
        validate(str(tmp_path))


def test_no_network_is_touched(spec_examples: Path, no_network: list[str]) -> None:
    for version in ("v1.0.0", "v1.1.0"):
        assert validate(str(spec_examples / version)).counts == SPEC_COUNTS
    assert no_network == []


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served_examples(spec_examples: Path, tmp_path: Path) -> Iterator[str]:
    """The spec examples on a local HTTP server (127.0.0.1, free port); yields its base URL."""
    shutil.copytree(spec_examples, tmp_path / "examples")
    handler = partial(_QuietHandler, directory=str(tmp_path / "examples"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_catalog_over_http(served_examples: str) -> None:
    report = validate(f"{served_examples}/v1.1.0/")
    assert report.root == f"{served_examples}/v1.1.0/catalog.json"
    assert (report.objects_checked, report.counts, report.problems) == (6, SPEC_COUNTS, [])
    hrefs = {p.href for p in validate(f"{served_examples}/v1.0.0/collection.json").problems}
    assert hrefs == {
        f"{served_examples}/v1.0.0/core-item.json",
        f"{served_examples}/v1.0.0/extended-item.json",
    }


def test_http_errors_name_the_url(served_examples: str) -> None:
    url = f"{served_examples}/v1.1.0/nothing-here.json"
    with pytest.raises(StorageError, match=f"^{re.escape(url)}: HTTP 404"):
        validate(url)


def test_catalog_in_s3(spec_examples: Path, s3_bucket: str, s3_server: str) -> None:
    pytest.importorskip("dafab_static.storage")
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    for path in (spec_examples / "v1.1.0").rglob("*.json"):
        key = f"examples/{path.relative_to(spec_examples / 'v1.1.0').as_posix()}"
        client.put_object(Bucket=s3_bucket, Key=key, Body=path.read_bytes())
    report = validate(f"s3://{s3_bucket}/examples")
    assert report.root == f"s3://{s3_bucket}/examples/catalog.json"
    assert (report.objects_checked, report.counts, report.problems) == (6, SPEC_COUNTS, [])


def test_stac_validator_cross_check_offline(spec_examples: Path, no_network: list[str]) -> None:
    assert validate_with_stac_validator(str(spec_examples / "v1.1.0")) == []
    assert validate_with_stac_validator(str(spec_examples / "v1.0.0")) == []
    assert no_network == []


def test_stac_validator_finds_a_broken_item(small_catalog: Path, no_network: list[str]) -> None:
    path = small_catalog / "c1" / "b" / "b.json"
    item = json.loads(path.read_text())
    item["bbox"] = "not a box"
    write_json(path, item)
    # Recursive stac-validator stops at the first invalid item and may repeat it.
    recursive = validate_with_stac_validator(str(small_catalog))
    assert {str(Path(p.href).resolve()) for p in recursive} == {str(path)}
    problems = validate_with_stac_validator(str(path), recursive=False)
    assert [(p.href, p.rule) for p in problems] == [
        (str(path), "stac-validator:JSONSchemaValidationError")
    ]
    assert "bbox" in problems[0].message
    assert no_network == []


def test_files_of_items_are_validated_item_by_item(tmp_path: Path) -> None:
    """NDJSON (a hub's export, pipeline run's items.ndjson), a FeatureCollection and a JSON
    array of items: each item is checked, and each problem named by line or member."""
    from tests.builds.generate import item

    good, bad = item(1), item(2)
    for it in (good, bad):  # outside a tree: no collection link, so no collection field
        del it["collection"]
    bad["properties"]["gsd"] = -10  # core: a positive number
    lines = [json.dumps(good), "{not json", json.dumps(bad)]
    ndjson = tmp_path / "items.ndjson"
    ndjson.write_text("\n".join(lines) + "\n")
    report = validate(str(ndjson))
    assert report.counts == {"Item": 2} and not report.ok
    assert sorted((p.href.rsplit("/", 1)[1], p.rule) for p in report.errors)[0] == (
        "items.ndjson:2", "dafab:json",
    )  # fmt: skip
    unparsed = next(p for p in report.errors if p.rule == "dafab:json")
    assert unparsed.message.startswith("not JSON (")  # the href is said once, before it
    assert any(p.href.endswith("items.ndjson:3") and p.json_path == "$.properties.gsd"
               for p in report.errors)  # fmt: skip
    write_json(tmp_path / "fc.json", {"type": "FeatureCollection", "features": [good, bad]})
    report = validate(str(tmp_path / "fc.json"))
    assert report.counts == {"Item": 2}
    assert [p.href for p in report.errors] == [f"{tmp_path / 'fc.json'}#/features/1"]
    write_json(tmp_path / "array.json", [good, good])
    assert validate(str(tmp_path / "array.json")).counts == {"Item": 2}


def _built(tmp_path: Path) -> Path:
    import dafab_static
    from tests.builds.generate import item, write_ndjson

    dest = tmp_path / "cat"
    source = write_ndjson(tmp_path / "in.ndjson", [item(i) for i in range(3)])
    assert dafab_static.build([str(source)], str(dest)).ok
    return dest


def test_links_elsewhere_than_the_catalog_are_reported_not_followed(
    tmp_path: Path, range_http_server: tuple[str, Path], range_http_requests: list[Any]
) -> None:
    """A local catalog's links to a web server or a bucket were fetched: a third party's
    catalog chose what validate downloaded, and S3 requests were signed with the user's
    credentials."""
    base, folder = range_http_server
    (folder / tmp_path.name).mkdir()
    write_json(folder / tmp_path.name / "catalog.json", {"type": "Catalog"})
    dest = _built(tmp_path)
    root = json.loads((dest / "catalog.json").read_text())
    root["links"] += [
        {"rel": "child", "href": f"{base}/{tmp_path.name}/catalog.json"},
        {"rel": "child", "href": "s3://someone-elses-bucket/stac/catalog.json"},
    ]
    write_json(dest / "catalog.json", root)
    report = validate(str(dest))
    skipped = [p for p in report.problems if p.rule == "dafab:not-followed"]
    assert [p.severity for p in skipped] == ["warning", "warning"] and report.ok
    assert "not followed" in skipped[0].message and skipped[0].json_path.startswith("$.links[")
    assert range_http_requests == []


def test_a_root_url_naming_a_file_is_that_file(
    tmp_path: Path, range_http_server: tuple[str, Path]
) -> None:
    """Only a URL ending in '/' is a folder: an NDJSON file, or an item at a URL without a
    suffix (as STAC APIs serve them), had '/catalog.json' put after it (HTTP 404)."""
    base, folder = range_http_server
    dest = _built(tmp_path)
    served = folder / f"{tmp_path.name}-cat"
    shutil.copytree(dest, served)
    item = next(p for p in served.rglob("gen-0000001.json"))
    shutil.copy(item, served / "item")
    shutil.copy(tmp_path / "in.ndjson", served / "items.ndjson")
    url = f"{base}/{served.name}"
    assert validate(f"{url}/items.ndjson").counts == {"Item": 3}
    assert validate(f"{url}/item", recursive=False).counts == {"Item": 1}
    assert validate(url).counts == validate(f"{url}/").counts == validate(str(dest)).counts


def test_a_server_that_trickles_is_cut_off() -> None:
    """A byte every 0.2 s never trips a per-read timeout: the whole read has a limit."""
    import socket
    import time

    from dafab_static.storage import read_url

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def drip() -> None:
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(100):  # 20 s at most
            try:
                conn.sendall(b"x")
            except OSError:
                break
            time.sleep(0.2)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.json"
    with pytest.raises(StorageError, match=r"slow\.json: not read within 1 s"):
        read_url(url, total=1.0)
    listener.close()


def test_a_symlink_loop_is_one_cycle_and_links_lead_to_the_right_kind(tmp_path: Path) -> None:
    """A folder linked back to itself through a symlink was crawled 40 levels deep, one
    catalog per level; a child link to an Item and an item link to a Catalog passed."""
    dest = _built(tmp_path)
    (dest / "loop").mkdir()
    (dest / "loop" / "up").symlink_to("..")
    root = json.loads((dest / "catalog.json").read_text())
    item = next(p for p in dest.rglob("gen-0000001.json")).relative_to(dest).as_posix()
    first = len(root["links"])
    root["links"] += [
        {"rel": "child", "href": "./loop/up/catalog.json"},
        {"rel": "child", "href": item},
        {"rel": "item", "href": "./sensors/catalog.json"},
    ]
    write_json(dest / "catalog.json", root)
    report = validate(str(dest))
    root_href = str(dest / "catalog.json")
    found = {(p.json_path, p.rule, p.severity) for p in report.problems if p.href == root_href}
    assert found == {
        (f"$.links[{first}].href", "dafab:cycle", "error"),
        (f"$.links[{first + 1}].href", "dafab:link-target", "warning"),
        (f"$.links[{first + 2}].href", "dafab:linked-twice", "warning"),
    }, report.problems
    (tmp_path / "again").mkdir()
    assert report.counts["Catalog"] == validate(str(_built(tmp_path / "again"))).counts["Catalog"]


def test_an_item_link_to_a_catalog_and_a_file_url_root_with_escapes(tmp_path: Path) -> None:
    folder = tmp_path / "w\u00e9ird [x]"
    folder.mkdir()
    dest = _built(folder)
    root = json.loads((dest / "catalog.json").read_text())
    root["links"].append({"rel": "item", "href": "./extra/catalog.json"})
    write_json(dest / "catalog.json", root)
    extra = {"type": "Catalog", "stac_version": "1.1.0", "id": "extra", "description": "x",
             "links": []}  # fmt: skip
    write_json(dest / "extra" / "catalog.json", extra)
    report = validate(dest.as_uri())  # percent-encoded, as RFC 8089 file URLs are
    assert [p.rule for p in report.problems] == ["dafab:link-target"]
    assert "a Catalog: item links lead to Items" in report.problems[0].message


def test_an_id_used_twice_among_items_without_a_collection_is_said_plainly(
    tmp_path: Path,
) -> None:
    """It said "in collection (none, under nothing)"."""
    from tests.builds.generate import item, write_ndjson

    one = item(1)
    del one["collection"]
    source = write_ndjson(tmp_path / "twice.ndjson", [one, one])
    (problem,) = validate(str(source)).problems
    assert problem.message == (
        f"item id 'gen-0000001' is also used by {source}:1 among items without a collection"
    )


def test_over_http_the_unlisted_file_check_says_it_did_not_run(
    tmp_path: Path, range_http_server: tuple[str, Path]
) -> None:
    """Locally, a Parquet file the manifest leaves out is an error; a web server lists no
    folder, and the same tree was reported valid with no word about the check."""
    base, folder = range_http_server
    served = folder / f"{tmp_path.name}-unlisted"
    shutil.copytree(_built(tmp_path), served)
    report = validate(f"{base}/{served.name}")
    unchecked = [p for p in report.problems if "only a local index folder" in p.message]
    assert unchecked and all(p.severity == "warning" for p in unchecked) and report.ok
    local = validate(str(served))
    assert local.ok and not [p for p in local.problems if "only a local" in p.message]
