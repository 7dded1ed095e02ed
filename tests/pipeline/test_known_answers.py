"""The default recipe's steps on scenes whose truth is known, and on real Landsat 8 data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile

from dafab_static.errors import OptionError
from dafab_static.ingest.rasters import read_raster, read_scene_files
from dafab_static.pipeline import load_recipe, parse_recipe, run_pipeline
from tests.conftest import REPO_ROOT
from tests.pipeline.scenes import halves, s2_name, write_scene
from tests.pipeline.test_runner import Assets
from tests.spectra import SPECTRA

DEFAULT = REPO_ROOT / "pipelines" / "default.toml"


def run_default(items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any, Assets]:
    assets = Assets()
    out, report = run_pipeline(load_recipe(DEFAULT), items, put_asset=assets, workers=0)
    assert not report.failed, report.failed
    return out, report, assets


def test_half_water_half_vegetation(tmp_path: Path) -> None:
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(120, 160, "water", "vegetation"))
    (item,), _, _ = run_default([read_raster(str(path))])
    props = item["properties"]
    assert props["dafab:water_percent"] == pytest.approx(50, abs=2)
    assert props["dafab:vegetation_percent"] == pytest.approx(50, abs=2)
    assert props["eo:cloud_cover"] == pytest.approx(0, abs=2)
    classes = {c["name"]: c for c in props["classification:classes"]}
    assert classes["water"]["percentage"] == pytest.approx(50, abs=2)
    assert classes["water"]["count"] + classes["vegetation"]["count"] == pytest.approx(
        120 * 160, abs=0.04 * 120 * 160)  # fmt: skip


def _ndvi(cover: str) -> float:
    red, nir = SPECTRA[cover][2], SPECTRA[cover][3]
    return (nir - red) / (nir + red)


def test_digital_numbers_without_a_scale_get_the_products_documented_one(tmp_path: Path) -> None:
    """A Sentinel-2 L2A file of baseline 05.10 with no scale tags, and a Landsat C2 L2 band
    folder with no MTL: NDVI of their raw numbers ignored the offset (0.56 for 0.82 of
    vegetation). The product name documents the scale and offset; where it does not (no
    baseline in the name), the indices are not computed rather than wrong."""
    cover = halves(60, 80, "water", "vegetation")
    tagged = write_scene(tmp_path / f"{s2_name(15)}.tif", cover)
    bare = write_scene(tmp_path / f"{s2_name(16)}.tif", cover, scale_tags=False)
    unknown = write_scene(tmp_path / "S2A_32TNS_20240717_0_L2A.tif", cover, scale_tags=False)
    landsat = tmp_path / "LC09_L2SP_192028_20240918_20240919_02_T1"
    landsat.mkdir()
    with rasterio.open(bare) as src:  # the same reflectances as Landsat numbers
        profile = {**src.profile, "count": 1}
        for band, name in zip((1, 2, 3, 4), ("SR_B2", "SR_B3", "SR_B4", "SR_B5"), strict=True):
            refl = src.read(band).astype(float) * 1e-4 - 0.1
            numbers = np.where(src.read(band) > 0, np.rint((refl + 0.2) / 2.75e-5), 0)
            with rasterio.open(landsat / f"{landsat.name}_{name}.TIF", "w", **profile) as dst:
                dst.write(numbers.astype(np.uint16), 1)
    items = [read_raster(str(p)) for p in (tagged, bare, unknown)]
    items += read_scene_files([str(p) for p in sorted(landsat.iterdir())])
    out, report = run_pipeline(load_recipe(DEFAULT), items, put_asset=Assets(), workers=0)
    by_id = {it["id"]: it["properties"] for it in out}
    truth = by_id[s2_name(15)]  # the scale its tags give
    assert truth["dafab:ndvi_p90"] == pytest.approx(_ndvi("vegetation"), abs=0.05)
    for key in (s2_name(16), landsat.name):
        for name in ("dafab:ndvi_mean", "dafab:ndvi_p10", "dafab:ndvi_p90", "dafab:ndwi_p90"):
            assert by_id[key][name] == pytest.approx(truth[name], abs=0.002), (key, name)
    assert "dafab:ndvi_p90" not in by_id["S2A_32TNS_20240717_0_L2A"]
    assert any("indices: skipped, bands are not reflectance" in n for n in report.notes)


def test_painted_cloud_cover_and_scl_agreement(tmp_path: Path) -> None:
    rows, cols = 200, 200
    cover = halves(rows, cols, "vegetation", "bare")
    yy, xx = np.mgrid[:rows, :cols]
    disc = (yy - 100) ** 2 + (xx - 90) ** 2 < 54**2
    cover[disc] = "cloud"
    valid = np.ones((rows, cols), bool)
    valid[:, -20:] = False  # swath edge
    truth = 100 * (disc & valid).sum() / valid.sum()
    path = write_scene(tmp_path / f"{s2_name()}.tif", cover, valid=valid, scl=True)
    (item,), _, assets = run_default([read_raster(str(path))])
    props = item["properties"]
    # Fmask dilates clouds by 3 pixels: a disc of radius 54 grows by ~11% in area.
    dilated = 100 * (((yy - 100) ** 2 + (xx - 90) ** 2 < 57**2) & valid).sum() / valid.sum()
    assert 20 < truth < 30
    assert props["eo:cloud_cover"] == pytest.approx(dilated, abs=2)
    assert props["dafab:cloud_cover"] == props["eo:cloud_cover"]
    agreement = props["dafab:cloud_agreement"]
    assert agreement["reference"] == "scl"
    assert agreement["cloud_cover_reference"] == pytest.approx(truth, abs=0.05)
    assert agreement["overall_accuracy"] > 0.9 and agreement["cloud_recall"] == pytest.approx(1)
    with MemoryFile(assets[item["assets"]["cloud-mask"]["href"]]) as m, m.open() as mask:
        assert mask.profile["driver"] == "GTiff" and mask.nodata == 255
        band = mask.read(1)
    assert (band[:, -20:] == 255).all()
    assert band[100, 90] == 1 and band[100, 10] == 0


def test_annotations_are_crs84_polygons_of_cloud_and_water(tmp_path: Path) -> None:
    cover = halves(100, 100, "water", "vegetation")
    cover[20:50, 60:90] = "cloud"
    path = write_scene(tmp_path / f"{s2_name()}.tif", cover)
    (item,), _, assets = run_default([read_raster(str(path))])
    doc = json.loads(assets[item["assets"]["annotations"]["href"]])
    assert doc["type"] == "FeatureCollection"
    kinds = sorted(f["properties"]["class"] for f in doc["features"])
    assert kinds == ["cloud", "water"]
    west, south, east, north = item["bbox"]
    for feature in doc["features"]:
        ring = np.array(feature["geometry"]["coordinates"][0])
        assert (west - 1e-6 <= ring[:, 0]).all() and (ring[:, 0] <= east + 1e-6).all()
        assert (south - 1e-6 <= ring[:, 1]).all() and (ring[:, 1] <= north + 1e-6).all()
    cloud = next(f for f in doc["features"] if f["properties"]["class"] == "cloud")
    # 30 x 30 px of 10 m, dilated by 3 px each side: 36 x 36 px.
    assert cloud["properties"]["area_m2"] == pytest.approx(36 * 36 * 100, rel=0.05)


def test_steps_that_need_layers_must_come_later() -> None:
    with pytest.raises(OptionError, match="needs the landcover layer of an earlier step"):
        parse_recipe({"steps": [{"name": "cloud_mask"}, {"name": "annotations"}]})
    parse_recipe({"steps": [{"name": "cloud_mask"}, {"name": "annotations",
                                                     "classes": ["cloud"]}]})  # fmt: skip


def test_real_landsat8_scene(shared_data: Path, tmp_path: Path) -> None:
    """The real Landsat 8 crop as USGS ships it (a file per band, BQA, the MTL with the
    reflectance scale and sun angles), read as one scene: TOA reflectance corrected for the
    sun's elevation (64.7°), as USGS defines it; our cover then agrees with the BQA's."""
    folder = shared_data / "rasters" / "landsat8-LC80200392015216LGN00"
    (item,) = read_scene_files(sorted(folder.glob("*.tif")))
    assert item["id"] == "LC80200392015216LGN00"
    (out,), report, assets = run_default([item])
    props = out["properties"]
    assert props["dafab:cloud_agreement"]["reference"] == "bqa_pre_collection"
    agreement = props["dafab:cloud_agreement"]
    # Measured: 32.0% against the BQA's 31.9%, cloud F1 0.77 (IoU 0.63). Without the sun
    # correction the reflectances read 10 % low: 21.7%, F1 0.68.
    assert agreement["cloud_cover"] == pytest.approx(agreement["cloud_cover_reference"], abs=3)
    assert agreement["cloud_f1"] > 0.74
    assert sum(props[f"dafab:{c}_percent"] for c in ("water", "vegetation", "bare", "cloud")
               ) == pytest.approx(100, abs=0.01)  # fmt: skip
    mask_file = MemoryFile(assets[out["assets"]["cloud-mask"]["href"]])
    with mask_file, mask_file.open() as mask, rasterio.open(folder / "l8_B2.tif") as src:
        assert mask.crs == src.crs and mask.bounds == pytest.approx(src.bounds)
    assert report.processed == 1


def test_default_recipe_on_every_real_raster(shared_data: Path, tmp_path: Path) -> None:
    """Every real raster goes through the default recipe without a failure; the steps
    whose bands a file lacks are passed over with a note."""
    import datetime as dt

    from dafab_static.pipeline import run

    rasters = shared_data / "rasters"
    sources = [str(rasters / "*.tif"), str(rasters / "landsat8-*" / "*.tif")]
    report = run(str(DEFAULT), sources, str(tmp_path / "out"),
                 workers=0, datetime=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))  # fmt: skip
    assert report.failed == []
    lines = (tmp_path / "out" / "items.ndjson").read_text().splitlines()
    items = {i["id"]: i for i in map(json.loads, lines) if "mlm:name" not in i["properties"]}
    # 5 single files; the Landsat 8 folder's per-band files are one scene. One file has no
    # band with a name to read, and passes through with a note.
    assert len(items) == 6
    assert report.processed == report.scenes == 5
    unread = "no raster band named by eo:bands or bands: nothing to read"
    assert report.notes[unread] == 1 and report.noted[unread] == "L7_ETMs"  # 6 unnamed bands
    assert f"note: {unread} (1 scene, e.g. L7_ETMs)" in report.summary()
    landsat = items["LC80200392015216LGN00"]
    assert {"B2", "B3", "B4", "B5", "BQA"} <= set(landsat["assets"])
    assert -1 < landsat["properties"]["dafab:ndvi_mean"] < 1  # red and nir from two files
    # The RGB picture is named by its colour interpretation: a thumbnail, no NDVI.
    assert "thumbnail" in items["RGB.byte"]["assets"]
    assert "dafab:ndvi_mean" not in items["RGB.byte"]["properties"]
    # Six unnamed Landsat 7 bands: nothing to compute, nothing invented.
    assert set(items["L7_ETMs"]["assets"]) == {"data"}


def test_readme_quick_start_default_recipe_on_the_sample(tmp_path: Path) -> None:
    """The README's main job: the bundled sample through the default recipe."""
    import dafab_static
    from dafab_static.options import BuildOptions

    out = tmp_path / "catalog"
    report = dafab_static.build([], str(out), sample=True,
                                options=BuildOptions(pipeline=str(DEFAULT)))  # fmt: skip
    assert report.ok, report.summary()
    assert (report.pipeline.scenes, report.pipeline.processed) == (4, 4)
    assert report.collections["dafab-models"] == 1
    assert dafab_static.validate(str(out)).ok
    found = dafab_static.search(str(out), filter="eo:cloud_cover >= 0 and dafab:water_percent > 0")
    assert found.count() == 4
    thumbs = sorted(out.glob("assets/*/*/thumbnail.png"))
    assert len(thumbs) == 4
    # Every sample scene has SWIR and its product's quality band (SCL or QA_PIXEL): the full
    # Fmask test set runs, and our mask is compared with the product's own.
    for item in dafab_static.search(str(out), filter="dafab:water_percent > 0"):
        props = item["properties"]
        assert "dafab:built_up_percent" in props and "dafab:ndsi_mean" in props
        assert "nir_swir" in props["dafab:cloud_tests"]
        agreement = props["dafab:cloud_agreement"]
        assert agreement["reference"] == ("qa_pixel" if "LC09" in item["id"] else "scl")
        assert agreement["overall_accuracy"] > 0.9


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
def test_cpu_and_gpu_agree_within_the_stated_tolerance(tmp_path: Path) -> None:
    """The README's tolerance: reductions within 1e-4 (6 decimals reported; a class share may
    move by a pixel or two), embeddings at cosine >= 0.999 under bfloat16 autocast."""
    cover = halves(128, 160, "water", "vegetation")
    cover[20:60, 90:140] = "cloud"
    item = read_raster(str(write_scene(tmp_path / f"{s2_name()}.tif", cover, scl=True)))
    recipe = load_recipe(DEFAULT)
    (cpu,), _ = run_pipeline(recipe, [item], put_asset=Assets(), device="cpu", workers=0)
    (gpu,), _ = run_pipeline(recipe, [item], put_asset=Assets(), device="cuda", workers=0)
    pixel = 100 / (128 * 160)
    for key, value in cpu["properties"].items():
        if key.startswith("dafab:") and isinstance(value, float):
            tolerance = 3 * pixel if key.endswith(("_percent", "_cover")) else 1e-4
            assert gpu["properties"][key] == pytest.approx(value, abs=tolerance), key
    a = np.asarray(cpu["properties"]["emb:dafab-random-conv-v1"])
    b = np.asarray(gpu["properties"]["emb:dafab-random-conv-v1"])
    assert float(a @ b) >= 0.999


def test_masks_of_a_decimated_scene_say_their_own_grid(tmp_path: Path) -> None:
    """A scene larger than max_size is analysed on a coarser grid: its mask COGs carry that
    grid's proj:shape and proj:transform on their assets, not the item's finer ones."""
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(128, 128, "water", "vegetation"))
    item = read_raster(str(path))
    steps = [{"name": "cloud_mask"}, {"name": "land_cover"}]
    recipe = parse_recipe({"execution": {"max_size": 64, "window": 32}, "steps": steps})
    (out,), _ = run_pipeline(recipe, [item], put_asset=(assets := Assets()), workers=0)
    assert out["properties"]["proj:shape"] == [128, 128]
    for key in ("cloud-mask", "land-cover"):
        asset = out["assets"][key]
        with MemoryFile(assets[asset["href"]]) as memory, memory.open() as mask:
            assert asset["proj:shape"] == [mask.height, mask.width] == [64, 64]
            assert asset["proj:transform"] == list(mask.transform)[:6]
            assert mask.transform.a == 2 * out["properties"]["proj:transform"][0]  # 20 m
    assert (
        "https://stac-extensions.github.io/projection/v2.0.0/schema.json" in out["stac_extensions"]
    )
