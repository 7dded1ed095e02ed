"""BoxUnion: the smallest box on the globe, against a brute force over whole degrees."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest

from dafab_static.bbox_union import MAX_SPANS, BoxUnion


def _width(bbox: list[float]) -> float:
    west, _, east, _ = bbox
    return east - west if west <= east else 360.0 - (west - east)


def _holds(outer: list[float], box: tuple[float, ...]) -> bool:
    """Whether ``outer`` holds ``box``, both possibly across the antimeridian."""

    def arcs(west: float, east: float) -> list[tuple[float, float]]:
        return [(west, east)] if west <= east else [(west, 180.0), (-180.0, east)]

    inside = all(any(a <= lo and hi <= b for a, b in arcs(outer[0], outer[2]))
                 for lo, hi in arcs(box[0], box[2]))  # fmt: skip
    return inside and outer[1] <= box[1] and box[3] <= outer[3]


def _brute_width(boxes: list[tuple[int, int, int, int]]) -> int:
    """360 minus the longest run of whole-degree cells that no box touches the inside of."""
    covered = [False] * 360
    for west, _, east, _ in boxes:
        cells = range(west, east) if west <= east else [*range(west, 180), *range(-180, east)]
        for c in cells:
            covered[c + 180] = True
    if all(covered):
        return 360
    start = covered.index(True) if any(covered) else 0
    longest = run = 0
    for k in range(360):
        if covered[(start + k) % 360]:
            run = 0
        else:
            run += 1
            longest = max(longest, run)
    return 360 - longest


def _random_boxes(rng: random.Random, n: int) -> list[tuple[int, int, int, int]]:
    boxes = []
    for _ in range(n):
        west = rng.randrange(-180, 180)
        width = rng.choice([1, 2, 5, 20])
        east = west + width if west + width <= 180 else west + width - 360
        boxes.append((west, -10, east, 10))
    return boxes


@pytest.mark.parametrize("seed", range(200))
def test_smallest_box_matches_brute_force_and_holds_every_box(seed: int) -> None:
    rng = random.Random(seed)
    boxes = _random_boxes(rng, rng.randrange(1, 12))
    union = BoxUnion()
    for box in boxes:
        union.add(box)
    bbox = union.bbox()
    assert bbox is not None
    assert all(_holds(bbox, box) for box in boxes), (boxes, bbox)
    assert _width(bbox) == _brute_width(boxes), (boxes, bbox)


@pytest.mark.parametrize("seed", range(50))
def test_the_result_does_not_depend_on_order_or_on_how_boxes_arrive(seed: int) -> None:
    rng = random.Random(seed)
    boxes = _random_boxes(rng, 40)
    one_by_one = BoxUnion()
    for box in boxes:
        one_by_one.add(box)
    rng.shuffle(boxes)
    halves = [BoxUnion(), BoxUnion()]
    cols = np.array(boxes[:20], dtype=float).T
    halves[0].add_columns(cols[0], cols[1], cols[2], cols[3])
    for box in boxes[20:]:
        halves[1].add(box)
    merged = BoxUnion()
    merged.update(halves[1])
    merged.update(pickle.loads(pickle.dumps(halves[0])))  # as from a month writer process
    assert merged == one_by_one
    assert merged.bbox() == one_by_one.bbox()


def test_scenes_either_side_of_the_antimeridian_give_a_box_across_it() -> None:
    union = BoxUnion()
    union.add((179.2, 60.0, 179.9, 61.0))  # Chukotka
    union.add((-179.8, 51.0, -178.5, 52.0))  # the Aleutians
    assert union.bbox() == [179.2, 51.0, -178.5, 61.0]


def test_a_tie_and_the_whole_world_stay_off_the_antimeridian() -> None:
    assert BoxUnion.of((-180.0, -90.0, 180.0, 90.0)).bbox() == [-180.0, -90.0, 180.0, 90.0]
    union = BoxUnion.of((-90.0, 0.0, 0.0, 1.0))
    union.add((90.0, 0.0, 180.0, 1.0))  # both gaps 90 degrees wide
    assert union.bbox() == [-90.0, 0.0, 180.0, 1.0]
    assert BoxUnion().bbox() is None


def test_many_scattered_points_stay_bounded_and_still_find_the_ocean() -> None:
    """A million point items must not keep a million spans: past MAX_SPANS the narrowest
    gaps close, and the widest one, which the box leaves out, survives."""
    rng = np.random.default_rng(7)
    # points over Eurasia and Africa (-20..150), none in the Pacific or the Americas
    x = rng.uniform(-20.0, 150.0, 20_000)
    union = BoxUnion()
    union.add_columns(x, x * 0, x, x * 0)
    for value in rng.uniform(-20.0, 150.0, 2_000).tolist():
        union.add((value, 0.0, value, 0.0))
    assert len(union.__getstate__()[0]) <= MAX_SPANS
    bbox = union.bbox() or []
    assert all(type(v) is float for v in bbox)  # orjson writes no numpy scalars
    west, _, east, _ = bbox
    assert west == pytest.approx(-20.0, abs=0.05) and east == pytest.approx(150.0, abs=0.05)
