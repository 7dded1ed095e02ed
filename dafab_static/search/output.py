"""Write a search result in the CLI's formats: ndjson, geojson, parquet, ids, count."""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from dafab_static.errors import OptionError
from dafab_static.search.params import Fields
from dafab_static.search.result import SearchResult
from dafab_static.storage import fresh_sibling

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
def _target(output: str) -> Iterator[str]:
    """The path to write ``output`` through: a temporary file beside it, renamed over it
    once everything is written, so a search that fails (a bad filter, a full disk) leaves
    an existing file as it was. A device or a pipe (``/dev/stdout``) is written directly.

    Raises:
        OptionError: naming ``--output`` when it cannot be written.
    """
    path = Path(output)
    if not output:
        raise OptionError("--output: an empty path")
    if path.is_dir():
        raise OptionError(f"--output {output}: is a folder, not a file")
    if path.exists() and not path.is_file():
        try:
            yield output
        except OSError as error:
            raise OptionError(f"--output {output}: {error.strerror or error}") from None
        return
    if not path.parent.is_dir():
        raise OptionError(f"--output {output}: no such folder {path.parent}")
    try:
        temporary = str(fresh_sibling(path))
    except OSError as error:
        raise OptionError(f"--output {output}: {error.strerror or error}") from None
    try:
        yield temporary
        os.replace(temporary, output)
    except OSError as error:
        raise OptionError(f"--output {output}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _refuse_own_input(result: SearchResult, output: str) -> None:
    """Never write over what the search reads: ``-o`` naming one of its Parquet files
    rewrote that partition, and the published catalog no longer matched its manifest."""
    target = os.path.realpath(output)
    source = result.source
    local = [f.url for f in source.files if "://" not in f.url]
    inside: str | None = None
    if source.catalog is not None and "://" not in source.location:
        root = source.location
        inside = os.path.realpath(os.path.dirname(root) if root.endswith(".json") else root)
    for path in local:
        if os.path.realpath(path) == target:
            raise OptionError(f"--output {output}: is an index file this search reads")
    if inside is not None and os.path.commonpath([inside, target]) == inside:
        raise OptionError(
            f"--output {output}: is inside the catalog this search reads ({inside}); "
            "write the results elsewhere"
        )


@contextmanager
def _sink(output: str | None) -> Iterator[IO[bytes]]:
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with _target(output) as path, open(path, "wb") as handle:
        yield handle


def write(result: SearchResult, kind: str, output: str | None) -> int:
    """Write ``result`` as ``kind`` to ``output`` (a path) or stdout; returns the item count."""
    if output is not None:
        _refuse_own_input(result, output)
    if kind == "parquet":
        if output is None:
            raise OptionError("--format parquet needs --output FILE")
        import stac_geoparquet.arrow

        table = result.to_arrow()
        with _target(output) as path:
            stac_geoparquet.arrow.to_parquet(table, path)
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
