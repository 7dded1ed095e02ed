"""Open local paths and ``http(s)://`` URLs as bytes, with one-line errors.

Sources and the documents a catalog links to live in local folders or behind plain HTTP;
anything else (``s3://``) is refused with a message. A missing file or an HTTP 4xx is the
input's fault (:class:`InputError`); a server that cannot be reached is a
:class:`StorageError`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from typing import IO, Any
from urllib.parse import quote, urlsplit

import orjson

from dafab_static.errors import InputError, StorageError
from dafab_static.storage import join_href

HTTP_TIMEOUT_S = 30.0

SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_READ_ERRORS = (OSError, http.client.HTTPException)


def is_url(source: str) -> bool:
    """Whether ``source`` is an ``http(s)://`` URL (everything else is a local path)."""
    return source.startswith(("http://", "https://"))


def location(source: str) -> str:
    """The absolute location of a source: a URL as is, a ``file://`` URL or path made absolute.

    Example:
        >>> location("file:///data/a.json")
        '/data/a.json'
    """
    if is_url(source):
        return source
    if source.startswith("file://"):
        return urllib.request.url2pathname(urlsplit(source).path)
    if SCHEME.match(source) and not os.path.splitdrive(source)[0]:
        return source  # s3:// and the like: refused by open_bytes with a clear message
    return os.path.abspath(source)


def absolute(href: str, base: str) -> str:
    """Resolve ``href`` against the location of the document that holds it.

    Example:
        >>> absolute("../b/c.tif", "https://x.org/a/item.json")
        'https://x.org/b/c.tif'
    """
    return join_href(base, href)


def open_bytes(loc: str) -> IO[bytes]:
    """Open a location for reading.

    Raises:
        InputError: no such file, unreadable file, HTTP 4xx, unsupported scheme.
        StorageError: the server cannot be reached, times out or answers 5xx.
    """
    if is_url(loc):
        try:
            response: IO[bytes] = urllib.request.urlopen(_requestable(loc), timeout=HTTP_TIMEOUT_S)
        except http.client.InvalidURL as error:  # the link is wrong, not the server
            raise InputError(f"{loc}: not a valid URL ({error})") from None
        except urllib.error.HTTPError as error:
            error.close()
            if 400 <= error.code < 500:  # the server answered: the link or URL is wrong
                raise InputError(f"{loc}: HTTP {error.code} {error.reason}") from None
            raise StorageError(f"{loc}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, *_READ_ERRORS) as error:
            raise read_failed(loc, error) from None
        return response
    if SCHEME.match(loc):
        raise InputError(f"{loc}: only local files and http(s) URLs can be read")
    try:
        return open(loc, "rb")
    except FileNotFoundError:
        raise InputError(f"{loc}: no such file") from None
    except OSError as error:
        raise InputError(f"{loc}: cannot read: {error.strerror}") from None


def _requestable(url: str) -> str:
    """``url`` with the characters a request line cannot hold percent-encoded, as a browser
    does: pystac writes a link to item ``scene A`` as ``./scene A/scene A.json``, and such a
    link over HTTP aborted the whole build ("URL can't contain control characters").
    Escapes already there stay as they are."""
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~")


def read_failed(loc: str, error: Exception) -> InputError | StorageError:
    """The one-line error for a read of ``loc`` that failed with ``error``."""
    reason = getattr(error, "reason", None) or error
    text = " ".join(str(reason).split()) or type(error).__name__
    if is_url(loc):
        return StorageError(f"{loc}: cannot reach: {text}")
    return InputError(f"{loc}: {text}")


def readline(stream: IO[bytes], loc: str) -> bytes:
    """One line of ``stream``; a broken connection becomes :func:`read_failed`'s error."""
    try:
        return stream.readline()
    except _READ_ERRORS as error:
        raise read_failed(loc, error) from None


def load_json(loc: str) -> Any:
    """Read and parse one JSON document.

    Raises:
        InputError: as :func:`open_bytes`, or the bytes are not JSON.
        StorageError: as :func:`open_bytes`.
    """
    with open_bytes(loc) as stream:
        try:
            raw = stream.read()
        except _READ_ERRORS as error:
            raise read_failed(loc, error) from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InputError(f"{loc}: invalid JSON: {error}") from None


def seekable(loc: str, stack: contextlib.ExitStack) -> Any:
    """A seekable file for Parquet: the local path, or a URL spooled to disk (never memory)."""
    if not is_url(loc):
        if not os.path.isfile(loc):
            raise InputError(f"{loc}: no such file")
        return loc
    spool = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by the stack)
    with open_bytes(loc) as response:
        try:
            shutil.copyfileobj(response, spool, 1 << 20)
        except _READ_ERRORS as error:
            raise read_failed(loc, error) from None
    spool.seek(0)
    return spool
