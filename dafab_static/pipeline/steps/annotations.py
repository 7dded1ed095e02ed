"""GeoJSON annotations: cloud polygons and water bodies, vectorised from the layers of
earlier steps, simplified, in CRS84 (see :mod:`dafab_static.derive.vectorize`)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from dafab_static.errors import OptionError
from dafab_static.media_types import GEOJSON
from dafab_static.pipeline.registry import Step, register_step
from dafab_static.pipeline.windows import Asset, StepOutput, Windows

#: Annotation class to (layer, how to make its mask from the layer).
_CLASSES = {"cloud": "cloud", "cloud-shadow": "shadow", "water": "landcover",
            "snow-ice": "landcover"}  # fmt: skip
_LANDCOVER_VALUE = {"water": 1, "snow-ice": 5}


@register_step("annotations")
class Annotations(Step):
    """A FeatureCollection asset of the recipe's masks as polygons.

    Parameters (recipe keys):
        classes: Which of ``cloud``, ``cloud-shadow``, ``water``, ``snow-ice``.
        simplify: Douglas-Peucker tolerance in analysis pixels.
        min_area: Polygons smaller than this many pixels are dropped.
    """

    def __init__(
        self,
        classes: Sequence[str] = ("cloud", "water"),
        simplify: float = 1.0,
        min_area: int = 4,
    ) -> None:
        unknown = sorted(set(classes) - set(_CLASSES))
        if unknown:
            raise OptionError(f"classes: unknown {unknown[0]!r}; known: {', '.join(_CLASSES)}")
        if not isinstance(simplify, (int, float)) or simplify < 0:
            raise OptionError(f"simplify={simplify!r}: expected a non-negative number")
        if not isinstance(min_area, int) or min_area < 0:
            raise OptionError(f"min_area={min_area!r}: expected a number of pixels, 0 or more")
        self.classes = tuple(classes)
        self.simplify, self.min_area = float(simplify), int(min_area)
        self.needs = tuple(dict.fromkeys(_CLASSES[c] for c in self.classes))

    def __call__(self, windows: Windows) -> StepOutput:
        from dafab_static.derive.vectorize import feature_collection, mask_features

        if not any(layer in windows.layers for layer in self.needs):
            return StepOutput(notes=["skipped: the steps giving its layers did not run"])
        features = []
        for name in self.classes:
            layer = windows.layers.get(_CLASSES[name])
            if layer is None:
                continue  # e.g. land cover skipped for want of bands: noted by that step
            if name in _LANDCOVER_VALUE:
                layer = layer == _LANDCOVER_VALUE[name]
            features += mask_features(layer.cpu().numpy(), windows.transform, windows.crs,
                                      properties={"class": name}, simplify_px=self.simplify,
                                      min_area_px=self.min_area)  # fmt: skip
        data = orjson.dumps(feature_collection(features))
        return StepOutput(assets={"annotations": Asset("annotations.geojson", data, {
            "type": GEOJSON, "title": f"Annotations: {', '.join(self.classes)}",
            "roles": ["annotation", "metadata"],
        })})  # fmt: skip
