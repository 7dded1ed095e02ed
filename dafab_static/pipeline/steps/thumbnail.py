"""True-colour thumbnails with a percentile stretch, as PNG assets with role ``thumbnail``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dafab_static.errors import OptionError
from dafab_static.media_types import PNG
from dafab_static.pipeline.encode import png
from dafab_static.pipeline.registry import Step, register_step
from dafab_static.pipeline.steps.indices import quantiles
from dafab_static.pipeline.windows import Asset, StepOutput, Windows

if TYPE_CHECKING:
    import torch
    from affine import Affine


@register_step("thumbnail")
class Thumbnail(Step):
    """A PNG of red, green and blue, stretched linearly between two percentiles.

    One stretch for the three bands together (not one per band), so colours keep their
    balance: water stays dark blue, vegetation green. Nodata is transparent.

    Parameters (recipe keys):
        size: Pixels on the long side, at most the analysis grid's (``max_size``).
        stretch: Lower and upper percentiles of the valid RGB values mapped to 0 and 255.
    """

    requires = ("red", "green", "blue")

    def __init__(self, size: int = 256, stretch: tuple[float, float] = (2.0, 98.0)) -> None:
        if not isinstance(size, int) or not 16 <= size <= 4096:
            raise OptionError(f"size={size!r}: expected an integer from 16 to 4096")
        pair = list(stretch) if isinstance(stretch, list | tuple) else []
        if len(pair) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in pair
        ):
            raise OptionError(f"stretch={stretch!r}: expected two percentiles, [low, high]")
        lo, hi = pair
        if not 0 <= lo < hi <= 100:
            raise OptionError(f"stretch={list(stretch)!r}: expected 0 <= low < high <= 100")
        self.size = size
        self.stretch = (float(lo), float(hi))

    def __call__(self, windows: Windows) -> StepOutput:
        import torch

        refl, valid = windows.scene()
        rgb = torch.stack([refl["red"], refl["green"], refl["blue"]])
        rgb, valid = _north_up(rgb, valid, windows.transform)
        return StepOutput(assets={"thumbnail": Asset("thumbnail.png", render(rgb, valid, self.size,
                                                                             self.stretch), {
            "type": PNG, "title": "True-colour thumbnail", "roles": ["thumbnail"],
        })})  # fmt: skip


def _north_up(
    rgb: torch.Tensor, valid: torch.Tensor, t: Affine
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rgb`` (3, rows, cols) and ``valid`` turned so north is up and east right, by the
    one of the grid's 8 axis-aligned orientations nearest to its affine ``t``: a south-up
    raster rendered as stored came out upside down, and one whose columns run north-south
    (rotated by 90 degrees, or transposed) sideways. Pixels move, none is resampled."""
    east, south = t.a, -t.e  # how far a column step goes east, a row step south
    if abs(t.d) > abs(t.a):  # columns run north-south: rows become columns
        rgb, valid = rgb.transpose(-1, -2), valid.transpose(-1, -2)
        east, south = t.b, -t.d
    flip = [dim for dim, step in ((-2, south), (-1, east)) if step < 0]
    return (rgb.flip(flip), valid.flip(flip)) if flip else (rgb, valid)


def render(
    rgb: torch.Tensor, valid: torch.Tensor, size: int, stretch: tuple[float, float]
) -> bytes:
    """PNG bytes of a ``(3, rows, cols)`` reflectance stack, ``size`` px on the long side
    (the stack's own size when that is smaller)."""
    import torch

    rows, cols = valid.shape
    # Never larger than the analysis grid: upscaling would only add pixels, not detail
    # (raise [execution] max_size for a larger thumbnail).
    scale = min(1.0, size / max(rows, cols))
    shape = (max(1, round(rows * scale)), max(1, round(cols * scale)))
    if valid.any():
        lo, hi = quantiles(rgb[:, valid], stretch)
    else:
        lo, hi = 0.0, 1.0
    byte = ((rgb - lo) / max(hi - lo, 1e-6)).clamp(0, 1) * 255
    alpha = valid.float()[None] * 255
    rgba = torch.cat([byte * valid, alpha])[None].float()
    # Area averaging: each thumbnail pixel is the mean of the scene pixels under it. That
    # mean is premultiplied (nodata counts as black); PNG's alpha is straight, so the
    # colour is the mean of the valid pixels alone: a 75 %-valid edge pixel was darker.
    small = torch.nn.functional.interpolate(rgba, size=shape, mode="area")[0]
    covered = small[3:] / 255
    small[:3] = torch.where(covered > 0, small[:3] / covered.clamp(min=1e-6), 0)
    return png(small.round().clamp(0, 255).to(torch.uint8).cpu().numpy())
