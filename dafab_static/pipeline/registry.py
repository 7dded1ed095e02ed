"""Steps are plugins: classes registered by name, found three ways.

1. Built-in steps register themselves with :func:`register_step` when
   :mod:`dafab_static.pipeline.steps` is imported.
2. Installed packages add steps through the ``dafab_static.steps`` entry-point group
   (``[project.entry-points."dafab_static.steps"] mystep = "mypkg.steps:MyStep"``), the
   mechanism pytest and rasterio's ``rio`` plugins use.
3. A recipe may name any importable class as ``"module:Class"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from dafab_static.errors import OptionError

if TYPE_CHECKING:
    import torch

    from dafab_static.pipeline.windows import StepOutput, Windows

ENTRY_POINT_GROUP = "dafab_static.steps"
_REGISTRY: dict[str, type[Step]] = {}
S = TypeVar("S", bound="type[Step]")


class Step:
    """One unit of a recipe: in go a batch of windows and their item, out come properties,
    assets or both.

    Subclasses take their recipe parameters as keyword arguments (check them in
    ``__init__`` and raise :class:`~dafab_static.errors.OptionError` naming the parameter),
    load models in :meth:`setup`, and derive in :meth:`__call__`.

    Attributes:
        name: The name recipes use.
        requires: STAC common band names the step cannot work without; an item that lacks
            one is passed over by this step, with a note in the run summary.
        reads_pixels: False for steps that take nothing from the item's own pixels (pooling
            an embedding product), so a recipe of only those reads no scene.
        provides, needs: Names of scene layers (``cloud``, ``landcover``) a step gives to
            later steps or takes from earlier ones; recipes are checked for the order.

    Example:
        >>> @register_step("brightness")
        ... class Brightness(Step):
        ...     requires = ("red",)
        ...     def __call__(self, windows):
        ...         red = windows.pixels[:, windows.channel("red")][windows.valid]
        ...         return StepOutput(properties={"my:red_mean": float(red.mean())})
    """

    name: ClassVar[str] = ""
    requires: tuple[str, ...] = ()
    reads_pixels: ClassVar[bool] = True
    #: Scene layers this step puts in ``StepOutput.layers`` / needs from earlier steps.
    provides: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    #: Steps of physical methods refuse bands that are not reflectance (no scale).
    needs_reflectance: ClassVar[bool] = False
    #: Run under bfloat16 autocast on CUDA (encoders); others stay float32.
    autocast: ClassVar[bool] = False
    #: Parameters that name files: a relative path in a recipe is relative to the recipe.
    path_parameters: ClassVar[tuple[str, ...]] = ()

    def setup(self, device: torch.device) -> None:
        """Load weights and move them to ``device``; called once per run."""
        del device

    def models(self) -> list[str]:
        """Ids of the models this step runs, for provenance."""
        return []

    def __call__(self, windows: Windows) -> StepOutput:
        raise NotImplementedError


def register_step(name: str) -> Callable[[S], S]:
    """Class decorator: make a :class:`Step` available to recipes as ``name``."""

    def add(cls: S) -> S:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return add


def step_class(name: str, *, where: str) -> type[Step]:
    """The step class recipes call ``name``.

    Raises:
        OptionError: naming ``where`` (the recipe and step) when no step has that name.
    """
    import dafab_static.pipeline.steps  # noqa: F401  (registers the built-ins)

    if name in _REGISTRY:
        return _REGISTRY[name]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name:
            return _checked(_loaded(point.load, f"installed step {name!r} ({point.value})",
                                    where), name, where)  # fmt: skip
    if ":" in name:
        module, _, attr = name.partition(":")
        if not module or module.startswith(".") or not attr:
            raise OptionError(f"{where}: step {name!r}: expected an absolute 'module:Class'")
        found = _loaded(lambda: importlib.import_module(module), f"step {name!r}", where)
        if not hasattr(found, attr):
            raise OptionError(f"{where}: cannot import step {name!r} (module {module!r} has "
                              f"no attribute {attr!r})")  # fmt: skip
        return _checked(getattr(found, attr), name, where)
    raise OptionError(
        f"{where}: unknown step {name!r}; known steps: {', '.join(available_steps())}"
    )


def _loaded(load: Callable[[], Any], what: str, where: str) -> Any:
    """What ``load`` imports; whatever a plugin's import raises is named in one line (an
    uninstalled module, or its own code failing at import)."""
    try:
        return load()
    except ImportError as e:
        raise OptionError(f"{where}: cannot import {what} ({e})") from None
    except Exception as e:
        raise OptionError(f"{where}: importing {what} failed: {type(e).__name__}: {e}") from None


def is_builtin(cls: type) -> bool:
    """Whether a step class is one of ours: an exception it raises is a bug to show with
    its traceback, where a plugin's is named in one line."""
    return cls.__module__.startswith("dafab_static.")


def available_steps() -> list[str]:
    """Names of the built-in and installed steps."""
    import dafab_static.pipeline.steps  # noqa: F401

    return sorted({*_REGISTRY, *(p.name for p in entry_points(group=ENTRY_POINT_GROUP))})


def _checked(obj: Any, name: str, where: str) -> type[Step]:
    if not (isinstance(obj, type) and issubclass(obj, Step)):
        raise OptionError(f"{where}: {name!r} is not a dafab_static.pipeline.Step subclass")
    if not obj.name:  # reports and provenance name each step: by the recipe's name for it
        obj.name = name
    return obj
