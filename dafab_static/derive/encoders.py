"""Image encoders: chips of surface reflectance in, 64-d unit vectors out (pure torch).

Two encoders share one contract (:class:`Encoder`): ``encode(chips, valid)`` takes float32
reflectance ``(N, C, H, W)`` with ``C == len(encoder.bands)`` and returns ``(N, 64)`` float32
rows of unit length, so that the dot product of two rows is their cosine similarity.

- :class:`RandomConvEncoder` needs no download and is NOT trained: seeded random
  convolutional features plus per-band log-reflectance statistics. It tells spectral
  signature and coarse texture apart (near duplicates, same land cover), not semantics.
- :class:`~dafab_static.derive.resnet.ResNetEncoder` (in :mod:`dafab_static.derive.resnet`)
  runs a ResNet-18 whose ``state_dict`` keys match timm's and torchvision's ``resnet18``, so
  torchgeo's Sentinel-2 weights load directly (``load_resnet``).

Nothing here reads the clock or the environment; the only I/O is ``resnet.load_resnet``
reading a weights file. Fixed weights come from ``torch.Generator`` on CPU, so a model id
names the same numbers on every machine.
"""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dafab_static.errors import InputError

__all__ = [
    "DEFAULT_BANDS",
    "EMBEDDING_DIMENSIONS",
    "SENTINEL2_BANDS",
    "Encoder",
    "RandomConvEncoder",
    "seeded_orthogonal",
]

#: Length of every embedding this module returns.
EMBEDDING_DIMENSIONS = 64
#: Bands of :class:`RandomConvEncoder` unless told otherwise (STAC eo common names).
DEFAULT_BANDS = ("blue", "green", "red", "nir")
#: The 13 Sentinel-2 L1C bands in B01..B12 order (B8A after B08), as SSL4EO-S12 and torchgeo's
#: ``ResNet18_Weights.SENTINEL2_ALL_MOCO`` stack them; STAC 1.1 / eo 2.0 common names, whose
#: ``rededge071/075/078`` keep B05-B07 apart where eo 1.x called all three ``rededge``.
SENTINEL2_BANDS = (
    *("coastal", "blue", "green", "red", "rededge071", "rededge075", "rededge078"),
    *("nir", "nir08", "nir09", "cirrus", "swir16", "swir22"),
)

#: A slug that is also a valid mlm:name (MLM's pattern asks for 3 characters or more).
_MODEL_ID = re.compile(r"[a-z][a-z0-9._-]+[a-z0-9]\Z")
_PROJECTION_SEED = 64_512
_FRAMEWORK_VERSION = re.match(r"\d+\.\d+\.\d+", torch.__version__)


def check_model_id(model_id: object, name: str = "model_id") -> str:
    """``model_id`` if it can name a property, an index column, a file and an MLM model.

    Raises:
        InputError: for anything but a slug that is also a valid ``mlm:name``.
    """
    if not isinstance(model_id, str) or not _MODEL_ID.match(model_id):
        raise InputError(
            f"{name} {model_id!r} is not a slug of 3 or more lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter and ending with a letter or digit "
            "(MLM's mlm:name pattern)"
        )
    return model_id


def seeded_orthogonal(rows: int, cols: int, seed: int) -> torch.Tensor:
    """A fixed ``rows x cols`` float32 matrix with orthonormal rows (``rows <= cols``).

    A random orthogonal projection preserves inner products up to a small distortion
    (Johnson-Lindenstrauss lemma; Dasgupta & Gupta 2003, "An elementary proof of a theorem
    of Johnson and Lindenstrauss"), so cosine geometry survives the cut to ``rows`` dims.
    QR of a Gaussian matrix with the signs of ``diag(R)`` folded in gives a unique,
    Haar-distributed result (Mezzadri 2007, "How to generate random matrices from the
    classical compact groups"). Computed in float64 and rounded to float32, so LAPACK
    builds that differ in the last bits still give the same float32 numbers.

    Raises:
        ValueError: when ``rows > cols`` (a caller bug).

    Example:
        >>> p = seeded_orthogonal(2, 5, seed=1)
        >>> torch.allclose(p @ p.T, torch.eye(2), atol=1e-6)
        True
    """
    if rows > cols:
        raise ValueError(f"cannot have {rows} orthonormal rows in {cols} dimensions")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    gauss = torch.randn(cols, rows, generator=gen, dtype=torch.float64)
    q, r = torch.linalg.qr(gauss)
    q = q * torch.sign(torch.diagonal(r))
    out: torch.Tensor = q.T.contiguous().to(torch.float32)
    return out


@functools.cache
def _start_vector_math() -> None:
    """Have torch's vector math library choose its kernels once, here, in one thread.

    On MKL builds ``torch.log`` of a float tensor runs MKL's VML in every OpenMP thread.
    The first call in a process, entered by several threads at once, sometimes computed
    one thread's share of the elements with another kernel (measured on a 2-core machine:
    the second half of a 262144-element ``log`` off by up to 1.4e-5 relative in 4 of 10
    runs, 1e-15..4e-14 in float64; then every later call agreed). The encoder's ``log``
    was that first call: the first scene's embedding changed between identical runs. A
    call too small to be split (under ATen's 2048-element grain) initialises VML first;
    after it, 16 of 16 runs gave the same bits.
    """
    for dtype in (torch.float32, torch.float64):
        torch.log(torch.ones(4, dtype=dtype))


class Encoder(ABC):
    """A model turning reflectance chips into 64-d unit vectors, with its MLM description.

    Attributes:
        model_id: slug naming the model and its fixed weights (``dafab-random-conv-v1``).
        bands: STAC common band names the chips' channels must hold, in order.
        dimensions: length of the embedding (64).
        description: one paragraph for a catalog reader.
    """

    dimensions: int = EMBEDDING_DIMENSIONS

    def __init__(self, net: nn.Module, *, model_id: str, bands: Sequence[str], description: str):
        check_model_id(model_id)
        names = tuple(bands) if not isinstance(bands, str) else (bands,)
        if not names or not all(isinstance(b, str) and b for b in names):
            raise InputError(f"{model_id}: bands must be non-empty band names, got {bands!r}")
        if len(set(names)) != len(names):
            raise InputError(f"{model_id}: bands repeat a name ({', '.join(names)})")
        _start_vector_math()  # before any encode: see there
        self.model_id = model_id
        self.bands: tuple[str, ...] = names
        self.description = description
        self._net = net.eval().requires_grad_(False)

    @property
    def device(self) -> torch.device:
        """Where the weights live; :meth:`encode` runs there."""
        first: torch.Tensor = next(iter(self._net.state_dict().values()))
        return first.device

    def weights(self) -> dict[str, torch.Tensor]:
        """The model's state dict on the CPU: what a model card publishes."""
        return {k: v.detach().cpu() for k, v in self._net.state_dict().items()}

    def to(self, device: str | torch.device) -> Encoder:
        """Move the weights to ``device`` (e.g. ``"cuda"``) and return this encoder."""
        self._net.to(device)
        return self

    def encode(self, chips: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Embed chips as unit vectors; pixels that are not valid take no part.

        Deterministic: no randomness at call time, so the same input on the same device
        gives bitwise the same output.

        Args:
            chips: ``(N, C, H, W)`` surface reflectance (about 0..1.5), ``C == len(bands)``,
                invalid pixels already 0. Non-finite pixels count as invalid.
            valid: optional ``(N, H, W)`` bool, True where the pixel holds data.

        Returns:
            ``(N, 64)`` float32 on :attr:`device`, each row of unit L2 norm; a chip without
            a valid pixel gets a row of zeros (no direction to give).

        Raises:
            InputError: when the chips are not 4-D, their band count differs from
                :attr:`bands` (the message names the model and the bands it expects), or
                ``valid`` has the wrong shape.

        Example:
            >>> enc = RandomConvEncoder()
            >>> enc.encode(torch.full((2, 4, 16, 16), 0.1)).shape
            torch.Size([2, 64])
        """
        if not isinstance(chips, torch.Tensor) or chips.ndim != 4:
            shape = tuple(chips.shape) if isinstance(chips, torch.Tensor) else type(chips)
            raise InputError(f"{self.model_id}: chips must be a (N, C, H, W) tensor, got {shape}")
        if chips.shape[1] != len(self.bands):
            raise InputError(
                f"{self.model_id} expects {len(self.bands)} bands ({', '.join(self.bands)}), "
                f"chips have {chips.shape[1]}"
            )
        n, _, h, w = chips.shape
        x = chips.to(device=self.device, dtype=torch.float32)
        mask = torch.isfinite(x).all(dim=1)
        if valid is not None:
            if tuple(valid.shape) != (n, h, w):
                raise InputError(
                    f"{self.model_id}: valid mask has shape {tuple(valid.shape)}, chips need "
                    f"{(n, h, w)}"
                )
            mask = mask & valid.to(device=self.device, dtype=torch.bool)
        x = torch.where(mask[:, None], x, torch.zeros((), device=x.device))
        with torch.inference_mode():
            features = self._embed(x, mask[:, None].to(torch.float32))
            return F.normalize(features.to(torch.float32), dim=1)

    @abstractmethod
    def _embed(self, chips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(N, 64)`` features, not yet normalised, from clean chips and a (N, 1, H, W) mask."""

    @abstractmethod
    def mlm(self) -> dict[str, Any]:
        """STAC MLM v1.4 fields describing the model (validate against ``$defs/fields``)."""

    def _mlm(
        self,
        *,
        architecture: str,
        parameters: int,
        pretrained_source: str | None,
        pretrained: bool,
        input_description: str,
        value_scaling: list[dict[str, Any]] | None,
        hyperparameters: dict[str, Any],
    ) -> dict[str, Any]:
        # "similarity-search" is the MLM v1.4 task enum's word for an embedding output.
        tasks = ["similarity-search"]
        fields: dict[str, Any] = {
            "mlm:name": self.model_id,
            "mlm:architecture": architecture,
            "mlm:tasks": tasks,
            "mlm:framework": "PyTorch",
            "mlm:framework_version": _FRAMEWORK_VERSION[0] if _FRAMEWORK_VERSION else "0.0.0",
            "mlm:total_parameters": parameters,
            "mlm:pretrained": pretrained,
            "mlm:input": [
                {
                    "name": "reflectance",
                    "bands": list(self.bands),
                    "input": {
                        "shape": [-1, len(self.bands), -1, -1],
                        "dim_order": ["batch", "channel", "height", "width"],
                        "data_type": "float32",
                    },
                    "description": input_description,
                    "value_scaling": value_scaling,
                    "resize_type": None,
                    "pre_processing_function": None,
                }
            ],
            "mlm:output": [
                {
                    "name": "embedding",
                    "tasks": tasks,
                    "result": {
                        "shape": [-1, self.dimensions],
                        "dim_order": ["batch", "embedding"],
                        "data_type": "float32",
                    },
                    "description": (
                        f"{self.dimensions}-d L2-normalised vector; the dot product of two "
                        "vectors is their cosine similarity"
                    ),
                    "post_processing_function": None,
                }
            ],
            "mlm:hyperparameters": hyperparameters,
        }
        # MLM: an untrained model states pretrained_source null; a pretrained one may omit it.
        if not pretrained or pretrained_source is not None:
            fields["mlm:pretrained_source"] = pretrained_source if pretrained else None
        return fields


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over H, W of ``values`` (N, K, H, W) where ``mask`` (N, 1, H, W) is 1."""
    count = mask.sum(dim=(2, 3)).clamp_min(1.0)
    return (values * mask).sum(dim=(2, 3)) / count


def _masked_pool(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2x2 average pool counting valid pixels only; returns the pooled values and mask."""
    total = F.avg_pool2d(values * mask, 2, ceil_mode=True)
    share = F.avg_pool2d(mask, 2, ceil_mode=True)
    return total / share.clamp_min(1e-6), (share > 0).to(mask.dtype)


def _conv(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """3x3 convolution then ``abs``; edges replicated, as zero padding of values far from
    zero would read the chip's border as an edge as strong as the values themselves."""
    return F.conv2d(F.pad(values, (1, 1, 1, 1), mode="replicate"), weight).abs()


class _RandomConvNet(nn.Module):
    """The fixed tensors of :class:`RandomConvEncoder`, as buffers so ``.to()`` moves them."""

    def __init__(self, channels: int, seed: int, stage1: int, stage2: int) -> None:
        super().__init__()
        gen = torch.Generator(device="cpu").manual_seed(seed)
        w1 = torch.randn(stage1, channels, 3, 3, generator=gen, dtype=torch.float64)
        # Zero-sum filters answer spatial change only: brightness belongs to the spectral
        # block, texture to this one, so the two do not count the same thing twice.
        w1 = w1 - w1.mean(dim=(2, 3), keepdim=True)
        w1 = w1 / w1.flatten(1).norm(dim=1)[:, None, None, None]
        w2 = torch.randn(stage2, stage1, 3, 3, generator=gen, dtype=torch.float64)
        w2 = w2 / w2.flatten(1).norm(dim=1)[:, None, None, None]
        self.register_buffer("conv1", w1.to(torch.float32))
        self.register_buffer("conv2", w2.to(torch.float32))
        features = 2 * channels + stage1 + stage2
        self.register_buffer("projection", seeded_orthogonal(EMBEDDING_DIMENSIONS, features, seed))


class RandomConvEncoder(Encoder):
    """Seeded random convolutional features plus spectral statistics; NOT a trained model.

    Random, untrained filters followed by rectification and pooling already give useful
    image features (Jarrett et al. 2009, "What is the best multi-stage architecture for
    object recognition?"; Saxe et al. 2011, "On random weights and unsupervised feature
    learning"). Per chip, over valid pixels only:

    1. ``s = log(reflectance + 0.01) - log(0.11)`` per band (log: ratios between bands and
       scenes matter more than differences; 0.01 keeps dark water finite and damps noise;
       0.11 centres a typical land reflectance of 0.1 on zero);
    2. spectral block: mean and standard deviation of ``s`` per band (``2C`` numbers);
    3. texture block: two stages of fixed 3x3 filters (32 zero-sum, then 64), each followed
       by ``abs`` rectification (Jarrett et al.'s best non-linearity), a valid-aware 2x2
       average pool between them, and a valid-aware global mean (``32 + 64`` numbers),
       weighted by 0.5;
    4. the concatenation goes through a seeded ``64 x (2C + 96)`` orthogonal projection
       (:func:`seeded_orthogonal`) and is L2-normalised.

    It captures spectral signature and coarse texture: good for near-duplicate and
    same-cover retrieval, blind to semantics (a car park and a bare field may match).

    Args:
        bands: channel names, in order (any count).
        seed: fixes every weight; a different seed is a different model, so give it a
            different ``model_id``.
        model_id: slug naming these weights.

    Example:
        >>> enc = RandomConvEncoder(bands=("red", "nir"))
        >>> enc.encode(torch.rand(3, 2, 32, 32)).norm(dim=1).round(decimals=4).tolist()
        [1.0, 1.0, 1.0]
    """

    # Relative weight of the texture block; at 1.0 sensor noise on dark targets (0.002
    # reflectance on water) moved near-duplicate cosines below 0.99 in the tests, at 0.5
    # they stay above while texture still separates same-colour scenes. Part of the model:
    # changing it needs a new model_id.
    _TEXTURE_WEIGHT = 0.5
    _LOG_OFFSET = 0.01
    _LOG_CENTRE = 0.11
    _STAGE1 = 32
    _STAGE2 = 64

    def __init__(
        self,
        bands: Sequence[str] = DEFAULT_BANDS,
        *,
        seed: int = 20_090_929,
        model_id: str = "dafab-random-conv-v1",
    ) -> None:
        count = 1 if isinstance(bands, str) else len(bands)
        super().__init__(
            _RandomConvNet(max(count, 1), seed, self._STAGE1, self._STAGE2),
            model_id=model_id,
            bands=bands,
            description=(
                "Untrained baseline: seeded random convolutional features (Jarrett et al. "
                "2009; Saxe et al. 2011) and per-band log-reflectance mean and spread, "
                "projected to 64 dimensions by a seeded orthogonal matrix and L2-normalised. "
                "Captures spectral signature and coarse texture (near duplicates, same land "
                "cover), not semantics."
            ),
        )
        self.seed = seed

    def _embed(self, chips: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        net = self._net
        s = torch.log(chips.clamp_min(0.0) + self._LOG_OFFSET) - torch.log(
            torch.tensor(self._LOG_CENTRE, device=chips.device)
        )
        mean = _masked_mean(s, mask)
        spread = _masked_mean((s - mean[:, :, None, None]) ** 2, mask).clamp_min(0.0).sqrt()
        # Invalid pixels take the chip's mean so that mask edges do not read as texture.
        filled = torch.where(mask > 0, s, mean[:, :, None, None])
        t1 = _conv(filled, net.get_buffer("conv1"))
        pooled, mask2 = _masked_pool(t1, mask)
        t2 = _conv(pooled, net.get_buffer("conv2"))
        texture = torch.cat([_masked_mean(t1, mask), _masked_mean(t2, mask2)], dim=1)
        features = torch.cat([mean, spread, self._TEXTURE_WEIGHT * texture], dim=1)
        return features @ net.get_buffer("projection").T

    def mlm(self) -> dict[str, Any]:
        """STAC MLM v1.4 fields for this untrained model (``mlm:pretrained`` false).

        Example:
            >>> RandomConvEncoder().mlm()["mlm:pretrained_source"] is None
            True
        """
        return self._mlm(
            architecture="Random convolutional features (2 stages, untrained)",
            parameters=sum(int(b.numel()) for b in self._net.buffers()),
            pretrained=False,
            pretrained_source=None,
            input_description=(
                "Surface reflectance (0..~1.5); log(reflectance + 0.01) is taken inside the "
                "model. Invalid pixels are masked out of every statistic."
            ),
            value_scaling=None,
            hyperparameters={
                "seed": self.seed,
                "log_offset": self._LOG_OFFSET,
                "stage1_filters": self._STAGE1,
                "stage2_filters": self._STAGE2,
                "kernel_size": 3,
                "texture_weight": self._TEXTURE_WEIGHT,
                "projection": "seeded-orthogonal",
            },
        )
