"""Recipes: one TOML file per pipeline, naming its steps, their parameters and models, and
the collections it applies to. Checked completely before any scene is read."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dafab_static.errors import OptionError
from dafab_static.pipeline.registry import Step, step_class

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_EXECUTION_KEYS = {"max_size", "window", "device", "workers", "reader", "precision"}


@dataclass(frozen=True)
class Execution:
    """How scenes are read and computed.

    Attributes:
        max_size: Pixels on the long side of the analysis grid; larger scenes are read
            decimated (from COG overviews when present). 1024 puts a Sentinel-2 tile at
            ~107 m, finer than the 160 m s2cloudless works at.
        window: Side of the square windows a scene is cut into.
        device: ``auto`` (cuda, then mps, then cpu), or a torch device name.
        workers: Readers working ahead of the compute; ``auto`` is one per core but one, 1 to
            4; 0 reads in the computing thread.
        reader: ``threads`` (GDAL decodes without the GIL; no copies) or ``processes``.
        precision: ``auto`` (bfloat16 autocast for encoders on CUDA), ``float32``.
    """

    max_size: int = 1024
    window: int = 256
    device: str = "auto"
    workers: int | str = "auto"
    reader: str = "threads"
    precision: str = "auto"


@dataclass(frozen=True)
class StepSpec:
    """One step of a recipe: its class and parameters."""

    name: str
    cls: type[Step]
    params: Mapping[str, Any]

    def create(self) -> Step:
        """Instantiate the step with its parameters."""
        return self.cls(**self.params)


@dataclass(frozen=True)
class Recipe:
    """A parsed, checked recipe.

    Attributes:
        name: Short name, recorded in provenance.
        version: The recipe's own version, recorded as ``processing:version``.
        description: One line for people.
        collections: Collection-id patterns (``fnmatch``) the recipe applies to.
        assets: ``local`` reads only items whose raster assets are local files (a build of
            another hub's items does not download its archive); ``any`` also reads URLs.
        steps: The steps, in order (later steps see earlier steps' layers).
        execution: See :class:`Execution`.
        source: The file it came from.
    """

    name: str
    version: str
    description: str
    collections: tuple[str, ...]
    assets: str
    steps: tuple[StepSpec, ...]
    execution: Execution = field(default_factory=Execution)
    source: str = "<recipe>"

    def applies_to(self, collection: str | None) -> bool:
        """Whether items of ``collection`` go through this recipe."""
        return any(fnmatch.fnmatchcase(collection or "", p) for p in self.collections)


def load_recipe(path: str | Path, *, option: str = "--pipeline") -> Recipe:
    """Read and check a recipe file; ``option`` names the parameter in messages.

    Raises:
        OptionError: naming the file, and the table or step, for anything wrong: missing
            file, bad TOML, unknown keys, unknown steps, bad step parameters.

    Example:
        >>> recipe = load_recipe("pipelines/default.toml")  # doctest: +SKIP
        >>> [s.name for s in recipe.steps]  # doctest: +SKIP
        ['indices', 'cloud_mask', 'land_cover', 'embedding', 'thumbnail', 'annotations']
    """
    where = str(path)
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        hint = ""
        if isinstance(e, FileNotFoundError) and Path(path).suffix != ".toml":
            hint = "; a recipe is a TOML file, such as pipelines/default.toml"
        raise OptionError(
            f"{option} {where}: cannot read recipe ({e.strerror or e}){hint}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise OptionError(f"{option} {where}: not valid TOML ({e})") from None
    return parse_recipe(doc, source=where)


def parse_recipe(doc: Mapping[str, Any], *, source: str = "<recipe>") -> Recipe:
    """Check a recipe given as a mapping (the parsed TOML); see :func:`load_recipe`."""
    _known(doc, {"pipeline", "execution", "steps"}, source)
    head = _table(doc.get("pipeline", {}), f"{source} [pipeline]")
    _known(head, {"name", "version", "description", "collections", "assets"},
           f"{source} [pipeline]")  # fmt: skip
    assets = head.get("assets", "local")
    if assets not in ("local", "any"):
        raise OptionError(f"{source} [pipeline] assets={assets!r}: expected 'local' or 'any'")
    collections = head.get("collections", ["*"])
    if isinstance(collections, str):
        collections = [collections]
    if not isinstance(collections, list) or not all(isinstance(c, str) for c in collections):
        raise OptionError(f"{source} [pipeline] collections: expected a list of strings")
    execution = _execution(_table(doc.get("execution", {}), f"{source} [execution]"), source)
    raw_steps = doc.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise OptionError(f"{source}: no [[steps]]; a recipe needs at least one step")
    steps = []
    provided: set[str] = set()
    for n, raw in enumerate(raw_steps, start=1):
        where = f"{source} step {n}"
        raw = _table(raw, where)
        name = raw.get("name")
        if not isinstance(name, str):
            raise OptionError(f"{where}: needs a name (one of the known steps)")
        where = f"{source} step {n} ({name})"
        spec = StepSpec(name, step_class(name, where=where),
                        {k: v for k, v in raw.items() if k != "name"})  # fmt: skip
        step = _try_create(spec, where)
        missing = [layer for layer in getattr(step, "needs", ()) if layer not in provided]
        if missing:
            raise OptionError(
                f"{where}: needs the {', '.join(missing)} layer of an earlier step "
                "(cloud_mask gives cloud and shadow, land_cover gives landcover)"
            )
        provided.update(getattr(step, "provides", ()))
        steps.append(spec)
    return Recipe(
        name=str(head.get("name", Path(source).stem)),
        version=str(head.get("version", "1")),
        description=str(head.get("description", "")),
        collections=tuple(collections),
        assets=assets,
        steps=tuple(steps),
        execution=execution,
        source=source,
    )


def _try_create(spec: StepSpec, where: str) -> Step:
    """Instantiate once so a bad parameter is reported before any scene is read."""
    try:
        return spec.create()
    except TypeError as e:
        # The step's __init__ signature is the parameter list: an unexpected keyword is a
        # typo in the recipe.
        raise OptionError(f"{where}: {e}".replace("__init__() ", "")) from None
    except OptionError as e:
        raise OptionError(f"{where}: {e}") from None
    except ValueError as e:  # a parameter of the right name but the wrong shape
        raise OptionError(f"{where}: a parameter has the wrong shape: {e}") from None


def _execution(table: Mapping[str, Any], source: str) -> Execution:
    _known(table, _EXECUTION_KEYS, f"{source} [execution]")
    try:
        execution = Execution(**table)
    except TypeError as e:
        raise OptionError(f"{source} [execution]: {e}") from None
    for key in ("max_size", "window"):
        value = getattr(execution, key)
        if not isinstance(value, int) or value < 16:
            raise OptionError(f"{source} [execution] {key}={value!r}: expected an integer >= 16")
    if execution.workers != "auto" and (
        not isinstance(execution.workers, int) or execution.workers < 0
    ):
        raise OptionError(f"{source} [execution] workers={execution.workers!r}: 'auto' or >= 0")
    if execution.reader not in ("threads", "processes"):
        raise OptionError(
            f"{source} [execution] reader={execution.reader!r}: 'threads' or 'processes'"
        )
    if execution.precision not in ("auto", "float32"):
        raise OptionError(
            f"{source} [execution] precision={execution.precision!r}: 'auto' or 'float32'"
        )
    return execution


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise OptionError(f"{where}: expected a table")
    return value


def _known(table: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise OptionError(
            f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(keys))}"
        )
