"""The spool takes packed batches (from reader processes) as it takes entries one by one."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from dafab_static import entries, spool
from dafab_static.errors import InputError
from tests.builds.generate import item


def _items() -> list[dict[str, Any]]:
    """Two collections over three months, with duplicates: within a batch, across batches,
    and a collection whose only items are duplicates of nothing but themselves."""
    items = [item(i, month=1 + i % 3, day=1 + i % 5) for i in range(40)]
    items += [item(i, collection="other", month=2) for i in range(5)]
    items[7]["id"] = items[5]["id"]  # same batch of 10
    items[33]["id"] = items[2]["id"]  # another batch, another month
    items[33]["properties"]["datetime"] = "2024-09-09T09:00:00Z"  # alone in its month
    items[44]["id"] = items[40]["id"]
    return items


def _state(folder: Path, pool: spool.Spool) -> dict[str, Any]:
    return {
        "files": {p.name: p.read_bytes() for p in sorted(folder.iterdir())},
        "months": {c: dict(n.months) for c, n in pool.counts.items()},
        "days": {c: {m: d for m, d in n.days.items() if d} for c, n in pool.counts.items()},
        "hours": {c: {m: h for m, h in n.hours.items() if h} for c, n in pool.counts.items()},
        "places": {c: n.place for c, n in pool.counts.items()},
    }


def test_packed_batches_spool_what_entries_do(tmp_path: Path) -> None:
    preparer = entries.Preparer()
    made = [preparer.item(it, f"src#{i}") for i, it in enumerate(_items())]
    one, packed = tmp_path / "one", tmp_path / "packed"
    one.mkdir()
    packed.mkdir()
    by_entry, by_batch = spool.Spool(one), spool.Spool(packed)
    errors: dict[str, list[str]] = {"one": [], "packed": []}
    for entry in made:
        try:
            by_entry.add(entry)
        except InputError as e:
            errors["one"].append(str(e))
    for start in range(0, len(made), 10):
        # As a reader process sends it: pickled, then taken item by item.
        batch = pickle.loads(pickle.dumps(preparer.batch(made[start : start + 10])))
        for index in range(len(made[start : start + 10])):
            try:
                by_batch.add_packed(batch, index)
            except InputError as e:
                errors["packed"].append(str(e))
    by_entry.flush()
    by_batch.flush()
    assert errors["packed"] == errors["one"]
    assert len(errors["one"]) == 3 and "src#7: item 'gen-0000005': duplicate id" in errors["one"][0]
    assert _state(packed, by_batch) == _state(one, by_entry)
    assert by_batch.total == by_entry.total == 42
    assert (2024, 9) not in by_batch.counts["gen"].months  # its only item was a duplicate
    # The extent may keep a duplicate's box and time (the partition writer narrows it).
    mine, theirs = by_batch.counts["gen"].extent(), by_entry.counts["gen"].extent()
    assert mine[0][:2] <= theirs[0][:2] and mine[0][2:] >= theirs[0][2:]


def test_a_batch_is_taken_only_once_its_ids_are_checked(tmp_path: Path) -> None:
    preparer = entries.Preparer()
    batch = preparer.batch([preparer.item(item(i), "src") for i in range(3)])
    pool = spool.Spool(tmp_path)
    pool.add_packed(batch, 0)
    assert pool.total == 0  # counted when the next batch comes, or at flush
    pool.add_packed(batch, 1)
    pool.add_packed(batch, 2)
    pool.flush()
    assert pool.total == 3
    (path,) = tmp_path.iterdir()
    assert path.read_bytes().count(b"\n") == 3


def test_prepare_names_the_item_and_its_flaw() -> None:
    bad = item(1)
    del bad["geometry"]
    with pytest.raises(InputError, match=r"^src#3: item 'gen-0000001': has no geometry"):
        entries.prepare(bad, "src#3")


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[]]},
        {"type": "MultiPolygon", "coordinates": [[[]]]},
        {"type": "GeometryCollection", "geometries": []},
    ],
)
def test_an_empty_geometry_is_no_footprint(geometry: dict[str, object]) -> None:
    """The index read an empty Polygon back as another empty shape: the tree and the index
    disagreed, and the build's own validate failed it."""
    bad = {**item(1), "geometry": geometry}
    with pytest.raises(InputError, match=r"^src: item 'gen-0000001': its geometry is empty"):
        entries.prepare(bad, "src")


def test_an_empty_geometry_is_skipped_by_the_build(tmp_path: Path) -> None:
    import dafab_static

    bad = {**item(1), "geometry": {"type": "Polygon", "coordinates": []}}
    source = tmp_path / "items.ndjson"
    source.write_text(json.dumps(bad) + "\n" + json.dumps(item(2)) + "\n")
    report = dafab_static.build([str(source)], str(tmp_path / "cat"))
    assert report.items == 1 and "its geometry is empty" in report.skipped[0]
    assert dafab_static.validate(str(tmp_path / "cat")).ok
