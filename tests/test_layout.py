from __future__ import annotations

import pytest

from dafab_static import layout
from dafab_static.errors import InputError


@pytest.mark.parametrize(
    "value",
    ["a/b", "../x", "x/..", "..", "a..b", "a\\b", "", "tab\there", "."],
)
def test_check_id_rejects_escaping_or_empty_ids(value: str) -> None:
    with pytest.raises(InputError) as info:
        layout.check_id(value, what="item", source="src.json")
    assert str(info.value).startswith("src.json: item id")


def test_check_id_rejects_non_strings() -> None:
    with pytest.raises(InputError, match="must be a non-empty string"):
        layout.check_id(42, what="item", source="s")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("S2A_MSIL2A_20240715", "S2A_MSIL2A_20240715"),
        ("with space", "with%20space"),
        ("hash#1?q", "hash%231%3Fq"),
        ("pct%20", "pct%2520"),
        ("été", "%C3%A9t%C3%A9"),
    ],
)
def test_segment_encodes_awkward_characters(value: str, expected: str) -> None:
    assert layout.segment(value) == expected


def test_segment_caps_long_ids_and_keeps_them_distinct() -> None:
    a, b = "x" * 300 + "a", "x" * 300 + "b"
    sa, sb = layout.segment(a), layout.segment(b)
    assert len(sa) <= 180 and len(sb) <= 180
    assert sa != sb
    assert "~" in layout.segment("é" * 200)
    # never a broken %XX escape before the hash
    head = layout.segment("é" * 200).rsplit("~", 1)[0]
    assert len(head.split("%")[-1]) == 2


@pytest.mark.parametrize("coded", ["catalog", "x" * 300])
def test_an_id_spelled_like_another_ids_coded_form_keeps_its_own_path(coded: str) -> None:
    """A capped or renamed id ends in "~" and a hash; an id spelled exactly so took the
    same path, and one item (or collection) overwrote the other."""
    spelled = layout.segment(coded)
    assert "~" in spelled
    assert layout.segment(spelled) != spelled
    assert layout.segment("a~b") == "a%7Eb"


def test_href_is_relative_and_escapes_percent() -> None:
    assert layout.href("sensors/p/c.json", "catalog.json") == "../../catalog.json"
    assert layout.href("a/catalog.json", "a/x%20y.json") == "x%2520y.json"
    # S3 reads "+" in a URL path as a space (a legacy of form encoding): a key holding "+"
    # is only reachable over HTTP as %2B, which every other server decodes to "+" as well.
    assert layout.segment("a+b") == "a+b"
    assert layout.href("a/catalog.json", "a/x+y.json") == "x%2By.json"
    assert layout.absolute("https://h/s", "a/x+y.json") == "https://h/s/a/x%2By.json"


def test_platform_slug_groups_families() -> None:
    assert layout.platform_slug("x", {"platform": "Sentinel-2B"}) == "sentinel-2"
    assert (
        layout.platform_slug("x", {"constellation": "sentinel-2", "platform": "s2a"})
        == "sentinel-2"
    )
    assert layout.platform_slug("landsat-c2-l2", {"platform": "landsat-9"}) == "landsat"
    assert layout.platform_slug("naip", {}) == "naip"
    assert layout.platform_slug("c", {"platform": "WorldView 3"}) == "worldview-3"
    assert layout.platform_slug("c", {}) == "unknown-platform"


def test_place_collection_sensors_and_derived() -> None:
    s = layout.place_collection("sentinel-2-l2a", platform="sentinel-2", derived=False)
    assert s.document == "sensors/sentinel-2/sentinel-2-l2a.json"
    assert layout.item_path(s, "2024/07", "a") == "sensors/sentinel-2/sentinel-2-l2a/2024/07/a.json"
    assert layout.index_path(s, 2024, 7) == "index/sentinel-2-l2a/year=2024/month=07/items.parquet"
    d = layout.place_collection("ndvi", platform="sentinel-2", derived=True)
    assert d.document == "derived/ndvi.json"


@pytest.mark.parametrize("cid", ["a.json", "A.JSON", "catalog.json"])
def test_a_collection_folder_never_is_a_sibling_document(cid: str) -> None:
    """Collection ``a``'s document is ``a.json``: collection ``a.json``'s folder may not be."""
    places = [layout.place_collection(c, platform="p", derived=False) for c in ("a", "A", cid)]
    documents = {p.document for p in places} | {"sensors/p/catalog.json"}
    assert not {p.folder for p in places} & documents
    assert len({p.index_folder for p in places}) == 3
    assert layout.platform_slug("c", {"platform": cid}) not in ("catalog.json", "a.json")


def test_plan_split_keeps_small_months_whole() -> None:
    split = layout.plan_split(100, {"01": 100}, {"01/00": 100}, max_children=2000)
    assert layout.partition_path(2024, 7, 1, 0, split) == "2024/07"


def test_plan_split_splits_big_months_by_day_hour_and_bucket() -> None:
    split = layout.plan_split(
        5000,
        {"01": 4000, "02": 1000},
        {"01/00": 3000, "01/05": 1000, "02/00": 1000},
        max_children=2000,
    )
    assert layout.partition_path(2024, 7, 2, 0, split) == "2024/07/02"
    assert layout.partition_path(2024, 7, 1, 5, split) == "2024/07/01/05"
    assert layout.partition_path(2024, 7, 1, 0, split) == "2024/07/01/00"
    assert split.bucketed == {"01/00"} and split.max_children == 2000


@pytest.mark.parametrize(("items", "limit"), [(3000, 2000), (730, 31), (5000, 31), (31, 31)])
def test_buckets_hold_at_most_max_children_at_every_level(items: int, limit: int) -> None:
    ids = [f"id{i}" for i in range(items)]
    placed = layout.buckets(ids, limit)
    assert sorted(placed) == sorted(ids)
    folders: dict[str, set[str]] = {}
    for path in placed.values():
        parts = path.split("/")
        for depth in range(len(parts)):
            folders.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
    sizes = [sum(1 for p in placed.values() if p == leaf) for leaf in set(placed.values())]
    assert max(sizes) <= limit and max(len(c) for c in folders.values()) <= limit
    assert len({len(p.split("/")) for p in placed.values()}) == 1  # one depth for all
    assert (len(next(iter(placed.values())).split("/")) > 1) == (items > limit * limit)
