"""One exception hierarchy for every failure a user can cause.

The CLI turns any :class:`DafabError` into one line and exit code 1; anything else is a bug
and keeps its traceback. Where a builtin fits, the error also subclasses it (as rasterio's
``RasterioIOError`` is also an ``OSError``), so callers can catch either.
"""

from __future__ import annotations


class DafabError(Exception):
    """Base class of every error dafab-static raises on purpose."""


class InputError(DafabError, ValueError):
    """A source the user gave cannot be used: unreadable raster, non-STAC JSON, bad id."""


class StorageError(DafabError, OSError):
    """A destination or remote source cannot be read or written."""


class QueryError(DafabError, ValueError):
    """A search parameter is invalid: bad CQL2, bbox, datetime or sort key."""


class ValidationError(DafabError, ValueError):
    """A STAC object fails its JSON Schemas, or the tree and the index disagree."""


class OptionError(DafabError, ValueError):
    """An option given to a command is invalid; the message names the option."""
