"""Reading one whole document by URL, and resolving a link's href against its document."""

from __future__ import annotations

import os
import posixpath
import re
import time
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from dafab_static.errors import StorageError
from dafab_static.storage._s3 import shared_s3_client
from dafab_static.storage._stores import ObjectStore

_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")  # RFC 3986 scheme ":"
_DRIVE = re.compile(r"[A-Za-z]:[\\/]")  # a Windows path, C:\ or C:/


def read_url(url: str, *, timeout: float = 30.0, total: float = 300.0) -> bytes:
    """Read one whole document from a local path, ``file://``, ``s3://`` or ``http(s)://``.

    Over HTTP, ``timeout`` bounds each wait for the server and ``total`` the whole read: a
    server that answers a byte every few seconds never trips a per-read timeout, and held
    ``validate`` for as long as it liked.

    Raises:
        StorageError: one line naming the URL when it cannot be read.

    Example:
        >>> read_url("/etc/hostname")  # doctest: +SKIP
        b'...'
    """
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, headers={"User-Agent": "dafab-static"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return _read_within(response, url, time.monotonic() + total, total)
        except urllib.error.HTTPError as e:
            raise StorageError(f"{url}: HTTP {e.code} {e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise StorageError(f"{url}: cannot reach ({reason})") from None
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"{url}: expected s3://bucket/key")
        return _bucket(parts.netloc).get(parts.path.lstrip("/"))
    path = parts.path if parts.scheme == "file" else url
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise StorageError(f"{path}: no such file") from None
    except OSError as e:
        raise StorageError(f"{path}: cannot read ({e.strerror})") from None


def _read_within(response: Any, url: str, deadline: float, total: float) -> bytes:
    """The body of ``response``, read as it comes (``read1``), until ``deadline``."""
    chunks = []
    while chunk := response.read1(1 << 16):
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise StorageError(f"{url}: not read within {total:g} s (the server is too slow)")
    return b"".join(chunks)


def file_path(href: str) -> str:
    """The local path a ``file://`` URI names (RFC 8089: percent-encoded); any other href
    as it is.

    Example:
        >>> file_path("file:///data/a%20b.tif"), file_path("/data/c.tif")
        ('/data/a b.tif', '/data/c.tif')
    """
    return unquote(href.removeprefix("file://")) if href.startswith("file://") else href


def join_href(base: str, href: str) -> str:
    """Resolve a link ``href`` against the location of the document that holds it.

    Works for ``http(s)://``, ``s3://`` (which :func:`urllib.parse.urljoin` leaves alone, as it
    does every scheme it does not know) and local paths. For a local base the href is a URL
    path, so its percent-escapes are decoded into the file name they stand for.

    Example:
        >>> join_href("s3://b/stac/catalog.json", "sensors/catalog.json")
        's3://b/stac/sensors/catalog.json'
        >>> join_href("/data/stac/a/catalog.json", "../x%20y.json")
        '/data/stac/x y.json'
    """
    # Imports live at the top: this runs once per asset of every ingested item (25 for a
    # Sentinel-2 item), and a function-level ``from urllib.parse import`` cost 3 µs a call.
    if href.startswith(("http://", "https://", "s3://")):
        return href
    if href.startswith("file://"):
        return os.path.normpath(unquote(urlsplit(href).path))
    if _ABSOLUTE_URI.match(href) and not _DRIVE.match(href):
        # Any other absolute URI (gs://, abfs://, az://, ftp://, dbfs:/, urn:...) is kept as
        # written: the Planetary Computer publishes abfs:// assets, and RFC 3986 lets no
        # relative reference begin with "scheme:".
        return href
    parts = urlsplit(base)
    if parts.scheme in ("http", "https"):
        return urljoin(base, href)
    if parts.scheme == "s3":
        rel = urlsplit(href).path
        path = posixpath.normpath(posixpath.join(posixpath.dirname(parts.path), rel))
        return urlunsplit(("s3", parts.netloc, path, "", ""))
    local = unquote(parts.path) if parts.scheme == "file" else base
    target = unquote(urlsplit(href).path) if not os.path.isabs(href) else href
    return os.path.normpath(os.path.join(os.path.dirname(local), target))


def _bucket(name: str) -> ObjectStore:
    """The whole bucket ``name`` as a store, over the shared client."""
    return ObjectStore(shared_s3_client(name), f"s3://{name}")
