"""Encoders: contract (shape, unit norm, determinism, masking), weight loading, MLM fields."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import torch

from dafab_static._schemas import SchemaRegistry
from dafab_static.derive.encoders import (
    DEFAULT_BANDS,
    SENTINEL2_BANDS,
    RandomConvEncoder,
    seeded_orthogonal,
)
from dafab_static.derive.resnet import ResNet18, ResNetEncoder, load_resnet
from dafab_static.errors import InputError

MLM = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"

# Spectra (blue, green, red, nir) of textbook surfaces, in reflectance.
VEGETATION = (0.04, 0.08, 0.04, 0.40)
WATER = (0.06, 0.05, 0.03, 0.01)
SOIL = (0.12, 0.16, 0.20, 0.26)


def _scene(spectrum: tuple[float, ...], seed: int, amplitude: float = 0.2) -> torch.Tensor:
    """A (C, 64, 64) chip: one spectrum modulated by a smooth random brightness field."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 1, 8, 8, generator=gen)
    field = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bilinear")[0, 0]
    return torch.tensor(spectrum)[:, None, None] * (1 + amplitude * field)


def _noisy(chip: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (chip + sigma * torch.randn(chip.shape, generator=gen)).clamp_min(0)


# --- RandomConvEncoder -------------------------------------------------------------------


def test_random_conv_shape_dtype_unit_norm() -> None:
    enc = RandomConvEncoder()
    chips = torch.stack([_scene(VEGETATION, 1), _scene(WATER, 2), _scene(SOIL, 3)])
    out = enc.encode(chips)
    assert out.shape == (3, 64)
    assert out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-6)
    assert (enc.model_id, enc.bands, enc.dimensions) == ("dafab-random-conv-v1", DEFAULT_BANDS, 64)


def test_random_conv_is_deterministic_across_instances() -> None:
    chips = torch.stack([_scene(VEGETATION, 1), _scene(SOIL, 3)])
    first = RandomConvEncoder().encode(chips)
    again = RandomConvEncoder().encode(chips)
    assert torch.equal(first, again)
    assert not torch.allclose(first, RandomConvEncoder(seed=7, model_id="other-v1").encode(chips))


def test_random_conv_weights_are_pinned() -> None:
    # The model id promises these numbers: a torch RNG or formula change must fail here.
    ramp = torch.linspace(0.0, 0.5, 4 * 8 * 8).reshape(1, 4, 8, 8)
    out = RandomConvEncoder().encode(ramp)[0, :4]
    assert out.tolist() == pytest.approx([0.239051, 0.134414, -0.100264, -0.236418], abs=1e-5)


def test_random_conv_near_duplicate_ranks_above_other_cover() -> None:
    enc = RandomConvEncoder()
    scenes = {
        "vegetation": _scene(VEGETATION, 1),
        "water": _scene(WATER, 2, amplitude=0.05),
        "soil": _scene(SOIL, 3),
    }
    for name, chip in scenes.items():
        copy = _noisy(chip, 0.002, seed=10)
        out = enc.encode(torch.stack([chip, copy, *[c for n, c in scenes.items() if n != name]]))
        cos = (out[0] @ out.T).tolist()
        assert cos[1] > 0.99, name
        assert cos[1] > max(cos[2:]) + 0.3, name


def test_random_conv_same_cover_matches_better_than_other_cover() -> None:
    enc = RandomConvEncoder()
    out = enc.encode(torch.stack([_scene(VEGETATION, 1), _scene(VEGETATION, 5), _scene(WATER, 2)]))
    assert float(out[0] @ out[1]) > 0.95
    assert float(out[0] @ out[2]) < 0.5


def test_random_conv_ignores_invalid_pixels() -> None:
    enc = RandomConvEncoder()
    vegetation = _scene(VEGETATION, 1)
    mixed = vegetation.clone()
    mixed[:, :, 32:] = torch.tensor(WATER)[:, None, None]
    other = vegetation.clone()
    other[:, :, 32:] = 1.2
    valid = torch.zeros(1, 64, 64, dtype=torch.bool)
    valid[:, :, :32] = True
    masked = enc.encode(mixed[None], valid)
    # What the invalid pixels hold does not matter at all...
    assert torch.equal(masked, enc.encode(other[None], valid))
    # ...and the valid half alone embeds as itself, not as the half of water.
    alone = enc.encode(vegetation[None, :, :, :32])
    assert float(masked[0] @ alone[0]) > 0.99
    assert float(enc.encode(mixed[None])[0] @ alone[0]) < 0.9


def test_non_finite_pixels_count_as_invalid() -> None:
    enc = RandomConvEncoder()
    chip = _scene(SOIL, 3)[None]
    holed = chip.clone()
    holed[0, 2, :10, :10] = float("nan")
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    valid[0, :10, :10] = False
    assert torch.equal(enc.encode(holed), enc.encode(chip, valid))


def test_chip_without_valid_pixel_gives_zero_row() -> None:
    out = RandomConvEncoder().encode(torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 8, dtype=bool))
    assert torch.equal(out, torch.zeros(2, 64))


def test_random_conv_any_band_count_and_tiny_chips() -> None:
    enc = RandomConvEncoder(bands=SENTINEL2_BANDS)
    assert enc.encode(torch.rand(2, 13, 1, 1)).shape == (2, 64)
    assert enc.encode(torch.rand(0, 13, 5, 5)).shape == (0, 64)


def test_wrong_band_count_names_model_and_bands() -> None:
    with pytest.raises(InputError, match=r"dafab-random-conv-v1 expects 4 bands \(blue, green, "):
        RandomConvEncoder().encode(torch.rand(1, 3, 8, 8))


def test_bad_valid_shape_and_bad_ids_are_input_errors() -> None:
    with pytest.raises(InputError, match="valid mask has shape"):
        RandomConvEncoder().encode(torch.rand(1, 4, 8, 8), torch.ones(1, 4, 4, dtype=bool))
    with pytest.raises(InputError, match="model_id 'Bad Id'"):
        RandomConvEncoder(model_id="Bad Id")
    with pytest.raises(InputError, match="repeat a name"):
        RandomConvEncoder(bands=("red", "red"))


def test_seeded_orthogonal_is_orthonormal_and_fixed() -> None:
    p = seeded_orthogonal(64, 512, seed=3)
    assert p.dtype == torch.float32
    assert torch.allclose(p @ p.T, torch.eye(64), atol=1e-5)
    assert torch.equal(p, seeded_orthogonal(64, 512, seed=3))


# --- ResNet-18 weights -------------------------------------------------------------------


def _random_resnet(in_chans: int = 4, seed: int = 0) -> ResNet18:
    model = ResNet18(in_chans=in_chans, num_classes=1000)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if key.endswith("num_batches_tracked"):
                continue
            if key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=gen) + 0.5)
            else:
                value.copy_(0.1 * torch.randn(value.shape, generator=gen))
    return model


@pytest.fixture(scope="module")
def resnet() -> ResNet18:
    return _random_resnet()


@pytest.fixture(scope="module")
def chips() -> torch.Tensor:
    return torch.stack([_scene(VEGETATION, 1), _scene(WATER, 2), _scene(SOIL, 3)])


@pytest.fixture
def weights(tmp_path: Path, resnet: ResNet18) -> Path:
    path = tmp_path / "tiny.pth"
    torch.save(resnet.state_dict(), path)
    return path


def _in_memory(resnet: ResNet18, **kwargs: Any) -> ResNetEncoder:
    return ResNetEncoder(resnet, bands=DEFAULT_BANDS, model_id="test-resnet18", **kwargs)


def _load(weights: str | Path, **kwargs: Any) -> ResNetEncoder:
    return load_resnet(weights, bands=DEFAULT_BANDS, model_id="test-resnet18", **kwargs)


def test_timm_key_names() -> None:
    keys = set(ResNet18(in_chans=13).state_dict())
    assert {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "fc.bias"} <= keys
    assert {"layer2.0.downsample.0.weight", "layer4.1.bn2.num_batches_tracked"} <= keys
    assert "layer1.0.downsample.0.weight" not in keys
    assert len(keys) == 122  # timm resnet18 state_dict, fc included


def test_loaded_path_matches_in_memory_model(
    weights: Path, resnet: ResNet18, chips: torch.Tensor
) -> None:
    expected = _in_memory(resnet).encode(chips)
    loaded = _load(weights)
    assert torch.equal(loaded.encode(chips), expected)
    assert torch.equal(loaded.encode(chips), loaded.encode(chips))
    assert expected.shape == (3, 64)
    assert torch.allclose(expected.norm(dim=1), torch.ones(3), atol=1e-6)


def test_wrapped_and_prefixed_state_dict(
    tmp_path: Path, resnet: ResNet18, chips: torch.Tensor
) -> None:
    path = tmp_path / "lightning.ckpt"
    state = {"module." + k: v for k, v in resnet.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, path)
    assert torch.equal(_load(path).encode(chips), _in_memory(resnet).encode(chips))


def test_file_url_with_and_without_hash(
    tmp_path: Path, weights: Path, resnet: ResNet18, chips: torch.Tensor
) -> None:
    expected = _in_memory(resnet).encode(chips)
    cache = tmp_path / "hub"
    assert torch.equal(_load(weights.as_uri(), model_dir=cache).encode(chips), expected)
    assert (cache / "tiny.pth").is_file()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    hashed = weights.with_name(f"tiny-{digest[:8]}.pth")
    hashed.write_bytes(weights.read_bytes())
    assert torch.equal(_load(hashed.as_uri(), model_dir=cache).encode(chips), expected)
    wrong = weights.with_name("tiny-00000000.pth")
    wrong.write_bytes(weights.read_bytes())
    with pytest.raises(InputError, match=r"tiny-00000000\.pth: cannot load weights"):
        _load(wrong.as_uri(), model_dir=cache)


def test_missing_url_is_input_error(tmp_path: Path) -> None:
    url = (tmp_path / "absent.pth").as_uri()
    with pytest.raises(InputError, match=r"absent\.pth: cannot load weights"):
        _load(url, model_dir=tmp_path / "hub")


def test_checkpoint_projection_is_used(
    tmp_path: Path, resnet: ResNet18, chips: torch.Tensor
) -> None:
    projection = seeded_orthogonal(64, 512, seed=99)
    path = tmp_path / "projected.pth"
    torch.save({"state_dict": resnet.state_dict(), "projection": projection}, path)
    loaded = _load(path)
    expected = _in_memory(resnet, projection=projection).encode(chips)
    assert torch.equal(loaded.encode(chips), expected)
    assert not torch.allclose(expected, _in_memory(resnet).encode(chips))
    assert loaded.mlm()["mlm:hyperparameters"]["projection"] == "checkpoint"
    inner = tmp_path / "inner.pth"
    torch.save({**resnet.state_dict(), "projection": projection}, inner)
    assert torch.equal(_load(inner).encode(chips), expected)
    bad = tmp_path / "bad-projection.pth"
    torch.save({**resnet.state_dict(), "projection": torch.zeros(64, 100)}, bad)
    with pytest.raises(InputError, match=r"bad-projection\.pth: projection has shape \(64, 100\)"):
        _load(bad)


def test_normalisation_changes_input_and_is_described(
    weights: Path, resnet: ResNet18, chips: torch.Tensor
) -> None:
    mean, std = (0.1, 0.1, 0.1, 0.2), (0.05, 0.05, 0.05, 0.1)
    loaded = _load(weights, mean=mean, std=std)
    shifted = (chips - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    assert torch.allclose(loaded.encode(chips), _in_memory(resnet).encode(shifted), atol=1e-5)
    scaling = loaded.mlm()["mlm:input"][0]["value_scaling"]
    assert scaling[3] == {"type": "z-score", "mean": 0.2, "stddev": 0.1}
    with pytest.raises(InputError, match="std needs 4 finite values"):
        _load(weights, std=(1.0, 1.0))
    with pytest.raises(InputError, match="std must be positive"):
        _load(weights, std=(1.0, 1.0, 0.0, 1.0))


def test_resnet_masking(weights: Path, chips: torch.Tensor) -> None:
    enc = _load(weights)
    valid = torch.ones(3, 64, 64, dtype=torch.bool)
    valid[:, 40:, :] = False
    garbage = chips.clone()
    garbage[:, :, 40:, :] = 0.9
    assert torch.equal(enc.encode(chips, valid), enc.encode(garbage, valid))
    assert not torch.allclose(enc.encode(chips), enc.encode(garbage))


def test_wrong_band_count_names_file(weights: Path) -> None:
    with pytest.raises(
        InputError, match=r"weights .*tiny\.pth expect 4 input bands, recipe gives 13"
    ):
        load_resnet(weights, bands=SENTINEL2_BANDS, model_id="test-resnet18")


def test_wrong_chip_band_count(weights: Path) -> None:
    with pytest.raises(
        InputError, match=r"test-resnet18 expects 4 bands \(blue, green, red, nir\)"
    ):
        _load(weights).encode(torch.rand(1, 13, 32, 32))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.pth: weights file not found"):
        _load(tmp_path / "nothere.pth")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"this is not a torch checkpoint")
    with pytest.raises(InputError, match=r"corrupt\.pth: not a PyTorch checkpoint \("):
        _load(path)


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), path)
    with pytest.raises(InputError, match=r"tensor\.pth: not a checkpoint"):
        _load(path)
    listed = tmp_path / "listed.pth"
    torch.save({"conv1.weight": torch.zeros(64, 4, 7, 7), "note": "hello"}, listed)
    with pytest.raises(InputError, match=r"listed\.pth: not a state_dict \(entry 'note'"):
        _load(listed)


def test_missing_and_unexpected_keys(tmp_path: Path, resnet: ResNet18) -> None:
    state = dict(resnet.state_dict())
    del state["layer3.0.conv1.weight"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"partial\.pth: .*1 missing keys \(layer3\.0\.conv1"):
        _load(path)
    extra = tmp_path / "extra.pth"
    torch.save({**resnet.state_dict(), "head.weight": torch.zeros(2)}, extra)
    with pytest.raises(InputError, match=r"extra\.pth: .*1 unexpected keys \(head\.weight"):
        _load(extra)


def test_wrong_shapes(tmp_path: Path) -> None:
    state = dict(_random_resnet().state_dict())
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    path = tmp_path / "shapes.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"shapes\.pth: ResNet-18 weights with wrong shapes"):
        _load(path)


# --- MLM fields --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlm_item_fields() -> jsonschema.Draft7Validator:
    registry = SchemaRegistry().registry
    return jsonschema.Draft7Validator({"$ref": f"{MLM}#/$defs/mlmItemFields"}, registry=registry)


def test_random_conv_mlm_validates(mlm_item_fields: jsonschema.Draft7Validator) -> None:
    fields = RandomConvEncoder().mlm()
    assert list(mlm_item_fields.iter_errors(fields)) == []
    assert fields["mlm:tasks"] == ["similarity-search"]
    assert fields["mlm:framework"] == "PyTorch"
    assert (fields["mlm:pretrained"], fields["mlm:pretrained_source"]) == (False, None)
    assert fields["mlm:input"][0]["bands"] == ["blue", "green", "red", "nir"]
    assert fields["mlm:input"][0]["input"]["shape"] == [-1, 4, -1, -1]
    assert fields["mlm:output"][0]["result"]["shape"] == [-1, 64]
    # 32x4x3x3 + 64x32x3x3 filters, 64 x (2*4 + 96) projection.
    assert fields["mlm:total_parameters"] == 1152 + 18432 + 6656


def test_resnet_mlm_validates(mlm_item_fields: jsonschema.Draft7Validator, weights: Path) -> None:
    fields = _load(weights, pretrained_source="SSL4EO-S12").mlm()
    assert list(mlm_item_fields.iter_errors(fields)) == []
    assert fields["mlm:architecture"] == "ResNet-18"
    assert fields["mlm:pretrained_source"] == "SSL4EO-S12"
    assert fields["mlm:input"][0]["value_scaling"] is None
    # torchvision's resnet18 has 11,689,512 parameters; less its 1000-class fc (513,000),
    # with conv1 at 4 bands instead of 3 (+64*7*7), plus the 64x512 projection.
    assert fields["mlm:total_parameters"] == 11_689_512 - 513_000 + 3136 + 32768
    assert "mlm:pretrained_source" not in _load(weights).mlm()


def test_mlm_validator_can_fail(mlm_item_fields: jsonschema.Draft7Validator) -> None:
    fields = RandomConvEncoder().mlm()
    assert list(mlm_item_fields.iter_errors({**fields, "mlm:tasks": ["embedding"]}))
    assert list(mlm_item_fields.iter_errors({**fields, "mlm:framework_version": "2.13"}))
