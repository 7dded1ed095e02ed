"""A user's own step, outside the package: what the plugin tests register."""

from __future__ import annotations

from typing import Any

from dafab_static.pipeline import Step, StepOutput, Windows


class Brightness(Step):
    """Mean reflectance of the red band over valid pixels."""

    requires = ("red",)

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def __call__(self, windows: Windows) -> StepOutput:
        red = windows.pixels[:, windows.channel("red")][windows.valid]
        return StepOutput(properties={"test:red_mean": round(float(red.mean()) * self.scale, 6)})


class Pause(Step):
    """Spends a moment off torch, as a step busy in numpy or I/O does: OpenMP's threads
    stop spinning and sleep, and the next step wakes them all at once."""

    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds

    def __call__(self, windows: Windows) -> StepOutput:
        import time

        time.sleep(self.seconds)
        return StepOutput()


class Returns(Step):
    """Returns one property, ``test:value``, of the ``kind`` a careless step might."""

    def __init__(self, kind: str = "tensor") -> None:
        self.kind = kind

    def __call__(self, windows: Windows) -> StepOutput:
        import numpy as np
        import torch

        value = {
            "tensor": torch.tensor(0.25),
            "numpy": np.float32(0.25),
            "array": np.full(2, 0.25),
            "nested": {"a": (torch.tensor([0.25]),)},
            "object": object(),
        }[self.kind]
        return StepOutput(properties={"test:value": value})


class Faulty(Step):
    """Raises a plain RuntimeError in ``__init__`` or in ``setup``, as a buggy plugin may."""

    def __init__(self, where: str = "init") -> None:
        if where == "init":
            raise RuntimeError("init")

    def setup(self, device: Any) -> None:
        raise RuntimeError("setup")
