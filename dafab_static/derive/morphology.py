"""Binary and grey-level morphology in torch, on any device: hole filling (reconstruction by
erosion) and square dilation, used by the cloud and shadow masks."""

from __future__ import annotations

import numpy as np
import torch

#: Kept for callers that pass a cap; the fill is exact (see :func:`fill_holes`).
FILL_PASSES = 128
#: 4-connectivity, as Fmask's imfill.
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def fill_holes(image: torch.Tensor, seeds: torch.Tensor, passes: int | None = None) -> torch.Tensor:
    """Grey-level hole filling: morphological reconstruction by erosion from the border.

    The result is the lowest surface >= ``image`` with no regional minimum away from the
    image frame and ``seeds`` (MATLAB ``imfill(I, 'holes')``; Soille 2003, *Morphological
    Image Analysis*, hole filling by reconstruction): each pixel gets the lowest "pass"
    level over which a 4-connected path reaches the border. Fmask fills NIR this way
    (Zhu & Woodcock 2012 eq. 19).

    On the CPU, scikit-image's ``reconstruction`` (Vincent 1993, IEEE TIP 2:176-201, in
    Cython): a torch version made of parallel raster scans needed one pass per turn of the
    outlet path, 11 s per band of a 1024 x 1024 scene against 0.34 s (measured), for the
    same result, bit for bit. On CUDA, :func:`fill_by_erosion` on the device instead: the
    round trip through scikit-image was most of the cloud step there (see its docstring).

    Args:
        image: (H, W) float.
        seeds: (H, W) bool, extra border pixels (no-data) where the fill equals ``image``.
        passes: Unused; kept for callers of the scan version. Always exact.

    Example:
        >>> pit = torch.ones(5, 5); pit[2, 2] = 0.2
        >>> float(fill_holes(pit, torch.zeros(5, 5, dtype=torch.bool))[2, 2])
        1.0
    """
    del passes
    border = seeds.clone()
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    if image.device.type == "cuda":
        return fill_by_erosion(image, border)
    from skimage.morphology import reconstruction

    mask = image.detach().to("cpu", torch.float64).numpy()
    seed = np.where(border.cpu().numpy(), mask, mask.max())
    filled = reconstruction(seed, mask, method="erosion", footprint=_CROSS)  # type: ignore[no-untyped-call]
    return torch.from_numpy(filled).to(device=image.device, dtype=image.dtype)


def fill_by_erosion(
    image: torch.Tensor, border: torch.Tensor, check_every: int = 64
) -> torch.Tensor:
    """:func:`fill_holes` as repeated geodesic erosions, on ``image``'s device.

    Reconstruction by erosion from the definition (Soille 2003, section 6.2): start from the
    image's maximum everywhere but ``border`` (where it equals ``image``), then erode by the
    4-neighbour cross and take the maximum with ``image``, until nothing changes. Each sweep
    carries the fill one pixel further, so a scene takes as many sweeps as its longest
    outlet path is long (1,130 and 1,397 counted on two 1024 x 1024 scenes), but a sweep is
    six elementwise kernels over the scene: on a GPU that is microseconds each, where the
    CPU round trip through scikit-image cost seconds a scene. Measured on an H200, 2048 x
    2048 scenes: the whole cloud step 614 ms, against 4,261 ms on that machine's 16 CPU
    threads. The result is exact (minima and maxima of the image's own values), and equals
    scikit-image's bit for bit.

    Args:
        image: (H, W) float.
        border: (H, W) bool, where the fill equals ``image`` (the frame and no-data).
        check_every: sweeps between convergence checks (each check waits for the device).
    """
    import torch.nn.functional as F

    marker = torch.where(border, image, image.max())
    before = torch.empty_like(marker)
    for _ in range(0, image.numel() + check_every, check_every):
        before.copy_(marker)
        for _ in range(check_every):
            padded = F.pad(marker, (1, 1, 1, 1), value=float("inf"))
            eroded = torch.minimum(
                torch.minimum(padded[:-2, 1:-1], padded[2:, 1:-1]),
                torch.minimum(padded[1:-1, :-2], padded[1:-1, 2:]),
            )
            marker = torch.maximum(torch.minimum(marker, eroded), image)
        if torch.equal(marker, before):
            break
    return marker


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilate a bool mask by a (2r+1)-square, in O(log r) shifted ORs per axis (sparse table).

    Example:
        >>> m = torch.zeros(1, 7, dtype=torch.bool); m[0, 3] = True
        >>> dilate(m, 2).int().tolist()
        [[0, 1, 1, 1, 1, 1, 0]]
    """
    if radius <= 0:
        return mask
    out = mask
    for dim in (0, 1):
        size = out.shape[dim]
        shape = list(out.shape)
        shape[dim] = radius
        pad = torch.zeros(shape, dtype=torch.bool, device=out.device)
        table = torch.cat([pad, out, pad], dim)  # table[j] covers padded[j : j + span]
        width, span = 2 * radius + 1, 1
        while 2 * span <= width:
            table = table | _ahead(table, span, dim)
            span *= 2
        out = table.narrow(dim, 0, size) | table.narrow(dim, width - span, size)
    return out


def _ahead(x: torch.Tensor, shift: int, dim: int) -> torch.Tensor:
    """y[j] = x[j + shift] along ``dim``, False past the end."""
    tail = list(x.shape)
    tail[dim] = shift
    zeros = torch.zeros(tail, dtype=x.dtype, device=x.device)
    return torch.cat([x.narrow(dim, shift, x.shape[dim] - shift), zeros], dim)
