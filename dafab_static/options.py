"""Build options: one frozen dataclass, validated once at the edge."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dafab_static.errors import InputError, OptionError
from dafab_static.layout import check_id

#: STAC Browser and most crawlers page poorly past a few thousand links per catalog.
DEFAULT_MAX_CHILDREN = 2000
#: Items per streamed batch (stac-geoparquet's chunking uses the same order of magnitude).
DEFAULT_BATCH_SIZE = 8192


@dataclass(frozen=True)
class BuildOptions:
    """How :func:`dafab_static.build` turns sources into a catalog.

    Attributes:
        base_url: Public URL of the destination. With it every ``self`` link is absolute and
            the root's ``self`` is ``{base_url}/catalog.json``; without it links are relative.
        datetime: Acquisition time for rasters whose tags and names carry none (ISO 8601).
        collection: Collection id forced onto every ingested item.
        strict: Stop at the first bad input instead of skipping it.
        quiet: No progress bars.
        max_children: Largest number of links one catalog may hold before it is split.
        batch_size: Items per streamed batch.
        title: Title of the root catalog.
        collections: Paths of Collection JSON files to use instead of generated ones.
        validate: Validate every object written against the STAC JSON Schemas.
        workers: Threads reading rasters, and processes reading large NDJSON and
            stac-geoparquet files and writing months (0 picks one per core; 1 keeps all of
            it in this process).
        pipeline: Path of a pipeline recipe (TOML) to run over the scenes before writing.
        device: Torch device for the pipeline (``auto``: cuda, then mps, then cpu).
    """

    base_url: str | None = None
    datetime: _dt.datetime | None = None
    collection: str | None = None
    strict: bool = False
    quiet: bool = False
    max_children: int = DEFAULT_MAX_CHILDREN
    batch_size: int = DEFAULT_BATCH_SIZE
    title: str = "dafab-static catalog"
    collections: tuple[str, ...] = field(default_factory=tuple)
    validate: bool = True
    workers: int = 0
    pipeline: str | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        self._check_types()
        if self.base_url is not None:
            try:
                parts = urlsplit(self.base_url)
            except ValueError:  # e.g. an unclosed IPv6 bracket
                parts = urlsplit("")
            if parts.scheme not in ("http", "https", "s3", "file") or (
                not parts.netloc and parts.scheme != "file"
            ):
                raise OptionError(
                    f"--base-url {self.base_url!r}: expected an absolute URL such as "
                    "https://example.com/catalog"
                )
            if parts.query or parts.fragment or "?" in self.base_url or "#" in self.base_url:
                # Every href is the base URL plus a path: a query would land in the middle.
                raise OptionError(
                    f"--base-url {self.base_url!r}: a folder URL takes no query or fragment"
                )
            if "@" in parts.netloc:
                # Every published href would carry them, to anyone who reads the catalog.
                user = parts.netloc.rpartition("@")[0].partition(":")[0]
                raise OptionError(
                    f"--base-url {parts.scheme}://{user}:…@{parts.hostname}: holds credentials"
                    f" ({user}:…@), which every published href would carry; give the public URL"
                )
            if any(c.isspace() or ord(c) < 32 for c in self.base_url):
                raise OptionError(
                    f"--base-url {self.base_url!r}: holds white space; percent-encode it (%20)"
                )
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.max_children < 31:
            # A split month has up to 31 day catalogs and a split day 24 hour catalogs.
            raise OptionError(f"--max-children {self.max_children}: must be at least 31")
        if self.batch_size < 1:
            raise OptionError(f"batch_size={self.batch_size}: must be positive")
        if self.workers < 0:
            raise OptionError(f"--workers {self.workers}: must be 0 (one per core) or more")
        if self.collection is not None:
            try:
                check_id(self.collection, what="collection", source="--collection",
                         fix="choose another")  # fmt: skip
            except InputError as e:  # the option is wrong, not the items it would be given
                raise OptionError(str(e)) from None
        if self.device is not None and self.pipeline is None:
            raise OptionError(f"--device {self.device}: runs a pipeline; give one with --pipeline")
        if self.datetime is not None and self.datetime.tzinfo is None:
            object.__setattr__(self, "datetime", self.datetime.replace(tzinfo=_dt.timezone.utc))

    def _check_types(self) -> None:
        """Python callers get what the CLI's parsing gives: a wrong type is an OptionError
        naming the option, and the obvious spellings are taken (a date, ISO text, one path)."""
        when: object = self.datetime
        if isinstance(when, str):
            object.__setattr__(self, "datetime", parse_datetime(when, option="datetime"))
        elif isinstance(when, _dt.date) and not isinstance(when, _dt.datetime):
            object.__setattr__(self, "datetime", _dt.datetime(when.year, when.month, when.day))
        elif when is not None and not isinstance(when, _dt.datetime):
            raise OptionError(f"datetime={when!r}: expected a datetime or ISO 8601 text")
        paths: object = self.collections
        if isinstance(paths, str | os.PathLike):
            paths = (paths,)
        if not isinstance(paths, list | tuple) or not all(
            isinstance(p, str | os.PathLike) and os.fspath(p) for p in paths
        ):
            # An empty path read the working directory: ": cannot read collection (Is a
            # directory)", naming neither the file nor the option.
            raise OptionError(
                f"collections={self.collections!r} (--collection-json): "
                "expected paths of JSON files"
            )
        object.__setattr__(self, "collections", tuple(os.fspath(p) for p in paths))
        if isinstance(self.pipeline, os.PathLike):
            object.__setattr__(self, "pipeline", os.fspath(self.pipeline))
        for name, kind in _TYPES.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise OptionError(f"{name}={value!r}: expected {kind.__name__}")


#: The options that may be None (unset); the others always hold a value of their type.
_OPTIONAL = frozenset({"base_url", "collection", "pipeline", "device"})
_TYPES: dict[str, type] = {
    "base_url": str, "collection": str, "strict": bool, "quiet": bool, "max_children": int,
    "batch_size": int, "title": str, "validate": bool, "workers": int, "pipeline": str,
    "device": str,
}  # fmt: skip


def parse_datetime(text: str, *, option: str = "--datetime") -> _dt.datetime:
    """Parse an ISO 8601 date or date-time given on the command line, in UTC when naive.

    Raises:
        OptionError: naming ``option`` when ``text`` is not ISO 8601.

    Example:
        >>> parse_datetime("2024-07-15").isoformat()
        '2024-07-15T00:00:00+00:00'
    """
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OptionError(f"{option} {text!r}: not an ISO 8601 date or date-time") from None
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def path_argument(value: object, name: str) -> str:
    """A path or URL given to the Python API, as text: ``str`` or any ``os.PathLike``.

    Raises:
        OptionError: naming the parameter, for anything else (None, bytes, a number, "").
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise OptionError(f"{name}={value!r}: expected a path or URL")
    if "://" in value:
        try:
            urlsplit(value).port  # noqa: B018 -- parses host and port: "http://[::1" fails
        except ValueError as e:
            raise OptionError(f"{name}={value!r}: not a valid URL ({e})") from None
    return value


def sources_argument(value: object) -> list[str]:
    """The ``sources`` of :func:`dafab_static.build`: one path or URL, or an iterable of
    them (a plain string is one source, never its characters).

    Raises:
        OptionError: for anything else.
    """
    if isinstance(value, str | os.PathLike):
        return [path_argument(value, "sources")]
    if isinstance(value, bytes | dict) or not isinstance(value, Iterable):
        raise OptionError(f"sources={value!r}: expected paths or URLs")
    return [path_argument(v, "sources") for v in value]
