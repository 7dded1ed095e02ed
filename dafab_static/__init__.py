"""dafab-static: a unified, serverless Earth-observation metadata catalog.

Rasters and other hubs' STAC items become one static STAC tree plus stac-geoparquet
indexes, in a folder or an S3-compatible bucket.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dafab_static.build import build
from dafab_static.errors import (
    DafabError,
    InputError,
    OptionError,
    QueryError,
    StorageError,
    ValidationError,
)
from dafab_static.info import CatalogInfo, info
from dafab_static.options import BuildOptions
from dafab_static.queryables import queryables
from dafab_static.report import BuildReport
from dafab_static.search import SearchResult, search
from dafab_static.storage import Store, open_store
from dafab_static.validate import ValidationReport, validate

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
