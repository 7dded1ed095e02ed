"""Choosing the torch device, and what to record about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dafab_static.errors import OptionError

if TYPE_CHECKING:
    import torch


def choose_device(requested: str | None = None, *, where: str = "--device") -> torch.device:
    """The device to compute on: ``requested``, or the first of cuda, mps, cpu available.

    Raises:
        OptionError: naming ``where`` (``--device``, or the recipe's ``[execution] device``)
            when the name is not a torch device or that device is not available here.

    Example:
        >>> choose_device("cpu").type
        'cpu'
    """
    import torch

    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(str(requested))
    except RuntimeError:
        raise OptionError(
            f"{where} {requested!r}: not a torch device (auto, cpu, cuda, cuda:1, mps)"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionError(f"{where} {requested!r}: CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"{where} {requested!r}: MPS is not available on this machine")
    return device


def describe_device(device: torch.device) -> str:
    """``cpu (2 threads)`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``: what provenance records."""
    import torch

    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)
