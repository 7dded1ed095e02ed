"""dafab-static: a unified, serverless Earth-observation metadata catalog.

Rasters and other hubs' STAC items become one static STAC tree plus stac-geoparquet
indexes, in a folder or an S3-compatible bucket.

The public names load on first use (PEP 562), so that ``dafab-static --help`` imports no
Arrow and a search does not import the build: importing everything took 0.8 s of every
command's start.
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
import types as _types
import typing as _typing

__version__ = "0.1.0"

from dafab_static.errors import (
    DafabError,
    InputError,
    OptionError,
    QueryError,
    StorageError,
    ValidationError,
)

# Public name → the module that defines it.
_LAZY = {
    "BuildOptions": "dafab_static.options",
    "BuildReport": "dafab_static.report",
    "CatalogInfo": "dafab_static.info",
    "SearchResult": "dafab_static.search",
    "Store": "dafab_static.storage",
    "ValidationReport": "dafab_static.validate",
    "build": "dafab_static.build",
    "info": "dafab_static.info",
    "open_store": "dafab_static.storage",
    "queryables": "dafab_static.queryables",
    "search": "dafab_static.search",
    "validate": "dafab_static.validate",
}

if _typing.TYPE_CHECKING:
    from dafab_static.build import build
    from dafab_static.info import CatalogInfo, info
    from dafab_static.options import BuildOptions
    from dafab_static.queryables import queryables
    from dafab_static.report import BuildReport
    from dafab_static.search import SearchResult, search
    from dafab_static.storage import Store, open_store
    from dafab_static.validate import ValidationReport, validate


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dafab_static' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


class _Package(_types.ModuleType):
    """Five submodules share their name with the function they define (``build``,
    ``info``, ``queryables``, ``search``, ``validate``). Importing a submodule binds it as an
    attribute of its package; here the function keeps that name, as an eager
    ``from dafab_static.build import build`` used to ensure."""

    def __setattr__(self, name: str, value: _typing.Any) -> None:
        if isinstance(value, _types.ModuleType) and _LAZY.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package

__all__ = [
    "BuildOptions",
    "BuildReport",
    "CatalogInfo",
    "DafabError",
    "InputError",
    "OptionError",
    "QueryError",
    "SearchResult",
    "StorageError",
    "Store",
    "ValidationError",
    "ValidationReport",
    "__version__",
    "build",
    "info",
    "open_store",
    "queryables",
    "search",
    "validate",
]
