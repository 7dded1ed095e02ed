"""The smallest bbox holding a set of boxes on the globe, antimeridian included.

STAC and RFC 7946 §5.2 write a box across the antimeridian with west > east. A min/max union
of such boxes is meaningless, and boxes that each stay on one side (scenes at 179°E and at
179°W) are held far more tightly by a box across the antimeridian than by -180..180. No
library we use does this: shapely works on the plane, and ``antimeridian.bbox`` bounds one
split polygon. So :class:`BoxUnion` keeps the longitudes covered as sorted, disjoint spans,
merged as boxes arrive, and its :meth:`~BoxUnion.bbox` leaves out the widest uncovered gap.

Collection extents use it. The partitions manifest and the GeoParquet ``bbox`` keep a plain
min/max box (-180..180 when an item crosses), which any client can prune with.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Spans kept at most. Beyond, the narrower half of the gaps between them close: the box
#: stays a cover, and the widest gaps, the ones :meth:`BoxUnion.bbox` looks for, stay open.
MAX_SPANS = 4096


def corners(box: Any) -> tuple[float, float, float, float] | None:
    """A 4- or 6-number STAC bbox as (west, south, east, north), west > east across the
    antimeridian; None when it is not such a list of numbers (the schemas report that).

    Example:
        >>> corners([1, 2, 0, 3, 4, 10]), corners("1,2,3,4")
        ((1, 2, 3, 4), None)
    """
    if not isinstance(box, list) or len(box) not in (4, 6):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return None
    half = len(box) // 2
    return (box[0], box[1], box[half], box[half + 1])


class BoxUnion:
    """A growing union of (west, south, east, north) boxes in degrees.

    Order-independent (short of :data:`MAX_SPANS`), so the extent that phase 1 counts item by
    item equals the one that the month writers fold partition by partition.

    Example:
        >>> u = BoxUnion()
        >>> u.add((178.0, -18.0, -179.0, -16.0))  # one scene across the antimeridian
        >>> u.add((175.0, -20.0, 176.0, -19.0))
        >>> u.bbox()
        [175.0, -20.0, -179.0, -16.0]
    """

    __slots__ = ("_hi", "_lo", "north", "south")

    def __init__(self) -> None:
        self._lo: list[float] = []  # sorted, disjoint spans [lo, hi] within [-180, 180]
        self._hi: list[float] = []
        self.south = float("inf")
        self.north = float("-inf")

    @classmethod
    def of(cls, bbox: Sequence[float]) -> BoxUnion:
        """A union holding one box (a 4-number bbox, west > east across the antimeridian)."""
        union = cls()
        union.add(bbox)
        return union

    def add(self, box: Sequence[float]) -> None:
        """Add one (west, south, east, north) box."""
        west, south, east, north = box
        self.south, self.north = min(self.south, south), max(self.north, north)
        if west > east:
            self._span(west, 180.0)
            self._span(-180.0, east)
        else:
            self._span(west, east)

    def add_columns(
        self, west: np.ndarray, south: np.ndarray, east: np.ndarray, north: np.ndarray
    ) -> None:
        """Add many boxes given as columns (a partition's ``bbox`` struct), merged
        vectorised before they reach the spans."""
        if not len(west):
            return
        self.south = min(self.south, float(south.min()))
        self.north = max(self.north, float(north.max()))
        crosses = west > east
        lo = np.concatenate([west, np.full(int(crosses.sum()), -180.0)])
        hi = np.concatenate([np.where(crosses, 180.0, east), east[crosses]])
        order = np.argsort(lo, kind="stable")
        lo, hi = lo[order], np.maximum.accumulate(hi[order])
        starts = np.flatnonzero(np.r_[True, lo[1:] > hi[:-1]])
        ends = np.r_[starts[1:] - 1, len(lo) - 1]
        for a, b in zip(lo[starts].tolist(), hi[ends].tolist(), strict=True):
            self._span(a, b)

    def update(self, other: BoxUnion) -> None:
        """Add every box of ``other``."""
        self.south, self.north = min(self.south, other.south), max(self.north, other.north)
        for lo, hi in zip(other._lo, other._hi, strict=True):
            self._span(lo, hi)

    def bbox(self) -> list[float] | None:
        """The smallest box holding every box added (west > east when it is smallest across
        the antimeridian); None when nothing was added. A tie keeps the box off the
        antimeridian, which every reader handles."""
        lo, hi = self._lo, self._hi
        if not lo:
            return None
        widest, west, east = (lo[0] + 180.0) + (180.0 - hi[-1]), lo[0], hi[-1]
        for k in range(1, len(lo)):
            if lo[k] - hi[k - 1] > widest:
                widest, west, east = lo[k] - hi[k - 1], lo[k], hi[k - 1]
        return [west, self.south, east, self.north]

    def _span(self, lo: float, hi: float) -> None:
        los, his = self._lo, self._hi
        i = bisect.bisect_left(his, lo)  # the first span that ends at or after lo
        if i < len(los) and los[i] <= lo and hi <= his[i]:
            return  # already covered: the common case
        j = i
        while j < len(los) and los[j] <= hi:
            lo, hi = min(lo, los[j]), max(hi, his[j])
            j += 1
        los[i:j], his[i:j] = [lo], [hi]
        if len(los) > MAX_SPANS:
            self._shrink()

    def _shrink(self) -> None:
        """Close all but the widest half of the gaps at once (amortised: one closing per
        span would cost a pass over all the spans for every new one)."""
        lo, hi = np.array(self._lo), np.array(self._hi)
        keep = np.sort(np.argsort(hi[:-1] - lo[1:], kind="stable")[: MAX_SPANS // 2 - 1])
        self._lo = [float(lo[0]), *lo[keep + 1].tolist()]
        self._hi = [*hi[keep].tolist(), float(hi[-1])]

    def __getstate__(self) -> tuple[list[float], list[float], float, float]:
        return self._lo, self._hi, self.south, self.north

    def __setstate__(self, state: tuple[list[float], list[float], float, float]) -> None:
        self._lo, self._hi, self.south, self.north = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BoxUnion) and self.__getstate__() == other.__getstate__()

    __hash__ = None  # type: ignore[assignment]  # mutable
