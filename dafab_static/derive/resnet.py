"""ResNet-18 encoders with pretrained weights (torchgeo/timm checkpoints) from a path or URL.

The network is written here in plain torch with timm's/torchvision's ``resnet18`` key names,
so torchgeo's Sentinel-2 checkpoints (timm state dicts, e.g. ``ResNet18_Weights.
SENTINEL2_ALL_MOCO``) load without timm or torchvision installed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from dafab_static.derive.encoders import (
    _PROJECTION_SEED,
    EMBEDDING_DIMENSIONS,
    Encoder,
    seeded_orthogonal,
)
from dafab_static.errors import InputError


class _BasicBlock(nn.Module):
    """ResNet's two-conv residual block; attribute names are timm's and torchvision's."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        result: torch.Tensor = self.relu(self.bn2(self.conv2(out)) + shortcut)
        return result


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016) whose ``state_dict`` keys are timm's ``resnet18``.

    ``conv1``, ``bn1``, ``layer1.0.conv1`` ... ``layer4.1.bn2``, ``layerN.0.downsample.0/1``
    and ``fc``: torchvision and timm share these names, so their checkpoints load as is.

    Args:
        in_chans: input channels (13 for torchgeo's Sentinel-2 weights).
        num_classes: size of the ``fc`` head; 0 for none (timm's convention).

    Example:
        >>> ResNet18(in_chans=4, num_classes=0).forward_features(torch.zeros(1, 4, 64, 64)).shape
        torch.Size([1, 512, 2, 2])
    """

    #: Channels of the last stage, the length of the pooled feature vector.
    features = 512

    def __init__(self, in_chans: int = 3, num_classes: int = 1000) -> None:
        super().__init__()
        self.in_chans = in_chans
        self.conv1 = nn.Conv2d(in_chans, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        widths = (64, 128, 256, 512)
        for i, width in enumerate(widths):
            inplanes = widths[max(i - 1, 0)]
            stride = 1 if i == 0 else 2
            blocks = [_BasicBlock(inplanes, width, stride), _BasicBlock(width, width, 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc: nn.Module = nn.Linear(self.features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, ``(N, 512, ceil(H/32), ceil(W/32))``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = self.get_submodule(f"layer{i}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pool then ``fc`` (pooled features when ``num_classes`` is 0)."""
        pooled: torch.Tensor = self.fc(self.forward_features(x).mean(dim=(2, 3)))
        return pooled


class _ResNetNet(nn.Module):
    def __init__(
        self, backbone: ResNet18, mean: torch.Tensor, std: torch.Tensor, projection: torch.Tensor
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.register_buffer("projection", projection)


class ResNetEncoder(Encoder):
    """A ResNet-18 backbone: valid-weighted global average of its 512 features, cut to 64.

    Chips are normalised per band as ``(reflectance - mean) / std``, invalid pixels are then
    set to 0 (the normalised mean), the backbone runs without its ``fc`` head, and each
    cell of the last feature map is weighted by the share of valid pixels under it.
    The 512 -> 64 step uses the checkpoint's ``projection`` when it has one, else a seeded
    orthogonal projection (:func:`seeded_orthogonal`), which keeps cosines approximately.

    Args:
        backbone: the network (its ``fc`` is ignored); put in eval mode here.
        bands: channel names, ``len(bands) == backbone.in_chans``.
        model_id: slug naming backbone, normalisation and projection together.
        mean, std: per-band normalisation in reflectance units; default 0 and 1, which is
            what torchgeo's SSL4EO-S12 weights expect (their transform divides DN by 10000).
        projection: ``(64, 512)`` matrix; None for the seeded one.
        pretrained_source: training data set, for ``mlm:pretrained_source``.
        source: what the backbone came from (a weights file), named in error messages.

    Raises:
        InputError: band count differs from the backbone's input channels, or ``mean``,
            ``std`` or ``projection`` have the wrong length, shape or values.

    Example:
        >>> enc = ResNetEncoder(ResNet18(in_chans=4, num_classes=0),
        ...                     bands=("blue", "green", "red", "nir"), model_id="demo-resnet18")
        >>> enc.encode(torch.rand(1, 4, 64, 64)).shape
        torch.Size([1, 64])
    """

    def __init__(
        self,
        backbone: ResNet18,
        *,
        bands: Sequence[str],
        model_id: str,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        projection: torch.Tensor | None = None,
        projection_seed: int = _PROJECTION_SEED,
        pretrained_source: str | None = None,
        description: str | None = None,
        source: str = "backbone",
    ) -> None:
        count = 1 if isinstance(bands, str) else len(bands)
        if backbone.in_chans != count:
            raise InputError(
                f"{source}: weights expect {backbone.in_chans} input bands, recipe gives "
                f"{count} ({', '.join([bands] if isinstance(bands, str) else bands)})"
            )
        mean_f = _per_band(mean, 0.0, count, "mean", model_id)
        std_f = _per_band(std, 1.0, count, "std", model_id)
        if not all(s > 0 for s in std_f):
            raise InputError(f"{model_id}: std must be positive, got {list(std_f)}")
        mean_t = torch.tensor(mean_f, dtype=torch.float32)
        std_t = torch.tensor(std_f, dtype=torch.float32)
        self.projection_source = "checkpoint" if projection is not None else "seeded-orthogonal"
        if projection is None:
            projection = seeded_orthogonal(EMBEDDING_DIMENSIONS, ResNet18.features, projection_seed)
        elif tuple(projection.shape) != (EMBEDDING_DIMENSIONS, ResNet18.features):
            raise InputError(
                f"{source}: projection has shape {tuple(projection.shape)}, expected "
                f"({EMBEDDING_DIMENSIONS}, {ResNet18.features})"
            )
        net = _ResNetNet(backbone, mean_t, std_t, projection.detach().to(torch.float32).clone())
        super().__init__(
            net,
            model_id=model_id,
            bands=bands,
            description=description
            or "ResNet-18 backbone: valid-weighted mean of its 512 features, projected to 64-d.",
        )
        self._backbone = backbone  # the submodule of net, typed; net.to() moves it in place
        self.projection_seed = projection_seed
        self.pretrained_source = pretrained_source
        # The values as given, for mlm(): float32 buffers would print 0.1 as 0.10000000149.
        self._scaling = (mean_f, std_f) if mean is not None or std is not None else None

    def _embed(self, chips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        net = self._net
        mean = net.get_buffer("mean")[None, :, None, None]
        std = net.get_buffer("std")[None, :, None, None]
        x = (chips - mean) / std * mask
        fmap = self._backbone.forward_features(x)
        weight = F.adaptive_avg_pool2d(mask, (fmap.shape[-2], fmap.shape[-1]))
        pooled = (fmap * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3)).clamp_min(1e-6)
        return pooled @ net.get_buffer("projection").T

    def mlm(self) -> dict[str, Any]:
        """STAC MLM v1.4 fields: ResNet-18, pretrained, z-score scaling when set.

        Example:
            >>> enc = ResNetEncoder(ResNet18(in_chans=2, num_classes=0), bands=("red", "nir"),
            ...                     model_id="demo-resnet18")
            >>> enc.mlm()["mlm:architecture"]
            'ResNet-18'
        """
        net = self._net
        scaling = None
        if self._scaling is not None:
            pairs = zip(*self._scaling, strict=True)
            scaling = [{"type": "z-score", "mean": m, "stddev": s} for m, s in pairs]
        parameters = sum(
            int(p.numel()) for k, p in self._backbone.named_parameters() if not k.startswith("fc.")
        )
        hyper: dict[str, Any] = {"pooling": "valid-weighted-mean", "projection": "checkpoint"}
        if self.projection_source != "checkpoint":
            hyper = {**hyper, "projection": "seeded-orthogonal", "seed": self.projection_seed}
        return self._mlm(
            architecture="ResNet-18",
            parameters=parameters + int(net.get_buffer("projection").numel()),
            pretrained=True,
            pretrained_source=self.pretrained_source,
            input_description=(
                "Surface reflectance (0..~1.5), normalised per band by value_scaling when "
                "given; invalid pixels are set to 0 after normalisation and weigh nothing "
                "in the pooling."
            ),
            value_scaling=scaling,
            hyperparameters=hyper,
        )


def _per_band(
    values: Sequence[float] | None, default: float, count: int, name: str, model_id: str
) -> tuple[float, ...]:
    if values is None:
        return (default,) * count
    out = tuple(float(v) for v in values)
    if len(out) != count or not all(math.isfinite(v) for v in out):
        raise InputError(f"{model_id}: {name} needs {count} finite values, got {list(values)}")
    return out


_PREFIXES = ("module.", "backbone.", "model.", "encoder.", "encoder_q.")


def load_resnet(
    weights: str | os.PathLike[str],
    *,
    bands: Sequence[str],
    model_id: str,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    projection_seed: int = _PROJECTION_SEED,
    pretrained_source: str | None = None,
    description: str | None = None,
    model_dir: str | os.PathLike[str] | None = None,
) -> ResNetEncoder:
    """Load ResNet-18 weights (a timm/torchvision ``resnet18`` state_dict) into an encoder.

    Fits torchgeo's ``ResNet18_Weights.SENTINEL2_ALL_MOCO`` (``in_chans=13``, file
    ``resnet18_sentinel2_all_moco-59bfdff9.pth``, SSL4EO-S12 MoCo; bands
    :data:`SENTINEL2_BANDS`; reflectance in, as its transform divides DN by 10000).
    Accepts a raw state_dict or a dict holding one under ``"state_dict"`` or ``"model"``;
    strips a ``module.``/``backbone.``/``model.``/``encoder.``/``encoder_q.`` prefix shared
    by every key; drops the ``fc`` head; uses a ``projection`` tensor (64 x 512) found in the
    state_dict or beside it.

    Args:
        weights: local path, or an ``http(s)://`` or ``file://`` URL fetched by
            ``torch.hub.load_state_dict_from_url`` into ``model_dir`` (torch's hub cache by
            default), with its SHA-256 checked when the file name carries a hash prefix
            (``name-<hex>.pth``, torch hub's convention).
        bands, model_id, mean, std, projection_seed, pretrained_source, description: as for
            :class:`ResNetEncoder`.
        model_dir: download cache for URLs.

    Raises:
        InputError: naming the file, when it is missing, unreadable, not a checkpoint, fails
            its hash, lacks or adds ResNet-18 keys, has the wrong shapes, or expects another
            band count than ``bands`` gives.

    Example:
        >>> enc = load_resnet("resnet18_sentinel2_all_moco-59bfdff9.pth",  # doctest: +SKIP
        ...                   bands=SENTINEL2_BANDS, model_id="ssl4eo-s12-resnet18-moco",
        ...                   pretrained_source="SSL4EO-S12")
    """
    name = os.fspath(weights)
    raw = _read_checkpoint(name, model_dir)
    state, projection = _state_dict(raw, name)
    conv1 = state.get("conv1.weight")
    count = 1 if isinstance(bands, str) else len(bands)
    if conv1 is not None and conv1.ndim == 4 and conv1.shape[1] != count:
        listed = ", ".join([bands] if isinstance(bands, str) else bands)
        raise InputError(
            f"weights {name} expect {conv1.shape[1]} input bands, recipe gives {count} ({listed})"
        )
    backbone = ResNet18(in_chans=count, num_classes=0)
    expected = set(backbone.state_dict())
    optional = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(expected - set(state) - optional)
    unexpected = sorted(k for k in set(state) - expected if not k.startswith("fc."))
    if missing or unexpected:
        raise InputError(f"{name}: not ResNet-18 weights: {_key_report(missing, unexpected)}")
    kept = {k: v for k, v in state.items() if k in expected}
    try:
        backbone.load_state_dict(kept, strict=False)
    except RuntimeError as exc:  # shape mismatches, reported by torch one per line
        detail = " ".join(str(exc).split())[:300]
        raise InputError(f"{name}: ResNet-18 weights with wrong shapes: {detail}") from exc
    return ResNetEncoder(
        backbone,
        bands=bands,
        model_id=model_id,
        mean=mean,
        std=std,
        projection=projection,
        projection_seed=projection_seed,
        pretrained_source=pretrained_source,
        description=description,
        source=name,
    )


def _read_checkpoint(name: str, model_dir: str | os.PathLike[str] | None) -> object:
    scheme = urlparse(name).scheme
    # torch.load raises an open set of types on a bad file (UnpicklingError, RuntimeError
    # from the zip reader, EOFError, ...); all mean "not a checkpoint" to the user.
    try:
        if scheme in ("http", "https", "file"):
            file_name = Path(urlparse(name).path).name
            found = torch.hub.HASH_REGEX.search(file_name)
            return torch.hub.load_state_dict_from_url(
                name,
                model_dir=os.fspath(model_dir) if model_dir is not None else None,
                map_location="cpu",
                progress=False,
                check_hash=bool(found and found.group(1)),
                weights_only=True,
            )
        path = Path(name)
        if not path.is_file():
            raise InputError(f"{name}: weights file not found")
        return torch.load(path, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as exc:
        if _fetch_failure(exc):  # the file never arrived, or is not the one its name promises
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise InputError(f"{name}: cannot load weights: {detail}") from exc
        raise InputError(f"{name}: not a PyTorch checkpoint ({_load_failure(exc)})") from exc


def _fetch_failure(exc: Exception) -> bool:
    """Whether ``torch.hub`` failed to fetch the file (unreachable, missing) or found its
    hash wrong, rather than to read a checkpoint out of it."""
    import pickle
    import urllib.error

    if isinstance(exc, urllib.error.URLError):
        return True
    if isinstance(exc, RuntimeError) and "invalid hash value" in str(exc):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, pickle.UnpicklingError)


def _load_failure(exc: Exception) -> str:
    """The short reason in what ``torch.load`` raised. Its weights-only unpickler wraps the
    reason ("WeightsUnpickler error: Unsupported operand 170") in a page of advice, some of
    it to load with ``weights_only=False``, which runs any code the file holds; the zip
    reader puts its reason before a ``.``."""
    text = " ".join(str(exc).split())
    if found := re.search(r"WeightsUnpickler error: (.+?)(?: Check the documentation|$)", text):
        return found.group(1).rstrip(". ")
    first = text.split(". ")[0].strip()
    if not first or "weights_only" in first:
        return "truncated or unreadable" if isinstance(exc, EOFError) else type(exc).__name__
    return first[:160]


def _state_dict(raw: object, name: str) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    if not isinstance(raw, Mapping):
        raise InputError(f"{name}: not a checkpoint (holds a {type(raw).__name__}, not a dict)")
    projection = raw.get("projection")
    entries: Mapping[object, object] = raw
    for wrapper in ("state_dict", "model"):
        if isinstance(raw.get(wrapper), Mapping):
            entries = raw[wrapper]
            break
    state: dict[str, torch.Tensor] = {}
    for key, value in entries.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InputError(f"{name}: not a state_dict (entry {key!r} is not a named tensor)")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            # A diverged training run: every vector would be NaN, published as nulls.
            raise InputError(f"{name}: entry {key!r} holds NaN or infinite values")
        state[key] = value
    stripped = True
    while stripped and state:
        stripped = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) or k == "projection" for k in state):
                state = {k.removeprefix(prefix): v for k, v in state.items()}
                stripped = True
    inner = state.pop("projection", None)
    return state, inner if inner is not None else _tensor_or_none(projection, name)


def _tensor_or_none(value: object, name: str) -> torch.Tensor | None:
    if value is None or isinstance(value, torch.Tensor):
        return value
    raise InputError(f"{name}: 'projection' is a {type(value).__name__}, not a tensor")


def _key_report(missing: list[str], unexpected: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({', '.join(missing[:4])}...)")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:4])}...)")
    return "; ".join(parts)
