"""Land-cover fractions (water, vegetation, bare, built-up, snow/ice, cloud) from spectral
index rules, stored with the classification extension; see
:mod:`dafab_static.derive.landcover` for the rules and their references."""

from __future__ import annotations

from dafab_static.derive.projection import PROJECTION_SCHEMA
from dafab_static.pipeline.encode import COG_TYPE, cog, grid_fields
from dafab_static.pipeline.registry import Step, register_step
from dafab_static.pipeline.steps.cloud import CLASSIFICATION_SCHEMA
from dafab_static.pipeline.windows import Asset, StepOutput, Windows


@register_step("land_cover")
class LandCoverStep(Step):
    """Per-pixel classes and the percent of valid pixels in each.

    Uses the ``cloud`` layer of an earlier ``cloud_mask`` step when the recipe has one.
    Without a SWIR band there is no snow/ice or built-up class (noted in the summary).

    Parameters (recipe keys):
        raster: Publish the class raster as a COG asset.

    Properties: ``classification:classes`` (value, name, description, colour, count and
    percentage of each class) and, for CQL2 filters, ``dafab:<class>_percent``.
    """

    requires = ("green", "red", "nir")
    needs_reflectance = True
    provides = ("landcover",)

    def __init__(self, raster: bool = True) -> None:
        self.raster = bool(raster)

    def __call__(self, windows: Windows) -> StepOutput:
        from dafab_static.derive.landcover import (
            class_counts,
            classification_classes,
            classify,
            fractions,
        )

        refl, valid = windows.scene()
        if not bool(valid.any()):  # a cover of an empty scene would claim a 0 % nobody saw
            return StepOutput(notes=["no valid pixel"])
        cover = classify(refl, valid, windows.layers.get("cloud"))
        # Only the classes these bands can decide: without SWIR, "built-up: 0 %" would
        # claim an absence nobody looked for.
        shares = {k: v for k, v in fractions(cover.classes, valid).items() if k in cover.available}
        classes = [c for c in classification_classes(shares, class_counts(cover.classes, valid))
                   if c["name"] in cover.available]  # fmt: skip
        out = StepOutput(layers={"landcover": cover.classes}, extensions={CLASSIFICATION_SCHEMA})
        out.properties["classification:classes"] = classes
        out.properties.update(
            {f"dafab:{name.replace('-', '_')}_percent": round(v, 3) for name, v in shares.items()}
        )
        missing = sorted({"snow-ice", "built-up"} - set(cover.available))
        if missing:
            out.notes.append(f"no {' or '.join(missing)} class without a swir16 band")
        if self.raster:
            pixels = cover.classes.cpu().numpy()
            data = cog(pixels, windows.transform, windows.crs, nodata=0)
            legend = [{k: v for k, v in c.items() if k not in ("count", "percentage")}
                      for c in classes]  # fmt: skip
            out.assets["land-cover"] = Asset("land-cover.tif", data, {
                "type": COG_TYPE, "title": "Land-cover classes", "roles": ["data", "land-cover"],
                "classification:classes": legend, **grid_fields(pixels, windows.transform),
            })  # fmt: skip
            out.extensions.add(PROJECTION_SCHEMA)
        return out
