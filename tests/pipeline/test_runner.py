"""The runner on real GeoTIFFs: known answers, failures reported, provenance, workers."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from dafab_static.errors import InputError
from dafab_static.ingest.rasters import read_raster
from dafab_static.pipeline import Asset, parse_recipe, run_pipeline
from tests.pipeline.scenes import halves, s2_name, write_scene


class Assets(dict[str, bytes]):
    """put_asset into memory."""

    def __call__(self, item: Any, key: str, asset: Asset) -> str:
        href = f"mem://{item['id']}/{asset.filename}"
        self[href] = asset.data
        return href


def recipe(*steps: dict[str, Any], **execution: Any) -> Any:
    return parse_recipe({"execution": {"window": 64, **execution}, "steps": list(steps)})


@pytest.fixture
def half_scene(tmp_path: Path) -> dict[str, Any]:
    valid = np.ones((100, 120), bool)
    valid[:, :10] = False  # a nodata border, outside every denominator
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(100, 120, "water", "vegetation"),
                       valid=valid)  # fmt: skip
    return read_raster(str(path))


def test_indices_match_numpy(half_scene: dict[str, Any]) -> None:
    (item,), report = run_pipeline(recipe({"name": "indices"}), [half_scene],
                                   put_asset=Assets(), workers=0)  # fmt: skip
    with rasterio.open(half_scene["assets"]["data"]["href"]) as src:
        data = src.read().astype(np.float64) * 1e-4 - 0.1
        valid = src.read_masks(1) > 0
    blue, green, red, nir, swir16, _ = data
    expected = {
        "ndvi": ((nir - red) / (nir + red))[valid],
        "ndwi": ((green - nir) / (green + nir))[valid],
        "ndsi": ((green - swir16) / (green + swir16))[valid],
    }
    props = item["properties"]
    for name, values in expected.items():
        assert props[f"dafab:{name}_mean"] == pytest.approx(values.mean(), abs=1e-5)
        assert props[f"dafab:{name}_p50"] == pytest.approx(np.percentile(values, 50), abs=1e-4)
        assert props[f"dafab:{name}_p90"] == pytest.approx(np.percentile(values, 90), abs=1e-4)
    assert props["dafab:band_statistics"]["blue"]["mean"] == pytest.approx(blue[valid].mean(),
                                                                           abs=1e-5)  # fmt: skip
    # the population stddev (ddof 0), as raster:bands gives it
    assert props["dafab:band_statistics"]["blue"]["stddev"] == pytest.approx(
        blue[valid].std(), abs=1e-6)  # fmt: skip
    assert props["dafab:valid_percent"] == pytest.approx(100 * 110 / 120, abs=1e-3)
    assert report.processed == 1 and not report.failed


def test_a_scene_of_one_valid_pixel_has_a_stddev_of_zero(tmp_path: Path) -> None:
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(1, 1, "water", "water"))
    scene = read_raster(str(path))
    (item,), report = run_pipeline(recipe({"name": "indices"}, max_size=16, window=16), [scene],
                                   put_asset=Assets(), workers=0)  # fmt: skip
    stats = item["properties"]["dafab:band_statistics"]
    assert report.processed == 1 and {s["stddev"] for s in stats.values()} == {0.0}


@pytest.mark.parametrize("tagged", [True, False])
def test_decimated_edges_mix_no_fill_when_the_file_tags_no_nodata(
    tmp_path: Path, tagged: bool
) -> None:
    """ESA's JPEG 2000 bands tag no nodata; the item's raster:bands give it. Read at half
    resolution, the fill along the diagonal edge of one uniform cover must not be averaged
    into its pixels (red stddev was 0.0025 and NDVI off in the 4th decimal)."""
    cover = np.full((64, 64), "vegetation", dtype="<U10")
    valid = np.fromfunction(lambda r, c: r + c >= 63, (64, 64))
    path = write_scene(tmp_path / f"{s2_name()}.tif", cover, valid=valid, noise=0.0,
                       nodata_tag=tagged)  # fmt: skip
    scene = read_raster(str(path))
    assert scene["assets"]["data"]["raster:bands"][0]["nodata"] == 0
    (item,), _ = run_pipeline(recipe({"name": "indices"}, max_size=32, window=16), [scene],
                              put_asset=Assets(), workers=0)  # fmt: skip
    props = item["properties"]
    assert {s["stddev"] for s in props["dafab:band_statistics"].values()} == {0.0}
    with rasterio.open(path) as src:
        red, nir = (src.read(b)[valid][0] * 1e-4 - 0.1 for b in (3, 4))
    assert props["dafab:ndvi_mean"] == pytest.approx((nir - red) / (nir + red), abs=1e-6)


def test_indices_stay_within_minus_one_and_one_over_dark_water(tmp_path: Path) -> None:
    """L2A's -0.1 offset leaves dark water slightly below zero reflectance; dividing by a
    sum near zero gave an NDVI mean of -321 and an NDWI mean of 465."""
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(32, 32, "water", "water"))
    rng = np.random.default_rng(0)
    with rasterio.open(path, "r+") as dst:  # digital numbers 990..1029: reflectance ~0
        dst.write(rng.integers(990, 1030, size=(dst.count, 32, 32)).astype("uint16"))
    (item,), report = run_pipeline(recipe({"name": "indices"}), [read_raster(str(path))],
                                   put_asset=Assets(), workers=0)  # fmt: skip
    values = {k: v for k, v in item["properties"].items() if k.startswith("dafab:nd")}
    assert report.processed == 1 and len(values) == 3 * 4
    assert all(-1 <= v <= 1 for v in values.values()), values


def test_provenance_records_software_device_and_datetime(
    half_scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    (item,), _ = run_pipeline(recipe({"name": "indices"}), [half_scene], put_asset=Assets(),
                              device="cpu", workers=0)  # fmt: skip
    props = item["properties"]
    assert props["processing:datetime"] == "2023-11-14T22:13:20Z"
    assert set(props["processing:software"]) == {"dafab-static", "torch"}
    assert props["dafab:device"].startswith("cpu")
    assert "steps indices" in props["processing:lineage"]
    assert "https://stac-extensions.github.io/processing/v1.2.0/schema.json" in item[
        "stac_extensions"]  # fmt: skip


def test_thumbnail_is_a_png_with_transparent_nodata(half_scene: dict[str, Any]) -> None:
    assets = Assets()
    (item,), _ = run_pipeline(recipe({"name": "thumbnail", "size": 60}), [half_scene],
                              put_asset=assets, workers=0)  # fmt: skip
    asset = item["assets"]["thumbnail"]
    assert asset["roles"] == ["thumbnail"] and asset["type"] == "image/png"
    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    with (
        pytest.warns(NotGeoreferencedWarning),
        MemoryFile(assets[asset["href"]]) as m,
        m.open() as png,
    ):
        assert (png.driver, png.count, png.width, png.height) == ("PNG", 4, 60, 50)
        rgba = png.read()
    assert rgba[3, :, :4].max() == 0  # nodata border: transparent
    assert rgba[3, :, 10:].min() == 255
    # Asked for more pixels than the scene's 120 x 100 grid: the grid's own size, no upscaling.
    (big,), _ = run_pipeline(recipe({"name": "thumbnail", "size": 4096}), [half_scene],
                             put_asset=assets, workers=0)  # fmt: skip
    with (
        pytest.warns(NotGeoreferencedWarning),
        MemoryFile(assets[big["assets"]["thumbnail"]["href"]]) as m,
        m.open() as png,
    ):
        assert (png.width, png.height) == (120, 100)
    # Water (left) is darker than vegetation (right) in green.
    assert rgba[1, :, 10:25].mean() < rgba[1, :, 40:].mean()


def test_failing_scene_is_reported_and_the_rest_goes_on(
    half_scene: dict[str, Any], tmp_path: Path
) -> None:
    broken = {**half_scene, "id": "broken",
              "assets": {"data": {**half_scene["assets"]["data"],
                                  "href": str(tmp_path / "gone.tif")}}}  # fmt: skip
    items, report = run_pipeline(recipe({"name": "indices"}), [broken, half_scene],
                                 put_asset=Assets(), workers=0)  # fmt: skip
    assert [i["id"] for i in items] == ["broken", half_scene["id"]]
    assert "dafab:ndvi_mean" not in items[0]["properties"]
    assert "dafab:ndvi_mean" in items[1]["properties"]
    assert report.processed == 1
    assert len(report.failed) == 1 and report.failed[0].startswith("broken: item 'broken'")
    assert "gone.tif" in report.failed[0]
    with pytest.raises(InputError, match=r"gone\.tif"):
        run_pipeline(recipe({"name": "indices"}), [broken], put_asset=Assets(), workers=0,
                     strict=True)  # fmt: skip


def _with_band(item: dict[str, Any], item_id: str, key: str, change: Any) -> dict[str, Any]:
    data = copy.deepcopy(item["assets"]["data"])
    change(data)
    return {**item, "id": item_id, "assets": {"data": data}}


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a["raster:bands"][0].update(scale="abc"),
     "item 'bad': asset 'data': raster:bands[0].scale 'abc': not a number"),
    (lambda a: a.update({"eo:bands": {"x": 1}}),
     "item 'bad': asset 'data': eo:bands is not a list of band objects"),
    (lambda a: a["eo:bands"].append({"name": "B13", "common_name": "swir22"}),
     "has 6 band(s), but its asset describes band 7 (B13)"),
])  # fmt: skip
def test_a_malformed_band_description_fails_that_scene_only(
    half_scene: dict[str, Any], change: Any, message: str
) -> None:
    """Other hubs' band lists may hold anything: the scene fails with a message naming
    the item, asset and field (a traceback ended the whole run), and the rest goes on."""
    bad = _with_band(half_scene, "bad", "data", change)
    items, report = run_pipeline(recipe({"name": "indices"}), [bad, half_scene],
                                 put_asset=Assets(), workers=0)  # fmt: skip
    assert [i["id"] for i in items] == ["bad", half_scene["id"]]
    assert report.processed == 1 and len(report.failed) == 1
    assert report.failed[0].startswith("bad: ") and message in report.failed[0], report.failed
    with pytest.raises(InputError, match=re.escape(message)):
        run_pipeline(recipe({"name": "indices"}), [bad], put_asset=Assets(), workers=0,
                     strict=True)  # fmt: skip


@pytest.mark.parametrize("on", ["bands", "asset"])
def test_stac_1_1_bands_with_raster_2_scale_and_offset_read_as_raster_bands(
    half_scene: dict[str, Any], on: str
) -> None:
    """Raster extension 2.0 moves scale and offset into STAC 1.1's ``bands`` as
    ``raster:scale``/``raster:offset``, or onto the asset when all its bands share them
    (nodata too, as common metadata): ignored, NDVI came from raw digital numbers and the
    cloud and land-cover steps were skipped as "not reflectance"."""

    def to_v2(asset: dict[str, Any]) -> None:
        eo, raster = asset.pop("eo:bands"), asset.pop("raster:bands")
        asset["bands"] = [
            {"name": e["name"], "eo:common_name": e["common_name"], "nodata": r.get("nodata"),
             "raster:scale": r["scale"], "raster:offset": r["offset"]}
            for e, r in zip(eo, raster, strict=True)
        ]  # fmt: skip
        if on == "asset":
            shared = {k: asset["bands"][0][k] for k in ("nodata", "raster:scale", "raster:offset")}
            assert all(all(b[k] == v for k, v in shared.items()) for b in asset["bands"])
            for band in asset["bands"]:
                for k in shared:
                    del band[k]
            asset.update(shared)

    v2 = _with_band(half_scene, "v2", "data", to_v2)
    assert "raster:bands" not in v2["assets"]["data"] and "raster:bands" in half_scene["assets"][
        "data"]  # fmt: skip
    steps = ({"name": "indices"}, {"name": "land_cover"})
    items, report = run_pipeline(recipe(*steps), [half_scene, v2], put_asset=Assets(), workers=0)
    assert report.processed == 2 and not report.notes, report.notes
    old, new = (i["properties"] for i in items)
    assert new["dafab:ndvi_mean"] == old["dafab:ndvi_mean"]
    assert new["classification:classes"] == old["classification:classes"]


@pytest.mark.parametrize(("value", "stored"), [
    ("tensor", 0.25), ("numpy", 0.25), ("array", [0.25, 0.25]), ("nested", {"a": [[0.25]]}),
])  # fmt: skip
def test_numpy_and_torch_values_of_a_users_step_are_stored_as_json(
    half_scene: dict[str, Any], value: str, stored: Any
) -> None:
    """A step returning ``red.mean()`` instead of ``float(...)``: writing the items raised
    "Type is not JSON serializable: Tensor" and lost every scene of the run."""
    step = {"name": "tests.pipeline.plugin:Returns", "kind": value}
    (item,), report = run_pipeline(recipe(step), [half_scene], put_asset=Assets(), workers=0)
    assert report.processed == 1 and item["properties"]["test:value"] == stored
    assert type(item["properties"]["test:value"]) is type(stored)


def test_a_value_json_cannot_hold_fails_that_scene_naming_step_and_property(
    half_scene: dict[str, Any],
) -> None:
    step = {"name": "tests.pipeline.plugin:Returns", "kind": "object"}
    (item,), report = run_pipeline(recipe(step), [half_scene], put_asset=Assets(), workers=0)
    assert report.processed == 0 and "test:value" not in item["properties"]
    assert report.failed == [
        f"{half_scene['id']}: step tests.pipeline.plugin:Returns: property 'test:value' is a "
        "object, which JSON cannot hold (Type is not JSON serializable: object)"
    ]


def test_missing_bands_skip_the_step_with_a_note(tmp_path: Path) -> None:
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(40, 40, "water", "bare"),
                       bands=("B02", "B03", "B04"))  # fmt: skip
    (item,), report = run_pipeline(
        recipe({"name": "tests.pipeline.plugin:Brightness"}, {"name": "indices"}),
        [read_raster(str(path))], put_asset=Assets(), workers=0,
    )  # fmt: skip
    assert "test:red_mean" in item["properties"]
    assert "dafab:ndvi_mean" not in item["properties"]
    assert report.notes["indices: ndvi not computed: no nir band"] == 1
    assert (
        report.to_dict()["note_examples"]["indices: ndvi not computed: no nir band"] == (item["id"])
    )


@pytest.mark.parametrize("methods", [None, ["spawn"]], ids=["here", "no-forkserver"])
def test_reader_threads_and_processes_give_the_same_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, methods: list[str] | None
) -> None:
    if methods is not None:  # as on Windows, which has neither fork nor forkserver
        monkeypatch.setattr("multiprocessing.get_all_start_methods", lambda: methods)
    from dafab_static.pipeline import runner

    started: list[str] = []

    class Pool(runner.ProcessPoolExecutor):  # type: ignore[misc,name-defined]
        def __init__(self, workers: int, **kw: Any) -> None:
            started.append(kw["mp_context"].get_start_method())
            super().__init__(workers, **kw)

    monkeypatch.setattr(runner, "ProcessPoolExecutor", Pool)
    items = [
        read_raster(str(write_scene(tmp_path / f"{s2_name(day)}.tif",
                                    halves(80, 80, "water", "vegetation"), seed=day)))
        for day in (1, 2, 3)
    ]  # fmt: skip
    steps = ({"name": "indices"},)
    inline, _ = run_pipeline(recipe(*steps), items, put_asset=Assets(), workers=0)
    key = "dafab:ndvi_mean"
    expected = sorted((i["id"], i["properties"][key]) for i in inline)
    for reader in ("threads", "processes"):
        pooled, report = run_pipeline(recipe(*steps, reader=reader), items, put_asset=Assets(),
                                      workers=2)  # fmt: skip
        assert report.processed == 3
        assert sorted((i["id"], i["properties"][key]) for i in pooled) == expected
    assert started == ["spawn" if methods else "forkserver"]


def test_a_script_from_stdin_reads_with_threads(
    half_scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `python - < script.py`: children cannot re-run a main module named <stdin>, and a
    # process pool would break (BrokenProcessPool); threads read the scenes instead.
    import sys

    from dafab_static.pipeline import runner

    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    monkeypatch.setattr(runner, "ProcessPoolExecutor", None)  # any pool would fail loudly
    (item,), report = run_pipeline(recipe({"name": "indices"}, reader="processes"),
                                   [half_scene], put_asset=Assets(), workers=2)  # fmt: skip
    assert report.processed == 1 and "dafab:ndvi_mean" in item["properties"]
    assert report.notes == {"reader = 'processes' needs a main module on disk: threads read": 1}


def test_large_scenes_are_read_decimated(tmp_path: Path) -> None:
    path = write_scene(tmp_path / f"{s2_name()}.tif", halves(300, 400, "water", "vegetation"))
    seen: dict[str, Any] = {}

    class Probe:
        def __call__(self, item: Any, key: str, asset: Asset) -> str:
            return "x"

    from dafab_static.pipeline.reader import read_scene

    scene = read_scene(read_raster(str(path)), max_size=100, window=32)
    seen["shape"] = scene.pixels.shape
    assert seen["shape"] == (6, 75, 100)
    assert scene.valid.all()
    # Averaging keeps the halves: left water (nir ~0.015), right vegetation (nir ~0.38).
    assert scene.pixels.dtype == np.uint16  # raw counts travel; reflectance on the device
    nir = scene.physical()[3]
    assert nir[:, :45].mean() == pytest.approx(0.015, abs=0.003)
    assert nir[:, 55:].mean() == pytest.approx(0.38, abs=0.003)


def test_scene_from_the_grid_equals_the_mosaic_of_its_windows(half_scene: dict[str, Any]) -> None:
    import dataclasses

    import torch

    from dafab_static.pipeline.reader import read_scene
    from dafab_static.pipeline.runner import _windows

    scene = read_scene(half_scene, max_size=1024, window=48)  # 100 x 120: padded windows
    windows = _windows(half_scene, scene, torch.device("cpu"))
    by_hand = dataclasses.replace(windows, grid=None)  # as a user builds them: no grid
    (refl, valid), (refl2, valid2) = windows.scene(), by_hand.scene()
    assert torch.equal(valid, valid2) and valid.shape == (100, 120)
    assert all(torch.equal(refl[b], refl2[b]) for b in refl)
    assert np.allclose(refl["nir"].numpy(), scene.physical()[3])


def test_decimated_quality_band_keeps_its_class_values(tmp_path: Path) -> None:
    """Classes are never averaged: SCL 4 (vegetation) beside 6 (water) must not read as 5."""
    from dafab_static.pipeline.reader import read_scene

    cover = halves(200, 200, "water", "vegetation")
    cover[::2, 90:110] = "water"  # a striped border: every coarse pixel there mixes both
    path = write_scene(tmp_path / f"{s2_name()}.tif", cover, scl=True)
    scene = read_scene(read_raster(str(path)), max_size=64, window=32)
    assert scene.qa is not None and scene.qa.shape == scene.valid.shape
    assert set(np.unique(scene.qa).tolist()) <= {4, 6}


def test_reader_processes_take_the_storage_variables_of_this_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Reader processes fork from the forkserver, whose environment is this process's when
    # it started (perhaps before the credentials were set); GDAL reads s3:// with them.
    import os
    from multiprocessing import forkserver

    from dafab_static.pipeline.runner import Pipeline

    forkserver.ensure_running()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "set-after-the-forkserver")
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "7")
    pipeline = Pipeline(recipe({"name": "indices"}, reader="processes"), put_asset=Assets(),
                        workers=1)  # fmt: skip
    with pipeline._pool() as pool:
        seen = pool.submit(os.getenv, "AWS_ACCESS_KEY_ID").result(60)
        timeout = pool.submit(os.getenv, "GDAL_HTTP_TIMEOUT").result(60)
    assert (seen, timeout) == ("set-after-the-forkserver", "7")


def test_a_scene_without_a_valid_pixel_claims_no_cover(tmp_path: Path) -> None:
    # A hub item whose raster is all nodata: every step that measures pixels skips it alike.
    path = tmp_path / "empty.tif"
    with rasterio.open(path, "w", driver="GTiff", width=64, height=64, count=4, dtype="uint16",
                       crs="EPSG:32632", transform=rasterio.Affine(10, 0, 500000, 0, -10, 5100000),
                       nodata=0) as dst:  # fmt: skip
        dst.write(np.zeros((4, 64, 64), "uint16"))
    names = (("B02", "blue"), ("B03", "green"), ("B04", "red"), ("B08", "nir"))
    bands = [{"name": n, "common_name": c} for n, c in names]
    item = {"type": "Feature", "stac_version": "1.1.0", "id": "empty", "collection": "s2",
            "geometry": {"type": "Point", "coordinates": [9.0, 46.0]}, "bbox": [9, 46, 9, 46],
            "properties": {"datetime": "2024-07-01T10:00:00Z"}, "links": [],
            "assets": {"data": {"href": str(path), "roles": ["data"], "eo:bands": bands,
                                "raster:bands": [{"nodata": 0, "scale": 1e-4}] * 4}}}  # fmt: skip
    steps = ("indices", "cloud_mask", "land_cover", "embedding")
    (out,), report = run_pipeline(recipe(*({"name": s} for s in steps)), [item],
                                  put_asset=Assets(), workers=0)  # fmt: skip
    assert not report.failed, report.failed
    assert [p for p in out["properties"] if "cover" in p or "classification" in p
            or p.endswith("_percent")] == []  # fmt: skip
    assert {n for n in report.notes if "valid pixel" in n} == {
        "indices: no valid pixel", "cloud_mask: no valid pixel", "land_cover: no valid pixel",
        "embedding: no valid pixel to embed"}  # fmt: skip
