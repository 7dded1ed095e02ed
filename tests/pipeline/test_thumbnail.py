"""Thumbnails show north up and east right, whatever way the raster's grid runs."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from affine import Affine
from PIL import Image

from dafab_static.pipeline.steps.thumbnail import Thumbnail


@dataclass
class _Grid:
    """What the step reads of a scene: reflectance, validity and the grid's transform."""

    refl: dict[str, torch.Tensor]
    valid: torch.Tensor
    transform: Affine

    def scene(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self.refl, self.valid


def _png(grid: Any) -> np.ndarray:
    data = Thumbnail(size=64)(grid).assets["thumbnail"].data
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.mark.parametrize(("flip", "transform"), [
    ([-2], Affine(10, 0, 0, 0, 10, 0)),  # south-up
    ([-1], Affine(-10, 0, 0, 0, -10, 0)),  # east-left
    ([-2, -1], Affine(-10, 0, 0, 0, 10, 0)),
])  # fmt: skip
def test_a_flipped_grid_gives_the_north_up_picture(flip: list[int], transform: Affine) -> None:
    generator = torch.Generator().manual_seed(0)
    refl = {k: torch.rand(48, 40, generator=generator) * 0.3 for k in ("red", "green", "blue")}
    valid = torch.ones(48, 40, dtype=torch.bool)
    valid[:6, :] = False  # nodata along the northern edge
    north_up = _png(_Grid(refl, valid, Affine(10, 0, 0, 0, -10, 0)))
    stored = _Grid({k: v.flip(flip) for k, v in refl.items()}, valid.flip(flip), transform)
    assert np.array_equal(_png(stored), north_up)
    assert (north_up[:6, :, 3] == 0).all() and (north_up[6:, :, 3] == 255).all()


# Stored = the north-up picture turned; the grid's transform is the north-up one composed
# with the map from stored pixel (col, row) to north-up pixel (col, row), for 48 x 40.
@pytest.mark.parametrize(("turn", "to_north_up"), [
    (lambda a: a.transpose(-1, -2), Affine(0, 1, 0, 1, 0, 0)),
    (lambda a: torch.rot90(a, 1, (-2, -1)), Affine(0, -1, 40, 1, 0, 0)),  # counterclockwise
    (lambda a: torch.rot90(a, -1, (-2, -1)), Affine(0, 1, 0, -1, 0, 48)),  # clockwise
])  # fmt: skip
def test_a_grid_whose_columns_run_north_south_gives_the_north_up_picture(
    turn: Any, to_north_up: Affine
) -> None:
    """Grids turned by 90 degrees or transposed: only south-up and east-left ones were
    turned, and these came out sideways."""
    generator = torch.Generator().manual_seed(1)
    refl = {k: torch.rand(48, 40, generator=generator) * 0.3 for k in ("red", "green", "blue")}
    valid = torch.ones(48, 40, dtype=torch.bool)
    valid[:6, :] = False  # nodata along the northern edge
    north = Affine(10, 0, 0, 0, -10, 0)
    north_up = _png(_Grid(refl, valid, north))
    stored = _Grid({k: turn(v) for k, v in refl.items()}, turn(valid), north @ to_north_up)
    assert np.array_equal(_png(stored), north_up)


def test_edge_pixels_keep_their_colour_with_straight_alpha() -> None:
    """PNG alpha is straight, not premultiplied: a thumbnail pixel three quarters over
    valid pixels of one colour has that colour and alpha 191. Area averaging had mixed
    the nodata in as black (0, 10, 7 for 0, 13, 9)."""
    refl = {name: torch.full((64, 64), value) for name, value in
            (("red", 0.1), ("green", 0.5), ("blue", 0.3))}  # fmt: skip
    refl["red"][:, :32] = 0.9  # two colours, so that the stretch keeps both apart
    where = Affine(10, 0, 0, 0, -10, 640)

    def picture(valid: torch.Tensor) -> np.ndarray:
        thumb = Thumbnail(size=16)(_Grid(refl, valid, where))  # 4 x 4 pixels each
        return np.asarray(Image.open(io.BytesIO(thumb.assets["thumbnail"].data)))

    edged = torch.ones(64, 64, dtype=torch.bool)
    edged[:, 32] = False  # 3 of the 4 columns under thumbnail column 8 are valid
    edge, whole = picture(edged), picture(torch.ones(64, 64, dtype=torch.bool))
    assert edge.shape == (16, 16, 4)
    assert edge[0, 8, 3] == 191 and edge[0, 9, 3] == 255
    assert list(edge[0, 8, :3]) == list(whole[0, 8, :3])  # the same colour, more transparent
