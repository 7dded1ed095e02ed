"""validate warns when a Collection's extent leaves out items that name it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dafab_static
from dafab_static.extent_check import _covers
from tests.builds.generate import item, write_ndjson


def test_an_extent_that_leaves_items_out_is_reported(tmp_path: Path) -> None:
    """A Collection's bbox set to [0, 0, 1, 1] over items in the Alps, and an interval
    ending before them, passed, and info repeated them."""
    dest = tmp_path / "cat"
    src = write_ndjson(tmp_path / "in.ndjson", [item(i) for i in range(4)])
    assert dafab_static.build([str(src)], str(dest)).ok
    assert dafab_static.validate(str(dest)).problems == []  # what the build writes covers
    path = next(dest.rglob("gen.json"))
    doc = json.loads(path.read_text())
    doc["extent"]["spatial"]["bbox"] = [[0, 0, 1, 1]]
    path.write_text(json.dumps(doc))
    (problem,) = dafab_static.validate(str(dest)).problems
    where = (problem.href, problem.json_path, problem.rule)
    assert where == (str(path), "$.extent", "dafab:extent")
    assert problem.severity == "warning"
    assert problem.message.startswith("the extent does not cover 4 items naming this collection")
    doc["extent"]["spatial"]["bbox"] = [[-180, -90, 180, 90]]
    doc["extent"]["temporal"]["interval"] = [["2020-01-01T00:00:00Z", "2024-07-01T00:30:00Z"]]
    path.write_text(json.dumps(doc))
    (problem,) = dafab_static.validate(str(dest)).problems
    assert "3 items" in problem.message and "outside the interval" in problem.message


@pytest.mark.parametrize(
    ("outer", "inner", "covered"),
    [
        ((170, -10, -170, 10), (175, 0, 179, 1), True),  # east part of a crossing box
        ((170, -10, -170, 10), (-179, 0, -175, 1), True),  # west part
        ((170, -10, -170, 10), (178, 0, -178, 1), True),  # both cross
        ((170, -10, -170, 10), (0, 0, 1, 1), False),
        ((0, 0, 10, 10), (178, 0, -178, 1), False),
        ((-180, -90, 180, 90), (178, 0, -178, 1), True),
        ((0, 0, 10, 10), (1, -1, 2, 2), False),  # south of it
    ],
)
def test_covers_across_the_antimeridian(
    outer: tuple[float, ...], inner: tuple[float, ...], covered: bool
) -> None:
    assert _covers(outer, inner) is covered
