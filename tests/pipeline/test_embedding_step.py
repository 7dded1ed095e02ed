"""Embedding steps: deterministic vectors, near-duplicates first, pretrained weights from a
file, pooled product embeddings, model cards that validate, fixed-size index columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rasterio
import torch
from affine import Affine

import dafab_static
from dafab_static.derive.resnet import ResNet18
from dafab_static.errors import DafabError
from dafab_static.ingest.rasters import read_raster
from dafab_static.options import BuildOptions
from dafab_static.pipeline import Pipeline, parse_recipe, run_pipeline
from tests.pipeline.scenes import halves, s2_name, write_scene
from tests.pipeline.test_runner import Assets

MODEL = "emb:dafab-random-conv-v1"


def scene(tmp_path: Path, day: int, cover: Any, seed: int) -> dict[str, Any]:
    return read_raster(str(write_scene(tmp_path / f"{s2_name(day)}.tif", cover, seed=seed)))


def embed(items: list[dict[str, Any]], **step: Any) -> list[dict[str, Any]]:
    recipe = parse_recipe({"execution": {"window": 32},
                           "steps": [{"name": "embedding", **step}]})  # fmt: skip
    out, report = run_pipeline(recipe, items, put_asset=Assets(), workers=0)
    assert not report.failed, report.failed
    return out


def test_embeddings_are_deterministic_unit_vectors(tmp_path: Path) -> None:
    item = scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1)
    first, second = embed([item])[0], embed([item])[0]
    vector = np.array(first["properties"][MODEL])
    assert vector.shape == (64,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    assert first["properties"][MODEL] == second["properties"][MODEL]


# The first torch.log of a process, entered by two OpenMP threads at once (woken together
# after a step spent its time off torch), sometimes computed one thread's half with another
# MKL kernel: the first scene's vector changed between identical runs. Only a fresh process
# has a first call, and the race is lost in about 1 process of 4 without the fix.
_FRESH_RUN = """
import sys, torch
from dafab_static.ingest.rasters import read_raster
from dafab_static.pipeline import parse_recipe, run_pipeline
torch.set_num_threads(2)
recipe = parse_recipe({"execution": {"window": 256}, "steps": [
    {"name": "tests.pipeline.plugin:Pause"}, {"name": "embedding"}]})
item = read_raster(sys.argv[1])
for _ in range(2):
    (out,), _ = run_pipeline(recipe, [item], put_asset=lambda i, k, a: "", workers=0)
    print(out["properties"]["emb:dafab-random-conv-v1"])
"""


def test_the_first_embedding_of_a_process_is_bit_stable(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write_scene(tmp_path / f"{s2_name(1)}.tif", halves(256, 256, "water", "vegetation"))
    root = Path(__file__).parents[2]
    outputs = set()
    for _ in range(8):
        run = subprocess.run([sys.executable, "-c", _FRESH_RUN, str(path)], cwd=root,
                             capture_output=True, text=True, check=True)  # fmt: skip
        outputs.update(run.stdout.splitlines())
    assert len(outputs) == 1, "first and later vectors differ"


def test_the_default_encoder_on_other_bands_is_another_model(tmp_path: Path) -> None:
    """Other bands make another network: its vectors get their own model id (and index
    column), never the default model's; normalisation is for pretrained encoders only."""
    item = scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1)
    (out,) = embed([item], bands=["red", "green", "blue"])
    assert "emb:dafab-random-conv-v1-red-green-blue" in out["properties"]
    assert MODEL not in out["properties"]
    with pytest.raises(DafabError, match="mean and std normalise a pretrained encoder"):
        embed([item], mean=[0.1] * 4)


def test_near_duplicate_ranks_first(tmp_path: Path) -> None:
    cover = halves(64, 64, "water", "vegetation")
    items = [
        scene(tmp_path, 1, cover, 1),
        scene(tmp_path, 2, cover, 2),  # same place, other noise: a near-duplicate
        scene(tmp_path, 3, halves(64, 64, "bare", "vegetation"), 3),
        scene(tmp_path, 4, halves(64, 64, "water", "water"), 4),
        scene(tmp_path, 5, halves(64, 64, "cloud", "bare"), 5),
    ]
    vectors = np.array([i["properties"][MODEL] for i in embed(items)])
    scores = vectors[1:] @ vectors[0]
    assert int(np.argmax(scores)) == 0
    assert scores[0] > 0.99 and scores[0] - max(scores[1:]) > 0.01


def test_chip_embeddings_asset(tmp_path: Path) -> None:
    assets = Assets()
    item = scene(tmp_path, 1, halves(64, 96, "water", "vegetation"), 1)
    recipe = parse_recipe({"execution": {"window": 32}, "steps": [{"name": "embedding",
                                                                   "chips": True}]})  # fmt: skip
    (out,), _ = run_pipeline(recipe, [item], put_asset=assets, workers=0)
    asset = out["assets"]["embeddings-dafab-random-conv-v1"]
    assert asset["emb:model"] == "dafab-random-conv-v1" and asset["emb:dimensions"] == 64
    import io

    table = pq.read_table(io.BytesIO(assets[asset["href"]]))
    assert table["level"].to_pylist() == ["scene"] + ["chip"] * 6
    assert str(table.schema.field("embedding").type) == "fixed_size_list<element: float>[64]"
    assert np.allclose(table["embedding"][0].values.to_numpy(), out["properties"][MODEL],
                       atol=1e-6)  # fmt: skip
    assert b"geo" in table.schema.metadata
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["columns"]["geometry"]["geometry_types"] == ["Polygon"]


@pytest.mark.parametrize("degrees", [30, 90])
def test_chip_footprints_follow_a_rotated_grid(tmp_path: Path, degrees: int) -> None:
    """Each chip's polygon covers its pixels on a rotated grid (the rotation terms of the
    affine were dropped: at 90 degrees every chip was a polygon of zero area)."""
    import io

    import shapely
    from rasterio.warp import transform_geom

    path = write_scene(tmp_path / f"{s2_name(1)}.tif", halves(64, 96, "water", "vegetation"))
    turned = Affine(10, 0, 500000, 0, -10, 5100000) @ Affine.rotation(degrees)
    with rasterio.open(path, "r+") as dst:
        dst.transform = turned
    assets = Assets()
    recipe = parse_recipe({"execution": {"window": 32}, "steps": [{"name": "embedding",
                                                                   "chips": True}]})  # fmt: skip
    (out,), report = run_pipeline(recipe, [read_raster(str(path))], put_asset=assets, workers=0)
    assert not report.failed, report.failed
    asset = out["assets"]["embeddings-dafab-random-conv-v1"]
    table = pq.read_table(io.BytesIO(assets[asset["href"]]))
    chips = [row for row in table.to_pylist() if row["level"] == "chip"]
    assert len(chips) == 6
    for chip in chips:
        r, c = chip["row"], chip["col"]
        corners = [turned @ xy for xy in ((c, r), (c + 32, r), (c + 32, r + 32), (c, r + 32))]
        truth = shapely.geometry.shape(transform_geom(
            "EPSG:32632", "OGC:CRS84", {"type": "Polygon", "coordinates": [[*corners, corners[0]]]}
        ))  # fmt: skip
        got = shapely.from_wkb(chip["geometry"])
        assert got.is_valid and got.area > 0
        assert got.intersection(truth).area / got.union(truth).area > 0.99, (r, c)


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(7)
    net = ResNet18(in_chans=4)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "resnet18-test.pth"
    torch.save(net.state_dict(), path)
    return path


def test_pretrained_resnet_from_a_file_and_a_url(tmp_path: Path, weights: Path) -> None:
    item = scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1)
    step = {"encoder": "resnet18", "model": "test-resnet", "bands": ["blue", "green", "red", "nir"]}
    by_path = embed([item], weights=str(weights), **step)[0]["properties"]["emb:test-resnet"]
    by_url = embed([item], weights=weights.as_uri(), **step)[0]["properties"]["emb:test-resnet"]
    assert by_path == by_url and len(by_path) == 64


@pytest.mark.parametrize(
    ("bands", "message"),
    [(["blue", "green", "red"], "expect 4 input bands"), (None, ""),
     ("nan", "entry 'conv1.weight' holds NaN or infinite values")],
)  # fmt: skip
def test_bad_weights_give_a_clear_error(tmp_path: Path, weights: Path, bands: Any,
                                        message: str) -> None:  # fmt: skip
    if bands is None:  # not a checkpoint at all
        weights.write_bytes(b"not a checkpoint")
        bands = ["blue", "green", "red", "nir"]
    elif bands == "nan":  # a diverged training run: every vector was 64 nulls
        state = torch.load(weights, weights_only=True)
        torch.save({k: v.fill_(float("nan")) if v.is_floating_point() else v
                    for k, v in state.items()}, weights)  # fmt: skip
        bands = ["blue", "green", "red", "nir"]
    step = {"name": "embedding", "encoder": "resnet18", "weights": str(weights), "model": "m",
            "bands": bands}  # fmt: skip
    recipe = parse_recipe({"steps": [step]})
    with pytest.raises(DafabError) as error:
        Pipeline(recipe, put_asset=Assets())
    assert str(weights) in str(error.value) and message in str(error.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (np.random.default_rng(0).bytes(300), "Unsupported operand 95"),
        (b"", "truncated or unreadable"),
        (b"PK\x03\x04garbage", "PytorchStreamReader failed reading zip archive: not a ZIP archive"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_named_in_one_line(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    from dafab_static.derive.resnet import load_resnet

    path = tmp_path / "random.pth"
    path.write_bytes(content)
    with pytest.raises(DafabError) as error:
        load_resnet(str(path), bands=["blue", "green", "red", "nir"], model_id="m")
    # torch's own text is a page advising weights_only=False, which would run the file's code
    assert str(error.value) == f"{path}: not a PyTorch checkpoint ({reason})"


def test_an_item_without_geometry_is_embedded_and_keeps_the_other_steps(
    tmp_path: Path,
) -> None:
    """STAC allows ``"geometry": null``: the scene row of the embeddings asset has a null
    footprint (it failed the scene with "'NoneType' object is not iterable", losing the
    other steps' results), and the product step, which needs a footprint, says so."""
    item = {**scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1), "geometry": None}
    del item["bbox"]
    product = write_product(tmp_path / "aef.tif", item, np.ones(64) / 8)
    recipe = parse_recipe(
        {
            "steps": [
                {"name": "indices"},
                {"name": "embedding"},
                {"name": "product_embedding", "raster": str(product)},
            ]
        }
    )
    (out,), report = run_pipeline(recipe, [item], put_asset=(assets := Assets()), workers=0)
    assert report.processed == 1 and not report.failed
    assert "dafab:ndvi_mean" in out["properties"]
    assert len(out["properties"]["emb:dafab-random-conv-v1"]) == 64
    assert report.notes == {"product_embedding: no geometry to pool the product over": 1}
    table = pq.read_table(pa.BufferReader(
        assets[f"mem://{item['id']}/embeddings-dafab-random-conv-v1.parquet"]))  # fmt: skip
    assert table["geometry"].to_pylist() == [None]
    assert pa.types.is_binary(table.schema.field("geometry").type)  # WKB, as GeoParquet asks
    assert "bbox" not in json.loads(table.schema.metadata[b"geo"])["columns"]["geometry"]


def write_product(path: Path, item: dict[str, Any], vector: np.ndarray) -> Path:
    """A 64-band int8 raster, quantised as Google's release, covering the item's scene."""
    q = np.clip(np.rint(np.sign(vector) * np.sqrt(np.abs(vector)) * 127.5), -127, 127)
    data = np.broadcast_to(q.astype(np.int8)[:, None, None], (64, 40, 40)).copy()
    data[:, :4, :] = -128  # a nodata strip
    with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=64, dtype="int8",
                       crs="EPSG:32632", transform=Affine(20, 0, 499800, 0, -20, 5100200),
                       nodata=-128) as dst:  # fmt: skip
        dst.write(data)
    return path


def test_a_product_of_the_wrong_shape_is_one_error_before_any_scene(tmp_path: Path) -> None:
    """63 bands: the same error was reported for every scene of a run, after reading it."""
    item = scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1)
    path = tmp_path / "aef63.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=63,
        dtype="int8",
        crs="EPSG:32632",
        transform=Affine(20, 0, 499800, 0, -20, 5100200),
    ) as dst:
        dst.write(np.zeros((63, 8, 8), np.int8))  # fmt: skip
    recipe = parse_recipe({"steps": [{"name": "product_embedding", "raster": str(path)}]})
    with pytest.raises(DafabError) as error:
        run_pipeline(recipe, [item], put_asset=Assets(), workers=0)
    assert str(error.value) == (
        f"<recipe> step 1 (product_embedding): {path}: has 63 bands, an embedding product needs 64"
    )


def test_product_embedding_pooled_over_the_footprint(tmp_path: Path) -> None:
    item = scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1)
    rng = np.random.default_rng(3)
    truth = rng.normal(size=64)
    truth /= np.linalg.norm(truth)
    product = write_product(tmp_path / "aef.tif", item, truth)
    recipe = parse_recipe({"steps": [{"name": "product_embedding", "raster": str(product)},
                                     {"name": "embedding"}]})  # fmt: skip
    (out,), _ = run_pipeline(recipe, [item], put_asset=Assets(), workers=0)
    pooled = np.array(out["properties"]["emb:google-satellite-embedding-v1"])
    assert float(pooled @ truth) > 0.999  # quantisation is the only loss
    assert MODEL in out["properties"]  # side by side with our own model's vector
    assert out["assets"]["embeddings-google-satellite-embedding-v1"]["emb:source"] == str(product)


def test_product_path_is_relative_to_the_recipe_and_checked_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe that ships beside its product names it relatively, and runs from anywhere;
    a missing product is one error before any scene is read, not one failure per item."""
    item = scene(tmp_path, 1, halves(64, 64, "water", "vegetation"), 1)
    (tmp_path / "recipes").mkdir()
    write_product(tmp_path / "recipes" / "aef.tif", item, np.ones(64) / 8)
    recipe_file = tmp_path / "recipes" / "aef.toml"
    recipe_file.write_text("[[steps]]\nname = 'product_embedding'\nraster = 'aef.tif'\n")
    monkeypatch.chdir(tmp_path)  # not the recipe's folder
    from dafab_static.pipeline import load_recipe

    recipe = load_recipe(recipe_file)
    assert recipe.steps[0].params["raster"] == str(tmp_path / "recipes" / "aef.tif")
    (out,), report = run_pipeline(recipe, [item], put_asset=Assets(), workers=0)
    assert not report.failed and "emb:google-satellite-embedding-v1" in out["properties"]
    recipe_file.write_text("[[steps]]\nname = 'product_embedding'\nraster = 'gone.tif'\n")
    with pytest.raises(DafabError, match=r"product_embedding raster='.*gone.tif': no such file"):
        run_pipeline(load_recipe(recipe_file), [item], put_asset=Assets(), workers=0)


def test_build_stores_fixed_size_columns_and_valid_model_cards(tmp_path: Path) -> None:
    folder = tmp_path / "scenes"
    folder.mkdir()
    for day in (1, 2):
        write_scene(folder / f"{s2_name(day)}.tif", halves(64, 64, "water", "vegetation"), seed=day)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[steps]]\nname = "embedding"\n')
    out = tmp_path / "cat"
    report = dafab_static.build([str(folder)], str(out), options=BuildOptions(pipeline=str(recipe)))
    assert report.ok, report.summary()
    assert report.collections == {"dafab-models": 1, "sentinel-2-l2a": 2}
    table = pq.read_table(next((out / "index" / "sentinel-2-l2a").rglob("*.parquet")))
    assert str(table.schema.field(MODEL).type) == "fixed_size_list<element: float>[64]"
    card = next(out.rglob("dafab-random-conv-v1.json"))
    import json

    doc = json.loads(card.read_text())
    assert doc["properties"]["mlm:name"] == "dafab-random-conv-v1"
    weights_file = (card.parent / doc["assets"]["model"]["href"]).resolve()
    state = torch.load(weights_file, weights_only=True)
    from dafab_static.derive.encoders import RandomConvEncoder

    expected = RandomConvEncoder().weights()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    assert dafab_static.validate(str(out)).ok
