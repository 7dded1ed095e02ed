"""Build options that change the output: splitting, given collections, credentials."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

import dafab_static
from dafab_static.errors import OptionError
from dafab_static.options import BuildOptions

from .crawl import crawl, file_reader
from .generate import item, write_ndjson


def test_big_month_is_split_by_day_and_no_catalog_exceeds_max_children(tmp_path: Path) -> None:
    items = [item(i, day=1 + i % 3) for i in range(30)]  # three quiet days
    # a busy day: 80 items in hours 00 and 01, so each hour is split into hash buckets
    items += [{**item(1000 + i, day=10), "properties": {**item(0)["properties"],
               "datetime": f"2024-07-10T0{i % 2}:00:00Z"}} for i in range(80)]  # fmt: skip
    src = write_ndjson(tmp_path / "a.ndjson", items)
    dest = tmp_path / "cat"
    report = dafab_static.build([str(src)], str(dest), options=BuildOptions(max_children=31))
    assert report.ok and report.items == 110
    objects = crawl((dest / "catalog.json").as_uri(), file_reader)
    assert sum(d["type"] == "Feature" for d in objects.values()) == 110
    for doc in objects.values():
        if doc["type"] == "Catalog":
            assert sum(ln["rel"] in ("child", "item") for ln in doc["links"]) <= 31
    month = dest / "sensors" / "sentinel-2" / "gen" / "2024" / "07"
    assert sorted(p.name for p in month.iterdir() if p.is_dir()) == ["01", "02", "03", "10"]
    assert sorted(p.name for p in (month / "10").iterdir() if p.is_dir()) == ["00", "01"]
    buckets = sorted(p.name for p in (month / "10" / "00").iterdir() if p.is_dir())
    assert buckets and all(b.startswith("b") for b in buckets)
    assert len(list((month / "01").glob("*.json"))) == 11  # 10 items + the day catalog


def test_a_crowded_hour_is_bucketed_in_levels_within_max_children(tmp_path: Path) -> None:
    """1,000 items in one hour at --max-children 31: 33 buckets would be too many for one
    folder, so they nest (b00/b00 ...); every catalog, at every level, keeps to 31."""
    same_hour = {**item(0)["properties"], "datetime": "2024-07-10T05:00:00Z"}
    items = [{**item(i, day=10), "properties": same_hour} for i in range(1000)]
    dest = tmp_path / "cat"
    report = dafab_static.build([str(write_ndjson(tmp_path / "a.ndjson", items))], str(dest),
                                options=BuildOptions(max_children=31))  # fmt: skip
    assert report.ok and report.items == 1000
    objects = crawl((dest / "catalog.json").as_uri(), file_reader)
    assert sum(d["type"] == "Feature" for d in objects.values()) == 1000
    links = [sum(ln["rel"] in ("child", "item") for ln in d["links"])
             for d in objects.values() if d["type"] == "Catalog"]  # fmt: skip
    assert max(links) == 31
    hour = dest / "sensors" / "sentinel-2" / "gen" / "2024" / "07" / "10" / "05"
    assert sorted(p.name for p in hour.iterdir() if p.is_dir()) == ["b00", "b01"]


def test_collection_json_is_used_and_its_extent_recomputed(tmp_path: Path) -> None:
    given = {
        "type": "Collection", "stac_version": "1.1.0", "id": "gen", "title": "Generated scenes",
        "description": "Scenes for a test.", "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
        "keywords": ["test"], "links": [{"rel": "license", "href": "https://example.com/lic"}],
    }  # fmt: skip
    (tmp_path / "col.json").write_text(json.dumps(given))
    src = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(5)])
    dest = tmp_path / "cat"
    dafab_static.build([str(src)], str(dest),
                       options=BuildOptions(collections=(str(tmp_path / "col.json"),)))  # fmt: skip
    doc = json.loads((dest / "sensors" / "sentinel-2" / "gen.json").read_text())
    assert (doc["title"], doc["license"], doc["keywords"]) == (
        "Generated scenes",
        "CC-BY-4.0",
        ["test"],
    )
    # the items reach 10.4 + 0.05 = 10.450000000000001: rounded outward, never inward
    assert doc["extent"]["spatial"]["bbox"] == [[10.0, 45.0, 10.4500001, 45.05]]
    assert doc["extent"]["temporal"]["interval"] == [
        ["2024-07-01T00:00:00Z", "2024-07-01T04:00:00Z"]
    ]
    assert {"rel": "license", "href": "https://example.com/lic"} in doc["links"]


def test_a_collection_json_is_read_as_a_source_collection_is(tmp_path: Path) -> None:
    """Its relative links and assets were published unchanged, pointing at nothing from the
    tree; as a source they became absolute. Members of the wrong shape ('links' a string)
    raised AttributeError, a traceback."""
    from dafab_static.errors import InputError

    (tmp_path / "sub").mkdir()
    (tmp_path / "LICENSE.txt").write_text("license")
    given = {
        "type": "Collection", "stac_version": "1.1.0", "id": "gen", "description": "d",
        "license": "other", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
                                       "temporal": {"interval": [[None, None]]}},
        "links": [{"rel": "license", "href": "../LICENSE.txt"}],
        "assets": {"thumb": {"href": "thumb.png", "type": "image/png", "roles": ["thumbnail"]}},
    }  # fmt: skip
    path = tmp_path / "sub" / "col.json"
    path.write_text(json.dumps(given))
    src = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(2)])
    dest = tmp_path / "cat"
    options = BuildOptions(collections=(str(path),))
    assert dafab_static.build([str(src)], str(dest), options=options).ok
    doc = json.loads((dest / "sensors" / "sentinel-2" / "gen.json").read_text())
    (license_link,) = [link for link in doc["links"] if link["rel"] == "license"]
    assert license_link["href"] == (tmp_path / "LICENSE.txt").as_uri()  # RFC 8089
    assert doc["assets"]["thumb"]["href"] == (tmp_path / "sub" / "thumb.png").as_uri()
    for member, value in (("links", "nope"), ("links", [1, 2]), ("assets", "nope")):
        path.write_text(json.dumps({**given, member: value}))
        with pytest.raises(InputError, match=rf"^{path}: collection 'gen': '{member}' is not "):
            dafab_static.build([str(src)], str(tmp_path / "bad"), options=options)


def test_a_given_collection_that_fails_its_schema_is_blamed_on_its_file(tmp_path: Path) -> None:
    """It said "internal: generated document failed", the tool's fault, for the user's."""
    from dafab_static.errors import ValidationError

    given = {
        "type": "Collection", "stac_version": "1.1.0", "id": "gen", "description": "d",
        "license": 5, "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
                                 "temporal": {"interval": [[None, None]]}}, "links": [],
    }  # fmt: skip
    path = tmp_path / "col.json"
    path.write_text(json.dumps(given))
    src = write_ndjson(tmp_path / "a.ndjson", [item(1)])
    options = BuildOptions(collections=(str(path),))
    with pytest.raises(ValidationError, match=rf"^{path}: \$\.license: 5 is not of type"):
        dafab_static.build([str(src)], str(tmp_path / "cat"), options=options)
    assert not (tmp_path / "cat").exists()


def test_a_given_collection_without_items_is_reported_not_published(tmp_path: Path) -> None:
    empty = {
        "type": "Collection", "stac_version": "1.1.0", "id": "nothing-here",
        "description": "No source fills it.", "license": "CC-BY-4.0",
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
        "links": [],
    }  # fmt: skip
    (tmp_path / "col.json").write_text(json.dumps(empty))
    src = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(3)])
    dest = tmp_path / "cat"
    options = BuildOptions(collections=(str(tmp_path / "col.json"),))
    report = dafab_static.build([str(src)], str(dest), options=options)
    assert report.ok and report.collections == {"gen": 3}
    assert [w for w in report.warnings if "nothing-here" in w] == [
        f"{tmp_path / 'col.json'}: collection 'nothing-here' has no items; not published"
    ]
    assert not list(dest.rglob("nothing-here*"))


def test_collection_option_overrides_item_collections(tmp_path: Path) -> None:
    src = write_ndjson(tmp_path / "a.ndjson", [item(i, collection=f"c{i}") for i in range(3)])
    report = dafab_static.build(
        [str(src)], str(tmp_path / "cat"), options=BuildOptions(collection="one")
    )
    assert report.collections == {"one": 3}


def test_stac_validator_agrees_our_output_is_valid(tmp_path: Path) -> None:
    from dafab_static.validate import validate_with_stac_validator

    dest = tmp_path / "cat"
    dafab_static.build([], str(dest), sample=True)
    assert validate_with_stac_validator(str(dest / "catalog.json")) == []


def test_s3_credentials_and_endpoint_from_a_profile(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    (tmp_path / "config").write_text(
        f"[profile lab]\nregion = us-east-1\nendpoint_url = {endpoint}\n"
    )
    (tmp_path / "credentials").write_text(
        "[lab]\naws_access_key_id = testing\naws_secret_access_key = testing\n")  # fmt: skip
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_PROFILE", "lab")
    src = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(3)])
    report = dafab_static.build([str(src)], f"s3://{s3_bucket}/via-profile")
    assert report.ok and report.items == 3
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from dafab_static.storage import open_store

    assert open_store(f"s3://{s3_bucket}/via-profile").exists("catalog.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": 5}, "base_url=5: expected str"),
        ({"base_url": "http://[::1"}, "expected an absolute URL"),
        ({"base_url": "https://ex.com/stac?x=1"}, "a folder URL takes no query or fragment"),
        ({"base_url": "https://ex.com/stac#top"}, "a folder URL takes no query or fragment"),
        ({"base_url": "https://ex.com/a b/"}, "holds white space; percent-encode it (%20)"),
        ({"base_url": "https://me:s3cret@ex.com/stac"}, "holds credentials (me:…@)"),
        ({"device": "cuda"}, "--device cuda: runs a pipeline; give one with --pipeline"),
        ({"batch_size": "x"}, "batch_size='x': expected int"),
        ({"workers": True}, "workers=True: expected int"),
        ({"workers": -1}, "--workers -1: must be 0 (one per core) or more"),
        ({"pipeline": 5}, "pipeline=5: expected str"),
        ({"collections": 5}, "collections=5 (--collection-json): expected paths of JSON files"),
        ({"collections": [""]}, "collections=[''] (--collection-json): expected paths"),
        ({"datetime": 5}, "datetime=5: expected a datetime or ISO 8601 text"),
        ({"datetime": "2024-13-01"}, "datetime '2024-13-01': not an ISO 8601 date"),
    ],
)
def test_python_options_of_the_wrong_type_name_the_option(
    kwargs: dict[str, object], message: str
) -> None:
    """Found by fuzzing BuildOptions: these were AttributeError/TypeError tracebacks."""
    with pytest.raises(OptionError, match=re.escape(message)) as info:
        BuildOptions(**kwargs)  # type: ignore[arg-type]
    assert "s3cret" not in str(info.value)  # an error message is no place for a password


def test_python_options_take_the_obvious_spellings(tmp_path: Path) -> None:
    opts = BuildOptions(datetime="2024-07-15", collections="c.json", pipeline=Path("r.toml"))  # type: ignore[arg-type]
    assert opts.datetime == dt.datetime(2024, 7, 15, tzinfo=dt.timezone.utc)
    assert opts.collections == ("c.json",)
    assert opts.pipeline == "r.toml"
    assert BuildOptions(datetime=dt.date(2024, 7, 15)).datetime == opts.datetime  # type: ignore[arg-type]


def test_a_destination_inside_the_source_and_a_built_catalog_as_source(tmp_path: Path) -> None:
    """Rebuilding a folder into a catalog inside it does not read that catalog back; a
    folder holding a dafab-static catalog is read as that catalog, from its root, and not
    as files (its queryables, manifests and index rows are no items)."""
    src = tmp_path / "src"
    src.mkdir()
    write_ndjson(src / "a.ndjson", [item(i) for i in range(5)])
    for _ in range(2):
        report = dafab_static.build([str(src)], str(src / "out"))
        assert report.ok and report.items == 5 and report.skipped == [], report.summary()
    again = dafab_static.build([str(src / "out")], str(tmp_path / "again"))
    assert again.ok and again.items == 5 and again.skipped == [], again.summary()


def test_a_collection_defined_twice_is_said(tmp_path: Path) -> None:
    """The first definition of a collection id wins (--collection-json first); another,
    different one is not dropped silently."""
    given = {
        "type": "Collection", "stac_version": "1.1.0", "id": "gen", "description": "First.",
        "license": "CC-BY-4.0", "links": [],
        "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]}, "temporal": {"interval": [[None, None]]}},
    }  # fmt: skip
    (tmp_path / "a.json").write_text(json.dumps(given))
    (tmp_path / "b.json").write_text(json.dumps({**given, "description": "Second."}))
    src = write_ndjson(tmp_path / "i.ndjson", [item(i) for i in range(2)])
    report = dafab_static.build([str(src)], str(tmp_path / "cat"), options=BuildOptions(
        collections=(str(tmp_path / "a.json"), str(tmp_path / "b.json"))))  # fmt: skip
    assert report.ok
    assert report.warnings == [
        f"{tmp_path / 'b.json'}: collection 'gen' is also defined in {tmp_path / 'a.json'}; "
        "that first definition is used"
    ]
    doc = json.loads((tmp_path / "cat" / "sensors" / "sentinel-2" / "gen.json").read_text())
    assert doc["description"] == "First."


def test_a_rebuild_in_place_recomputes_the_summaries_it_made(tmp_path: Path) -> None:
    """`build cat new.ndjson --out cat` read the Collection it had published, summaries
    and all, as if a user had given them: new items' platform and gsd were never listed."""
    first = write_ndjson(tmp_path / "a.ndjson", [item(i) for i in range(3)])
    newer = item(7)
    newer["properties"].update(platform="sentinel-2b", gsd=20)
    dest = tmp_path / "cat"
    assert dafab_static.build([str(first)], str(dest)).ok
    more = write_ndjson(tmp_path / "b.ndjson", [newer])
    assert dafab_static.build([str(dest), str(more)], str(dest)).ok
    doc = json.loads((dest / "sensors" / "sentinel-2" / "gen.json").read_text())
    assert doc["summaries"]["platform"] == ["sentinel-2a", "sentinel-2b"]
    assert doc["summaries"]["gsd"] == [20]


def test_a_given_collections_schema_warnings_reach_the_report(tmp_path: Path) -> None:
    """An extension of the user's Collection that is not vendored was warned about into a
    result nobody read."""
    given = {
        "type": "Collection", "stac_version": "1.1.0", "id": "gen", "description": "d",
        "stac_extensions": ["https://example.com/unknown/v1.0.0/schema.json"],
        "license": "other", "extent": {"spatial": {"bbox": [[0, 0, 1, 1]]},
                                       "temporal": {"interval": [[None, None]]}}, "links": [],
    }  # fmt: skip
    path = tmp_path / "col.json"
    path.write_text(json.dumps(given))
    src = write_ndjson(tmp_path / "a.ndjson", [item(1)])
    report = dafab_static.build([str(src)], str(tmp_path / "cat"),
                                options=BuildOptions(collections=(str(path),)))  # fmt: skip
    assert report.ok
    assert any("example.com/unknown" in w and "not vendored" in w for w in report.warnings)
