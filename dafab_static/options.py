"""Build options: one frozen dataclass, validated once at the edge."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dafab_static.errors import OptionError

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
        workers: Worker threads for writing objects (0 picks one per core).
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
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https", "s3", "file") or (
                not parts.netloc and parts.scheme != "file"
            ):
                raise OptionError(
                    f"--base-url {self.base_url!r}: expected an absolute URL such as "
                    "https://example.com/catalog"
                )
            object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if self.max_children < 31:
            # A split month has up to 31 day catalogs and a split day 24 hour catalogs.
            raise OptionError(f"--max-children {self.max_children}: must be at least 31")
        if self.batch_size < 1:
            raise OptionError(f"batch_size={self.batch_size}: must be positive")
        if self.datetime is not None and self.datetime.tzinfo is None:
            object.__setattr__(self, "datetime", self.datetime.replace(tzinfo=_dt.timezone.utc))


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
