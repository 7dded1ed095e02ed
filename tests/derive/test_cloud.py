"""Cloud and shadow masks: synthetic scenes with known answers, QA decoding, agreement, real L8."""

from __future__ import annotations

import heapq
import math
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F

from dafab_static.derive.cloud import (
    CloudMask,
    cloud_cover,
    cloud_mask,
    shadow_cover,
)
from dafab_static.derive.morphology import dilate, fill_by_erosion, fill_holes
from dafab_static.derive.qa_reference import agreement, reference_mask, reference_valid
from dafab_static.errors import InputError
from tests.spectra import BANDS
from tests.spectra import SPECTRA as BASE_SPECTRA

VNIR = BANDS[:4]
SPECTRA = dict(BASE_SPECTRA)
#: Vegetation under a cloud shadow: diffuse light only, about a quarter of the direct signal.
SPECTRA["shadowed"] = tuple(0.25 * v for v in SPECTRA["vegetation"])
L8 = "rasters/landsat8-LC80200392015216LGN00"


def scene(labels: dict[str, torch.Tensor], shape: tuple[int, int], seed: int = 0) -> dict:
    """Paint each label's spectrum where its mask is True (later labels win), plus noise."""
    generator = torch.Generator().manual_seed(seed)
    refl = {}
    for i, band in enumerate(BANDS):
        values = torch.zeros(shape)
        for name, where in labels.items():
            values[where] = SPECTRA[name][i]
        refl[band] = values + 0.005 * torch.randn(shape, generator=generator)
    return refl


def disc(shape: tuple[int, int], row: float, col: float, radius: float) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius**2


def border_valid(shape: tuple[int, int], width: int) -> torch.Tensor:
    valid = torch.zeros(shape, dtype=torch.bool)
    valid[width:-width, width:-width] = True
    return valid


def vnir(refl: dict) -> dict:
    return {k: refl[k] for k in VNIR}


@pytest.fixture(scope="module")
def blob_scene() -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """300x300, a 10-pixel nodata border, vegetation | bare halves, a lake, a cloud disc."""
    shape = (300, 300)
    left = torch.zeros(shape, dtype=torch.bool)
    left[:, :150] = True
    lake = disc(shape, 240, 60, 20)
    cloud = disc(shape, 130, 150, 76.4)
    refl = scene({"bare": ~left, "vegetation": left, "water": lake, "cloud": cloud}, shape)
    return refl, border_valid(shape, 10), cloud, lake


@pytest.mark.parametrize("bands", [BANDS, VNIR], ids=["6-band", "4-band"])
def test_painted_cloud_blob_gives_its_cover(blob_scene, bands) -> None:
    refl, valid, cloud, lake = blob_scene
    painted = 100.0 * int((cloud & valid).sum()) / int(valid.sum())
    assert 23.0 < painted < 23.8  # the disc is cut by the nodata border: 23.4 % of valid
    mask = cloud_mask({k: refl[k] for k in bands}, valid, cloud_dilation=0)
    assert abs(cloud_cover(mask, valid) - painted) < 2.0
    assert torch.equal(mask.cloud, cloud & valid)  # the noise (0.005) flips no pixel
    assert not (mask.cloud & ~valid).any() and not (mask.shadow & ~valid).any()
    assert not (mask.shadow & lake).any()  # the lake is a NIR basin, but Fmask's water test
    assert shadow_cover(mask, valid) < 0.5


def test_tests_applied_per_band_set(blob_scene) -> None:
    refl, valid, _, _ = blob_scene
    assert cloud_mask(refl, valid).tests == (
        "basic",
        "whiteness",
        "hot",
        "nir_swir",
        "flood_fill_nir",
        "flood_fill_swir16",
        "shadow_near",
    )
    assert cloud_mask(vnir(refl), valid).tests == (
        "brightness",
        "whiteness",
        "hot",
        "flood_fill_nir",
        "shadow_near",
    )
    with_cirrus = {**refl, "cirrus": torch.full(valid.shape, 0.002)}
    assert cloud_mask(with_cirrus, valid).tests[:5] == (
        "basic",
        "whiteness",
        "hot",
        "nir_swir",
        "cirrus",
    )


def test_cloud_dilation_grows_by_the_fmask_square(blob_scene) -> None:
    refl, valid, cloud, _ = blob_scene
    mask = cloud_mask(refl, valid)  # default: dilate by 3 pixels, as Fmask
    grown = F.max_pool2d(cloud[None, None].float(), 7, 1, 3)[0, 0] > 0
    assert torch.equal(mask.cloud, grown & valid)


def test_nodata_border_is_out_of_the_denominator() -> None:
    shape = (100, 100)
    cloud = torch.zeros(shape, dtype=torch.bool)
    cloud[:, :40] = True  # 40 % of the raster, reaching into the border
    refl = scene({"vegetation": ~cloud, "cloud": cloud}, shape)
    valid = border_valid(shape, 10)  # 80 x 80 valid, of which 80 x 30 under cloud
    mask = cloud_mask(refl, valid, cloud_dilation=0)
    assert int(mask.cloud.sum()) == 80 * 30
    assert cloud_cover(mask, valid) == pytest.approx(37.5)


def test_snow_is_cloud_only_without_swir() -> None:
    shape = (40, 40)
    refl = scene({"snow-ice": torch.ones(shape, dtype=torch.bool)}, shape)
    valid = torch.ones(shape, dtype=torch.bool)
    assert cloud_cover(cloud_mask(refl, valid), valid) == 0.0  # NDSI 0.84 fails eq. 1
    assert cloud_cover(cloud_mask(vnir(refl), valid), valid) == 100.0


@pytest.mark.parametrize("name", ["water", "vegetation", "bare", "built-up"])
def test_clear_targets_are_not_cloud(name: str) -> None:
    shape = (40, 40)
    refl = scene({name: torch.ones(shape, dtype=torch.bool)}, shape)
    valid = torch.ones(shape, dtype=torch.bool)
    for bands in (BANDS, VNIR):
        mask = cloud_mask({k: refl[k] for k in bands}, valid)
        assert not mask.cloud.any() and not mask.shadow.any()


def test_thin_cirrus_is_cloud_with_the_cirrus_band() -> None:
    shape = (60, 60)
    refl = scene({"vegetation": torch.ones(shape, dtype=torch.bool)}, shape)
    cirrus = torch.full(shape, 0.002)
    cirrus[10:30, 10:40] = 0.03  # invisible in the other bands, 0.028 above the clear floor
    valid = torch.ones(shape, dtype=torch.bool)
    mask = cloud_mask({**refl, "cirrus": cirrus}, valid, cloud_dilation=0)
    assert int(mask.cloud.sum()) == 20 * 30
    assert not cloud_mask(refl, valid).cloud.any()


@pytest.fixture(scope="module")
def shadow_scene() -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Vegetation, a cloud, its shadow 100 px to the north-west, a dark decoy south-east."""
    shape = (300, 300)
    cloud = disc(shape, 180, 180, 30)
    shadow = disc(shape, 180 - 70.7, 180 - 70.7, 30) & ~cloud
    decoy = disc(shape, 250, 250, 18)
    labels = {"vegetation": torch.ones(shape, dtype=torch.bool), "shadowed": shadow | decoy}
    refl = scene({**labels, "cloud": cloud}, shape, seed=1)
    return refl, shadow, decoy, cloud


def test_shadow_follows_the_sun(shadow_scene) -> None:
    refl, shadow, decoy, _ = shadow_scene
    valid = torch.ones(shadow.shape, dtype=torch.bool)
    # Sun in the south-east at 45 degrees: a 3 km cloud casts 100 px (30 m) to the north-west.
    mask = cloud_mask(
        refl,
        valid,
        sun_azimuth=135.0,
        sun_elevation=45.0,
        pixel_size=30.0,
        cloud_height=(1000.0, 5000.0),
        shadow_dilation=0,
    )
    assert mask.tests[-1] == "shadow_line"
    assert int((mask.shadow & shadow).sum()) / int(shadow.sum()) > 0.95
    assert int((mask.shadow & decoy).sum()) == 0
    assert int((mask.shadow & ~shadow).sum()) < 0.02 * int(shadow.sum())


@pytest.mark.parametrize("flip", ["rows", "cols", "both"])
def test_shadow_follows_the_sun_on_any_grid(shadow_scene, flip: str) -> None:
    """The same ground seen on a south-up (or east-left) grid: its shadows are the
    north-up ones, flipped. The grid was assumed north-up, so they fell the wrong way."""
    refl, shadow, _, _ = shadow_scene
    valid = torch.ones(shadow.shape, dtype=torch.bool)
    dims = {"rows": [0], "cols": [1], "both": [0, 1]}[flip]
    a, e = (-30.0 if 1 in dims else 30.0), (30.0 if 0 in dims else -30.0)
    sun = {"sun_azimuth": 135.0, "sun_elevation": 45.0, "cloud_height": (1000.0, 5000.0),
           "shadow_dilation": 0}  # fmt: skip
    north_up = cloud_mask(refl, valid, pixel_size=30.0, **sun)
    flipped = cloud_mask({k: v.flip(dims) for k, v in refl.items()}, valid, grid=(a, 0, 0, e),
                         **sun)  # fmt: skip
    assert torch.equal(flipped.shadow.flip(dims), north_up.shadow)
    assert int((flipped.shadow.flip(dims) & shadow).sum()) / int(shadow.sum()) > 0.95


def test_sun_angles_must_be_numbers(blob_scene) -> None:
    refl, valid, _, _ = blob_scene
    with pytest.raises(InputError, match="view:sun_azimuth 'south': not a number"):
        cloud_mask(refl, valid, sun_azimuth="south", sun_elevation=40.0, pixel_size=30.0)  # type: ignore[arg-type]


def test_shadow_near_clouds_without_sun_takes_any_dark_basin(shadow_scene) -> None:
    refl, shadow, decoy, _ = shadow_scene
    valid = torch.ones(shadow.shape, dtype=torch.bool)
    mask = cloud_mask(refl, valid, shadow_dilation=0, shadow_distance=100)
    assert int((mask.shadow & shadow).sum()) / int(shadow.sum()) > 0.95
    assert int((mask.shadow & decoy).sum()) / int(decoy.sum()) > 0.95
    far = cloud_mask(refl, valid, shadow_dilation=0, shadow_distance=20)
    assert int((far.shadow & decoy).sum()) == 0  # the decoy is 40+ px from the cloud


def test_invalid_inputs_name_the_culprit(blob_scene) -> None:
    refl, valid, _, _ = blob_scene
    with pytest.raises(InputError, match="lacks band\\(s\\) nir"):
        cloud_mask({k: refl[k] for k in ("blue", "green", "red")}, valid)
    with pytest.raises(InputError, match="band 'swir16': shape \\(10, 10\\)"):
        cloud_mask({**refl, "swir16": torch.zeros(10, 10)}, valid)
    with pytest.raises(InputError, match="valid: expected a 2-D bool"):
        cloud_mask(refl, valid.float())
    with pytest.raises(InputError, match="pixel_size"):
        cloud_mask(refl, valid, sun_azimuth=120.0, sun_elevation=40.0)
    with pytest.raises(InputError, match="sun_elevation -5"):
        cloud_mask(refl, valid, sun_azimuth=120.0, sun_elevation=-5.0, pixel_size=30.0)


def priority_flood(image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Independent oracle: Barnes et al. 2014 priority-flood (4-connected) from the border."""
    rows, cols = image.shape
    out = np.full(image.shape, np.nan)
    queue: list[tuple[float, int, int]] = []
    for r in range(rows):
        for c in range(cols):
            if seeds[r, c] or r in (0, rows - 1) or c in (0, cols - 1):
                out[r, c] = image[r, c]
                heapq.heappush(queue, (float(image[r, c]), r, c))
    while queue:
        level, r, c = heapq.heappop(queue)
        for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nr < rows and 0 <= nc < cols and np.isnan(out[nr, nc]):
                out[nr, nc] = max(float(image[nr, nc]), level)
                heapq.heappush(queue, (out[nr, nc], nr, nc))
    return out


@pytest.mark.parametrize("shape", [(20, 20), (47, 83)])
def test_fill_holes_matches_priority_flood(shape: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(sum(shape))
    image = torch.rand(shape, generator=generator, dtype=torch.float64)
    seeds = torch.rand(shape, generator=generator) > 0.97
    expected = priority_flood(image.numpy(), seeds.numpy())
    assert np.array_equal(fill_holes(image, seeds, passes=1000).numpy(), expected)


@pytest.mark.parametrize("shape", [(20, 20), (47, 83), (64, 9)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_devices_fill_by_erosion_matches_priority_flood(
    shape: tuple[int, int], dtype: torch.dtype
) -> None:
    """The CUDA path's algorithm, run here on the CPU (a 4-sweep check interval makes the
    convergence test fire mid-fill)."""
    generator = torch.Generator().manual_seed(sum(shape) + 1)
    image = torch.rand(shape, generator=generator).to(dtype)
    border = torch.rand(shape, generator=generator) > 0.97
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    expected = priority_flood(image.double().numpy(), border.numpy())
    got = fill_by_erosion(image, border, check_every=4)
    assert got.dtype == dtype
    assert np.array_equal(got.double().numpy(), expected)


def test_fill_holes_fills_a_pit_to_its_rim() -> None:
    image = torch.full((9, 9), 0.2)
    image[2:7, 2:7] = 0.5  # a rim ...
    image[3:6, 3:6] = 0.1  # ... around a pit
    filled = fill_holes(image, torch.zeros(9, 9, dtype=torch.bool))
    assert torch.equal(filled[3:6, 3:6], torch.full((3, 3), 0.5))
    assert torch.equal(filled[0], image[0])


@pytest.mark.parametrize("radius", [0, 1, 3, 8, 50])
def test_dilate_matches_a_square_max_pool(radius: int) -> None:
    mask = torch.rand(61, 37, generator=torch.Generator().manual_seed(radius)) > 0.995
    mask[0, 0] = True
    expected = F.max_pool2d(mask[None, None].float(), 2 * radius + 1, 1, radius)[0, 0] > 0
    assert torch.equal(dilate(mask, radius), expected)


def test_scl_decoding_is_exact() -> None:
    scl = torch.arange(12, dtype=torch.uint8).reshape(3, 4)  # 0 no data .. 11 snow
    mask = reference_mask(scl, "scl")
    assert mask.cloud.flatten().tolist() == [v in (8, 9, 10) for v in range(12)]
    assert mask.shadow.flatten().tolist() == [v == 3 for v in range(12)]
    assert reference_valid(scl, "scl").flatten().tolist() == [v != 0 for v in range(12)]
    no_cirrus = reference_mask(scl, "scl", include_cirrus=False)
    assert no_cirrus.cloud.flatten().tolist() == [v in (8, 9) for v in range(12)]
    assert (mask.tests, no_cirrus.tests) == (("scl", "cirrus"), ("scl",))


def test_qa_pixel_decoding_is_exact() -> None:
    fill, dilated, cirrus, cloud, shadow = 1, 1 << 1, 1 << 2, 1 << 3, 1 << 4
    clear = 21824  # C2 "clear, low confidence everything" (bits 6, 8, 10, 12, 14)
    values = [fill, clear, dilated, cirrus, cloud | 3 << 8, shadow, cloud | shadow, fill | cloud]
    qa = torch.from_numpy(np.array([values], dtype=np.uint16))
    mask = reference_mask(qa, "qa_pixel")
    assert mask.cloud[0].tolist() == [False, False, True, True, True, False, True, False]
    assert mask.shadow[0].tolist() == [False, False, False, False, False, True, False, False]
    assert reference_valid(qa, "qa_pixel")[0].tolist() == [False] + [True] * 6 + [False]
    assert reference_mask(qa, "qa_pixel", include_cirrus=False).cloud[0, 3].item() is False


def test_qa_of_the_wrong_kind_or_dtype_is_refused() -> None:
    with pytest.raises(InputError, match=r"qa: expected a 2-D integer tensor, got torch\.float32"):
        reference_mask(torch.zeros(2, 2), "scl")
    with pytest.raises(InputError, match="kind 'fmask'"):
        reference_mask(torch.zeros(2, 2, dtype=torch.int32), "fmask")  # type: ignore[arg-type]


def square(shape: tuple[int, int], rows: slice, cols: slice) -> torch.Tensor:
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[rows, cols] = True
    return mask


def test_agreement_with_itself_is_perfect_and_with_a_shift_drops_as_expected() -> None:
    valid = torch.ones(100, 100, dtype=torch.bool)
    none = torch.zeros_like(valid)
    ours = CloudMask(square((100, 100), slice(30, 70), slice(30, 70)), none, ())
    same = agreement(ours, ours, valid)
    assert [same[k] for k in ("overall_accuracy", "kappa", "cloud_f1", "cloud_iou")] == [1.0] * 4
    assert same["cloud_cover"] == same["cloud_cover_reference"] == 16.0
    # Shifted 4 columns: 1440 px agree, 160 + 160 disagree.
    shifted = CloudMask(square((100, 100), slice(30, 70), slice(34, 74)), none, ())
    scores = agreement(ours, shifted, valid)
    assert scores["overall_accuracy"] == pytest.approx(0.968)
    expected_kappa = (0.968 - (0.16**2 + 0.84**2)) / (1 - (0.16**2 + 0.84**2))
    assert scores["kappa"] == pytest.approx(expected_kappa)  # 0.880952...
    assert scores["cloud_precision"] == scores["cloud_recall"] == pytest.approx(0.9)
    assert scores["cloud_f1"] == pytest.approx(0.9)
    assert scores["cloud_iou"] == pytest.approx(1440 / 1760)


def test_agreement_counts_three_classes_on_valid_pixels_only() -> None:
    def mask(labels: list[int]) -> CloudMask:
        t = torch.tensor([labels])
        return CloudMask(t == 1, t == 2, ())

    ours = mask([0, 1, 1, 2, 2, 0, 0, 1, 0, 0, 1])
    ref = mask([0, 1, 2, 2, 0, 0, 1, 1, 0, 0, 0])
    valid = torch.tensor([[True] * 10 + [False]])
    scores = agreement(ours, ref, valid)
    # Confusion (reference rows, ours columns): [[4, 0, 1], [1, 2, 0], [0, 1, 1]]
    assert scores["overall_accuracy"] == pytest.approx(0.7)
    assert scores["kappa"] == pytest.approx((0.7 - 0.38) / 0.62)
    assert scores["cloud_precision"] == scores["cloud_recall"] == pytest.approx(2 / 3)
    assert scores["cloud_iou"] == pytest.approx(0.5)
    assert (scores["shadow_cover"], scores["shadow_cover_reference"]) == (20.0, 20.0)
    assert scores["pixels"] == 10.0


def test_agreement_without_cloud_anywhere_is_perfect() -> None:
    valid = torch.ones(4, 4, dtype=torch.bool)
    clear = CloudMask(torch.zeros_like(valid), torch.zeros_like(valid), ())
    scores = agreement(clear, clear, valid)
    assert scores["kappa"] == scores["cloud_precision"] == scores["cloud_iou"] == 1.0
    assert cloud_cover(clear, torch.zeros_like(valid)) == 0.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_gives_the_cpu_mask(blob_scene) -> None:
    refl, valid, _, _ = blob_scene
    cpu = cloud_mask(refl, valid)
    gpu = cloud_mask({k: v.cuda() for k, v in refl.items()}, valid.cuda())
    assert gpu.cloud.is_cuda
    assert torch.equal(gpu.cloud.cpu(), cpu.cloud)
    assert torch.equal(gpu.shadow.cpu(), cpu.shadow)


# Real data: a Landsat 8 crop (pre-collection L1T) of a cumulus field, with its BQA band.


def landsat_toa(folder: Path) -> tuple[dict, float, float]:
    """TOA reflectance of B2-B5 from DN with the MTL's rescaling and sun elevation."""
    mtl = (folder / "l8_MTL.txt").read_text()

    def number(key: str) -> float:
        return float(re.search(rf"\b{key} = ([-+0-9.E]+)", mtl).group(1))  # type: ignore[union-attr]

    elevation = number("SUN_ELEVATION")
    refl = {}
    for band, name in ((2, "blue"), (3, "green"), (4, "red"), (5, "nir")):
        with rasterio.open(folder / f"l8_B{band}.tif") as dataset:
            dn = dataset.read(1).astype(np.float32)
        scaled = dn * number(f"REFLECTANCE_MULT_BAND_{band}") + number(
            f"REFLECTANCE_ADD_BAND_{band}"
        )
        refl[name] = torch.from_numpy(scaled / math.sin(math.radians(elevation)))
    return refl, number("SUN_AZIMUTH"), elevation


def read_bqa(folder: Path) -> torch.Tensor:
    with rasterio.open(folder / "l8_BQA.tif") as dataset:
        return torch.from_numpy(dataset.read(1))


def test_pre_collection_bqa_decoding_matches_its_readme_counts(shared_data: Path) -> None:
    qa = read_bqa(shared_data / L8)
    assert qa.dtype == torch.uint16
    assert int(reference_valid(qa, "bqa_pre_collection").sum()) == 627 * 603  # no fill
    high = reference_mask(qa, "bqa_pre_collection", include_cirrus=False)
    assert int(high.cloud.sum()) == 22776  # values 61440, 61472, 53248, 53280
    assert not high.shadow.any()  # bits 6-7 are reserved: no shadow flag
    with_cirrus = reference_mask(qa, "bqa_pre_collection")
    assert int(with_cirrus.cloud.sum()) == 117856 + 2591 + 41  # high cirrus or high cloud


def test_landsat8_cumulus_field_against_its_bqa(shared_data: Path) -> None:
    folder = shared_data / L8
    refl, azimuth, elevation = landsat_toa(folder)
    qa = read_bqa(folder).to(torch.int32)
    valid = reference_valid(qa, "bqa_pre_collection")
    high = reference_mask(qa, "bqa_pre_collection", include_cirrus=False)
    confidence = (qa >> 14) & 3
    medium_or_high = CloudMask(confidence >= 2, torch.zeros_like(valid), ("bqa",))
    mask = cloud_mask(refl, valid, cloud_dilation=0)
    assert mask.tests == ("brightness", "whiteness", "hot", "flood_fill_nir", "shadow_near")
    cover = cloud_cover(mask, valid)
    # The 4-band tests sit between the BQA's high (6.02 %) and medium+high (14.86 %) cloud.
    assert cloud_cover(high, valid) < cover < cloud_cover(medium_or_high, valid)
    assert agreement(mask, high, valid)["cloud_recall"] > 0.8
    assert agreement(mask, medium_or_high, valid)["cloud_precision"] > 0.8
    lit = cloud_mask(refl, valid, sun_azimuth=azimuth, sun_elevation=elevation, pixel_size=30.0)
    assert agreement(lit, high, valid)["cloud_recall"] > 0.9  # dilated by 3 px, as Fmask
    assert lit.tests[-1] == "shadow_line"
    assert 0.0 < shadow_cover(lit, valid) < shadow_cover(cloud_mask(refl, valid), valid)
