"""Producers' QA layers (Sentinel-2 SCL, Landsat QA_PIXEL and BQA) as cloud masks, and the
agreement of our mask (:mod:`dafab_static.derive.cloud`) with theirs.

Pure torch on whatever device the layers are on.
"""

from __future__ import annotations

from typing import Literal

import torch

from dafab_static.derive.cloud import CloudMask, cloud_cover, shadow_cover
from dafab_static.errors import InputError

QaKind = Literal["scl", "qa_pixel", "bqa_pre_collection"]


def reference_mask(qa: torch.Tensor, kind: QaKind, *, include_cirrus: bool = True) -> CloudMask:
    """Decode a producer's QA layer into a :class:`CloudMask`.

    - ``scl``: Sentinel-2 L2A Scene Classification (ESA Sentinel-2 MPC, L2A Product
      Definition Document S2-PDGS-MPC-L2A-PDD, scene classification values): 3 cloud
      shadow; 8, 9 cloud medium/high probability; 10 thin cirrus (cloud when
      ``include_cirrus``); 0 no data.
    - ``qa_pixel``: Landsat Collection 2 ``QA_PIXEL`` (USGS Landsat 8-9 C2 Level-2 Science
      Product Guide, LSDS-1619, QA_PIXEL bit table): bit 0 fill; bits 1 dilated cloud,
      2 cirrus (when ``include_cirrus``), 3 cloud: cloud; bit 4 cloud shadow.
    - ``bqa_pre_collection``: pre-collection Landsat 8 ``BQA`` (USGS Landsat 8 Quality
      Assessment band, as produced before Collection 1): bit 0 designated fill,
      bits 14-15 cloud confidence, 12-13 cirrus confidence (11 = high, 67-100 %); cloud is
      high cloud confidence (or high cirrus with ``include_cirrus``); no shadow bit exists.

    Args:
        qa: (H, W) integer QA band as read (any integer dtype, uint16 included).
        kind: Which layout ``qa`` has.
        include_cirrus: Count cirrus flags as cloud.

    Returns:
        A :class:`CloudMask` whose fill/no-data pixels are neither cloud nor shadow (see
        :func:`reference_valid` for the matching validity mask).

    Raises:
        InputError: when ``qa`` is not an integer 2-D tensor or ``kind`` is unknown.

    Example:
        >>> reference_mask(torch.tensor([[0, 3, 9, 10]]), "scl").cloud.tolist()
        [[False, False, True, True]]
    """
    codes = _qa_codes(qa)
    fill = ~reference_valid(codes, kind)
    if kind == "scl":
        cloud = (codes == 8) | (codes == 9) | ((codes == 10) & include_cirrus)
        shadow = codes == 3
    elif kind == "qa_pixel":
        cloud = _bit(codes, 1) | _bit(codes, 3) | (_bit(codes, 2) & include_cirrus)
        shadow = _bit(codes, 4)
    else:
        cloud = ((codes >> 14) & 3 == 3) | (((codes >> 12) & 3 == 3) & include_cirrus)
        shadow = torch.zeros_like(cloud)
    cloud &= ~fill
    tests = (kind, "cirrus") if include_cirrus else (kind,)
    return CloudMask(cloud=cloud, shadow=shadow & ~cloud & ~fill, tests=tests)


def reference_valid(qa: torch.Tensor, kind: QaKind) -> torch.Tensor:
    """The pixels a QA layer says hold data: SCL != 0, or the fill bit (bit 0) clear.

    Raises:
        InputError: as :func:`reference_mask`.

    Example:
        >>> reference_valid(torch.tensor([[1, 2]]), "qa_pixel").tolist()
        [[False, True]]
    """
    codes = _qa_codes(qa)
    if kind == "scl":
        return codes != 0
    if kind in ("qa_pixel", "bqa_pre_collection"):
        return ~_bit(codes, 0)
    raise InputError(f"kind {kind!r}: expected 'scl', 'qa_pixel' or 'bqa_pre_collection'")


def agreement(ours: CloudMask, reference: CloudMask, valid: torch.Tensor) -> dict[str, float]:
    """Compare two masks on the valid pixels.

    Classes are clear (0), cloud (1) and shadow (2); cloud wins where a mask has both.
    ``overall_accuracy`` and ``kappa`` (Cohen 1960) use the three classes; the ``cloud_*``
    scores treat ``reference`` cloud as truth. A ratio with nothing to count (no cloud in
    either mask, or everything in one class in both) is 1.0 when the masks agree.

    Returns:
        ``overall_accuracy``, ``kappa``, ``cloud_precision``, ``cloud_recall``,
        ``cloud_f1``, ``cloud_iou``, ``cloud_cover``, ``cloud_cover_reference``,
        ``shadow_cover``, ``shadow_cover_reference`` (percent) and ``pixels`` (valid count).

    Example:
        >>> v = torch.ones(4, 4, dtype=torch.bool)
        >>> m = CloudMask(v.triu(), v & False, ())
        >>> agreement(m, m, v)["kappa"]
        1.0
    """
    ours_labels = _labels(ours)[valid]
    ref_labels = _labels(reference)[valid]
    confusion = torch.bincount(ref_labels * 3 + ours_labels, minlength=9).reshape(3, 3)
    table = [[int(v) for v in row] for row in confusion.cpu().tolist()]
    total = sum(map(sum, table))
    agree = sum(table[i][i] for i in range(3))
    observed = agree / total if total else 1.0
    expected = (
        sum(sum(table[i]) * sum(row[i] for row in table) for i in range(3)) / total**2
        if total
        else 1.0
    )
    tp, fp, fn = table[1][1], sum(table[i][1] for i in (0, 2)), sum(table[1][i] for i in (0, 2))
    return {
        "overall_accuracy": observed,
        "kappa": 1.0 if expected == 1.0 else (observed - expected) / (1.0 - expected),
        "cloud_precision": _ratio(tp, tp + fp, fn),
        "cloud_recall": _ratio(tp, tp + fn, fp),
        "cloud_f1": _ratio(2 * tp, 2 * tp + fp + fn, 0),
        "cloud_iou": _ratio(tp, tp + fp + fn, 0),
        "cloud_cover": cloud_cover(ours, valid),
        "cloud_cover_reference": cloud_cover(reference, valid),
        "shadow_cover": shadow_cover(ours, valid),
        "shadow_cover_reference": shadow_cover(reference, valid),
        "pixels": float(total),
    }


def _ratio(num: int, den: int, other_errors: int) -> float:
    if den:
        return num / den
    return 1.0 if other_errors == 0 else 0.0


def _labels(mask: CloudMask) -> torch.Tensor:
    labels = torch.where(mask.shadow, 2, 0)
    return torch.where(mask.cloud, 1, labels).long()


def _qa_codes(qa: torch.Tensor) -> torch.Tensor:
    if qa.ndim != 2 or qa.dtype.is_floating_point or qa.dtype.is_complex or qa.dtype == torch.bool:
        raise InputError(f"qa: expected a 2-D integer tensor, got {qa.dtype} {tuple(qa.shape)}")
    return qa.to(torch.int64)  # uint16 supports few ops in torch; int64 holds any QA value


def _bit(codes: torch.Tensor, bit: int) -> torch.Tensor:
    return (codes >> bit) & 1 == 1
