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
from dafab_static.pipeline.registry import Step, is_builtin, step_class

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
    """Read and check a recipe file, or a recipe shipped with the package, by name
    (``default``) or by the ``pipelines/NAME.toml`` path of the source tree when no such
    file is here; ``option`` names the parameter in messages.

    Raises:
        OptionError: naming the file, and the table or step, for anything wrong: missing
            file, bad TOML, unknown keys, unknown steps, bad step parameters.

    Example:
        >>> recipe = load_recipe("default")
        >>> [s.name for s in recipe.steps]
        ['indices', 'cloud_mask', 'land_cover', 'embedding', 'thumbnail', 'annotations']
    """
    where = str(path)
    if not Path(path).is_file() and (shipped := _shipped(where)) is not None:
        where = str(shipped)
    try:
        doc = tomllib.loads(Path(where).read_text(encoding="utf-8"))
    except OSError as e:
        hint = ""
        if isinstance(e, FileNotFoundError):
            names = ", ".join(shipped_recipes())
            hint = f"; a recipe is a TOML file, or one of the shipped recipes: {names}"
        raise OptionError(
            f"{option} {where}: cannot read recipe ({e.strerror or e}){hint}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise OptionError(f"{option} {where}: not valid TOML ({e})") from None
    return parse_recipe(doc, source=where)


def shipped_recipes() -> dict[str, Path]:
    """The recipes of the source tree's ``pipelines/`` folder that the package ships, by name.

    ``dafab_static/recipes`` is a link to that folder, so an installed wheel carries them
    (a Windows clone without symbolic links has none: give the path).

    Example:
        >>> sorted(shipped_recipes())[:2]
        ['default', 'google-satellite-embedding']
    """
    folder = Path(__file__).resolve().parent.parent / "recipes"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def _shipped(name: str) -> Path | None:
    """The shipped recipe ``name`` stands for: ``default``, ``default.toml`` or
    ``pipelines/default.toml`` (as the README writes it, run outside a clone)."""
    stem = name.replace("\\", "/").removeprefix("pipelines/").removesuffix(".toml")
    return shipped_recipes().get(stem) if "/" not in stem else None


def parse_recipe(doc: Mapping[str, Any], *, source: str = "<recipe>") -> Recipe:
    """Check a recipe given as a mapping (the parsed TOML); see :func:`load_recipe`."""
    _known(doc, {"pipeline", "execution", "steps"}, source)
    head = _table(doc.get("pipeline", {}), f"{source} [pipeline]")
    _known(head, {"name", "version", "description", "collections", "assets"},
           f"{source} [pipeline]")  # fmt: skip
    for key in ("name", "version", "description"):
        if key in head and not isinstance(head[key], str):
            # TOML reads version = 1.10 as the number 1.1: quoting is the user's to do.
            raise OptionError(
                f"{source} [pipeline] {key}={head[key]!r}: expected a string (in quotes)"
            )
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
        cls = step_class(name, where=where)
        params = {k: _beside(v, source) if k in cls.path_parameters else v
                  for k, v in raw.items() if k != "name"}  # fmt: skip
        spec = StepSpec(name, cls, params)
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


def _beside(value: Any, source: str) -> Any:
    """A file parameter's relative path, resolved against the recipe's folder (as a
    recipe that ships with its weights expects, wherever it is run from); URLs, absolute
    paths and recipes given as mappings (no file) are left as they are."""
    recipe = Path(source)
    if not isinstance(value, str) or not value or "://" in value or not recipe.is_file():
        return value
    path = Path(value).expanduser()
    return value if path.is_absolute() else str(recipe.resolve().parent / path)


def _try_create(spec: StepSpec, where: str) -> Step:
    """Instantiate once so a bad parameter is reported before any scene is read."""
    _check_parameters(spec, where)
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
    except Exception as e:  # a plugin's own code: whatever it raises, name the step
        if is_builtin(spec.cls):
            raise  # a bug of ours: its traceback is what fixes it
        raise OptionError(f"{where}: the step failed to start: {type(e).__name__}: {e}") from None


def _check_parameters(spec: StepSpec, where: str) -> None:
    """Names and types of a step's parameters, from its ``__init__`` signature.

    Values are checked, never coerced (pydantic, strict): ``mask = "no"`` is not false, and
    ``dilation = true`` is not 1; a TOML array stands for a tuple or a list alike. A plugin
    whose annotations do not resolve, or name types pydantic does not know, is left to its
    own checks.
    """
    import inspect
    import typing

    from pydantic import ConfigDict, PydanticSchemaGenerationError, TypeAdapter, ValidationError

    parameters = inspect.signature(spec.cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        known = [n for n, p in parameters.items() if n != "self" and p.kind is not p.VAR_POSITIONAL]
        for name in spec.params:
            if name not in known:
                raise OptionError(
                    f"{where}: unknown parameter {name!r}; known: {', '.join(known) or 'none'}"
                )
    try:
        hints = typing.get_type_hints(spec.cls.__init__)
    except Exception:  # a plugin's annotations that do not resolve
        return
    for name, value in spec.params.items():
        hint = hints.get(name)
        if hint is None or hint is Any:
            continue
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(hint, config=ConfigDict(strict=True))
        except PydanticSchemaGenerationError:
            continue
        # TOML has arrays, no tuples: an array given for a tuple is checked as one.
        given = tuple(value) if isinstance(value, list) and _wants_tuple(hint) else value
        try:
            adapter.validate_python(given)
        except ValidationError as e:
            error = e.errors()[0]
            at = "".join(f"item {part}: " for part in error["loc"] if isinstance(part, int))
            message = str(error["msg"]).replace("a valid tuple", "an array")
            raise OptionError(
                f"{where}: {name}={value!r}: {at}{message[:1].lower()}{message[1:]}"
            ) from None


def _wants_tuple(hint: Any) -> bool:
    """Whether a type hint is, or admits, a tuple (``tuple[float, float] | None``)."""
    import typing

    return (
        hint is tuple
        or typing.get_origin(hint) is tuple
        or any(_wants_tuple(arg) for arg in typing.get_args(hint))
    )


def _execution(table: Mapping[str, Any], source: str) -> Execution:
    _known(table, _EXECUTION_KEYS, f"{source} [execution]")
    try:
        execution = Execution(**table)
    except TypeError as e:
        raise OptionError(f"{source} [execution]: {e}") from None
    for key in ("max_size", "window"):
        value = getattr(execution, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 16:
            raise OptionError(f"{source} [execution] {key}={value!r}: expected an integer >= 16")
    if execution.window > execution.max_size:
        raise OptionError(
            f"{source} [execution] window={execution.window}: larger than the analysis grid "
            f"(max_size={execution.max_size}); a window is a part of it"
        )
    if execution.workers != "auto" and (
        isinstance(execution.workers, bool)
        or not isinstance(execution.workers, int)
        or execution.workers < 0
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
