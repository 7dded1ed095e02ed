"""Write a search result in the CLI's formats: ndjson, geojson, parquet, ids, count."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from dafab_static.errors import OptionError
from dafab_static.search.params import Fields
from dafab_static.search.result import SearchResult

FORMATS = ("ndjson", "geojson", "parquet", "ids", "count")


def read_argument(value: str | None, option: str, *, json_only: bool = False) -> str | None:
    """An option's value, or the contents of the file it names as ``@FILE``, so long
    filters and geometries need no shell quoting. With ``json_only`` (a GeoJSON option), a
    value that is not JSON text names a file too.

    A bare value is never looked up as a file otherwise: ``--filter flag`` is the boolean
    property ``flag`` even where a file called ``flag`` exists, and a long filter is never
    handed to the file system (names past 255 bytes would fail there).

    Raises:
        OptionError: the file cannot be read, naming the option and the path.
    """
    if value is None:
        return None
    if value.startswith("@"):
        path = value[1:]
    elif json_only and not value.lstrip().startswith(("{", "[")):
        path = value
    else:
        return value
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptionError(f"{option}: no such file {path}") from None
    except OSError as error:
        raise OptionError(f"{option}: cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise OptionError(f"{option}: {path} is not UTF-8 text ({error.reason})") from None


@contextmanager
def _sink(output: str | None) -> Iterator[IO[bytes]]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        handle = open(output, "wb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise OptionError(f"--output {output}: {error.strerror}") from None
    with handle:
        yield handle


def write(result: SearchResult, kind: str, output: str | None) -> int:
    """Write ``result`` as ``kind`` to ``output`` (a path) or stdout; returns the item count."""
    if kind == "parquet":
        if output is None:
            raise OptionError("--format parquet needs --output FILE")
        import stac_geoparquet.arrow

        table = result.to_arrow()
        stac_geoparquet.arrow.to_parquet(table, output)
        return int(table.num_rows)
    if kind == "count":
        n = result.count()
        with _sink(output) as sink:
            sink.write(f"{n}\n".encode())
        return n
    if kind == "ids":
        # Only the ids are written: read that column alone (pass 2 then decodes no asset
        # or link of a matching row), as the Fields extension would ask.
        result = result.with_fields(Fields(include=("id",), exact=True))
    written = 0
    with _sink(output) as sink:
        if kind == "geojson":
            sink.write(b'{"type":"FeatureCollection","features":[')
        for item in result:
            if kind == "ids":
                sink.write(f"{item.get('id')}\n".encode())
            elif kind == "geojson":
                sink.write((b"," if written else b"") + _dumps(item))
            else:
                sink.write(_dumps(item) + b"\n")
            written += 1
        if kind == "geojson":
            # STAC API ItemCollection counts: numberMatched only where it is known without
            # a second scan (no limit, or the limit was not reached).
            limit = result.request.limit
            matched = written if limit is None or written < limit else None
            counts = f',"numberReturned":{written}'
            counts += f',"numberMatched":{matched}' if matched is not None else ""
            sink.write(f"]{counts}}}\n".encode())
    if kind == "ids" and not written and result.count():
        # Plain GeoParquet without an id column: the projection to "id" kept no column.
        raise OptionError(
            "--format ids: the matching features have no id (GeoParquet without an 'id' "
            "column); use --format ndjson or geojson"
        )
    return written


def _dumps(item: dict[str, Any]) -> bytes:
    return orjson.dumps(item, default=_json_value)


def _json_value(value: Any) -> Any:
    """What orjson cannot write itself: a binary property of plain GeoParquet (a second WKB
    geometry, a checksum) becomes base64 text, JSON having no bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
