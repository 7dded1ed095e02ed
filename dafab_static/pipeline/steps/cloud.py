"""Cloud and cloud-shadow masks: ``eo:cloud_cover``, a mask COG, and agreement with the
scene's own classification (Sentinel-2 SCL, Landsat QA_PIXEL) where it has one.

The method is Fmask's potential-cloud and potential-shadow tests (Zhu & Woodcock 2012,
with the Sentinel-2 adaptation of Zhu, Wang & Woodcock 2015 and Qiu et al. 2019); see
:mod:`dafab_static.derive.cloud` for the tests and their thresholds.
"""

from __future__ import annotations

from typing import Any

from dafab_static.derive.projection import PROJECTION_SCHEMA
from dafab_static.errors import OptionError
from dafab_static.pipeline.encode import COG_TYPE, cog, grid_fields
from dafab_static.pipeline.registry import Step, register_step
from dafab_static.pipeline.windows import Asset, StepOutput, Windows

EO_SCHEMA = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
CLASSIFICATION_SCHEMA = "https://stac-extensions.github.io/classification/v1.1.0/schema.json"
#: Values of the mask COG.
MASK_CLASSES = [
    {"value": 0, "name": "clear", "description": "Clear", "color_hint": "FFFFFF"},
    {"value": 1, "name": "cloud", "description": "Cloud (Fmask potential cloud, dilated)",
     "color_hint": "E0E0E0"},
    {"value": 2, "name": "cloud-shadow", "description": "Cloud shadow (potential shadow)",
     "color_hint": "404040"},
    {"value": 255, "name": "nodata", "description": "No data", "nodata": True},
]  # fmt: skip


@register_step("cloud_mask")
class CloudMaskStep(Step):
    """Fmask-style cloud and shadow; ``eo:cloud_cover`` and a mask COG asset.

    Parameters (recipe keys):
        dilation: Pixels by which cloud and shadow are dilated (Fmask's default 3).
        shadow_distance: Farthest a shadow may lie from its cloud, in analysis pixels, when
            the item gives no sun angles (``view:sun_azimuth``/``view:sun_elevation``).
        mask: Publish the mask as a COG asset.

    Properties: ``eo:cloud_cover`` (kept when the provider set it; ours is always in
    ``dafab:cloud_cover``), ``dafab:cloud_shadow_cover``, ``dafab:cloud_tests``; with a
    quality band, ``dafab:cloud_agreement`` (overall accuracy, kappa, cloud F1 and IoU, both
    covers) against it.
    """

    requires = ("blue", "green", "red", "nir")
    needs_reflectance = True
    provides = ("cloud", "shadow")

    def __init__(self, dilation: int = 3, shadow_distance: int = 100, mask: bool = True) -> None:
        for name, value in (("dilation", dilation), ("shadow_distance", shadow_distance)):
            if not isinstance(value, int) or value < 0:
                raise OptionError(f"{name}={value!r}: expected a non-negative integer")
        self.dilation, self.shadow_distance, self.mask = dilation, shadow_distance, bool(mask)

    def __call__(self, windows: Windows) -> StepOutput:
        import torch

        from dafab_static.derive.cloud import (
            cloud_cover,
            cloud_mask,
            shadow_cover,
        )
        from dafab_static.derive.qa_reference import agreement, reference_mask, reference_valid

        refl, valid = windows.scene()
        if not bool(valid.any()):  # a cover of an empty scene would claim a 0 % nobody saw
            return StepOutput(notes=["no valid pixel"])
        props = windows.item.get("properties", {})
        result = cloud_mask(
            refl, valid, cloud_dilation=self.dilation, shadow_dilation=self.dilation,
            shadow_distance=self.shadow_distance, sun_azimuth=props.get("view:sun_azimuth"),
            sun_elevation=props.get("view:sun_elevation"),
            grid=(windows.transform.a, windows.transform.b, windows.transform.d,
                  windows.transform.e),
        )  # fmt: skip
        cover = round(cloud_cover(result, valid), 2)
        out = StepOutput(layers={"cloud": result.cloud, "shadow": result.shadow})
        out.properties.update({
            "dafab:cloud_cover": cover,
            "dafab:cloud_shadow_cover": round(shadow_cover(result, valid), 2),
            "dafab:cloud_tests": list(result.tests),
        })  # fmt: skip
        if "eo:cloud_cover" not in props:
            out.properties["eo:cloud_cover"] = cover
            out.extensions.add(EO_SCHEMA)
        qa = windows.scene_qa()
        if qa is not None and windows.qa_kind:
            kind: Any = windows.qa_kind
            both = valid & reference_valid(qa, kind)
            scores = agreement(result, reference_mask(qa, kind), both)
            rounded = {k: round(float(v), 4) for k, v in scores.items()}
            out.properties["dafab:cloud_agreement"] = {"reference": kind, **rounded}
        if self.mask:
            band = torch.where(result.cloud, 1, torch.where(result.shadow, 2, 0)).to(torch.uint8)
            band = torch.where(valid, band, torch.full_like(band, 255))
            pixels = band.cpu().numpy()
            data = cog(pixels, windows.transform, windows.crs, nodata=255)
            out.assets["cloud-mask"] = Asset("cloud-mask.tif", data, {
                "type": COG_TYPE, "title": "Cloud and cloud-shadow mask",
                "roles": ["cloud", "cloud-shadow"], "classification:classes": MASK_CLASSES,
                **grid_fields(pixels, windows.transform),
            })  # fmt: skip
            out.extensions.update((CLASSIFICATION_SCHEMA, PROJECTION_SCHEMA))
        return out
