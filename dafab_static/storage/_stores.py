"""Whole-object stores (:class:`FolderStore`, :class:`ObjectStore`), opened by URL.

Public names are re-exported by :mod:`dafab_static.storage`; see its docstring for the AWS
environment variables that configure ``s3://``.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from dafab_static import media_types
from dafab_static.errors import StorageError
from dafab_static.storage._s3 import s3_client, s3_settings, short_error

if TYPE_CHECKING:
    import pyarrow.fs

# O_BINARY: without it, Windows' C runtime writes "\n" as "\r\n" through a raw descriptor.
_WRITE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)

# Concurrent PUTs to an object store: S3 latency, not bandwidth, bounds small JSON writes.
_REMOTE_CONCURRENCY = 32


class Store(Protocol):
    """Whole-object storage: no directories, no partial writes, keys use ``/``."""

    url: str

    def put(
        self,
        path: str,
        data: bytes,
        *,
        cache_control: str | None = None,
        media_type: str | None = None,
    ) -> None:
        """Write one object, replacing any previous one.

        An object store also records the object's ``Content-Type`` (``media_type``, else
        from its suffix: :func:`dafab_static.media_types.of_path`) and ``cache_control``,
        which HTTP readers then receive as headers; a folder has no such metadata and
        ignores them. An Item's ``.json`` is ``application/geo+json``, as its links say.
        """

    def put_many(
        self, objects: Iterable[tuple[str, bytes]], *, media_type: str | None = None
    ) -> int:
        """Write many objects, concurrently where the backend gains from it; returns bytes."""

    def get(self, path: str) -> bytes:
        """Read one whole object; :class:`StorageError` when it is missing."""

    def exists(self, path: str) -> bool:
        """Whether an object exists at ``path``."""

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys below ``prefix``, relative to the store root."""

    def delete(self, paths: Iterable[str]) -> None:
        """Remove objects; missing ones are ignored."""


class FolderStore:
    """A local folder.

    Plain ``os.open``/``os.write`` rather than obstore's ``LocalStore``: obstore writes
    every object to a temporary file and renames it (measured here: 14k vs 25k small
    files/s), and that per-object atomicity is redundant because
    :mod:`dafab_static.publish` stages the whole tree in a fresh folder and swaps it in
    at once.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._root = str(self.root)
        self.url = self.root.as_uri()
        self._made: set[str] = set()

    def _check(self, path: str) -> str:
        # Lexical check, not Path.resolve(): resolving costs several lstat calls per object,
        # and every key we write is built from checked ids (layout.check_id).
        if path.startswith("/") or ".." in path.split("/") or "\\" in path:
            raise StorageError(f"{path}: resolves outside the destination {self.root}")
        return path

    def _path(self, path: str) -> Path:
        return self.root / self._check(path)

    def put(
        self,
        path: str,
        data: bytes,
        *,
        cache_control: str | None = None,
        media_type: str | None = None,
    ) -> None:
        # os.open/os.write on a joined string, not Path and open(): a build writes one small
        # file per item, and the Path and the buffered file object cost as much as the
        # system calls (10k files of 4 kB: 0.16-0.23 s against 0.34-0.43 s).
        target = f"{self._root}/{self._check(path)}"
        parent = target.rsplit("/", 1)[0]
        try:
            if parent not in self._made:
                os.makedirs(parent, exist_ok=True)
                self._made.add(parent)
            fd = os.open(target, _WRITE_FLAGS, 0o666)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as e:
            raise StorageError(f"{target}: cannot write ({e.strerror})") from e

    def put_many(
        self, objects: Iterable[tuple[str, bytes]], *, media_type: str | None = None
    ) -> int:
        # Sequential on purpose: local small-file creation is syscall-bound and measured
        # slower from a thread pool (10.5k vs 25k files/s on 2 cores).
        total = 0
        for path, data in objects:
            self.put(path, data)
            total += len(data)
        return total

    def get(self, path: str) -> bytes:
        target = self._path(path)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"{target}: no such file") from None
        except OSError as e:
            raise StorageError(f"{target}: cannot read ({e.strerror})") from e

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in sorted(filenames):
                yield Path(dirpath, name).relative_to(self.root).as_posix()

    def delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            self._path(path).unlink(missing_ok=True)

    def remove_tree(self) -> None:
        """Delete the whole folder (used to discard a staging area)."""
        shutil.rmtree(self.root, ignore_errors=True)


class ObjectStore:
    """Any obstore store (S3-compatible bucket, memory) under an optional key prefix."""

    def __init__(self, store: Any, url: str, prefix: str = "") -> None:
        self._store = store
        self.url = url.rstrip("/")
        self.prefix = prefix.strip("/")

    def _key(self, path: str) -> str:
        parts = path.split("/")
        if ".." in parts or path.startswith("/"):
            raise StorageError(f"{path}: resolves outside the destination {self.url}")
        return f"{self.prefix}/{path}" if self.prefix else path

    def put(
        self,
        path: str,
        data: bytes,
        *,
        cache_control: str | None = None,
        media_type: str | None = None,
    ) -> None:
        import obstore

        attributes = {"Content-Type": media_type or media_types.of_path(path)}
        if cache_control:
            attributes["Cache-Control"] = cache_control
        try:
            obstore.put(self._store, self._key(path), data, attributes=attributes)
        except Exception as e:  # obstore raises its own hierarchy; give the user one line
            raise StorageError(f"{self.url}/{path}: cannot write ({short_error(e)})") from e

    def put_many(
        self, objects: Iterable[tuple[str, bytes]], *, media_type: str | None = None
    ) -> int:
        objs = list(objects)
        with ThreadPoolExecutor(_REMOTE_CONCURRENCY) as pool:
            list(pool.map(lambda o: self.put(*o, media_type=media_type), objs))
        return sum(len(d) for _, d in objs)

    def get(self, path: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self._store, self._key(path)).bytes())
        except FileNotFoundError:
            raise StorageError(f"{self.url}/{path}: no such object") from None
        except Exception as e:
            raise StorageError(f"{self.url}/{path}: cannot read ({short_error(e)})") from e

    def exists(self, path: str) -> bool:
        import obstore

        try:
            obstore.head(self._store, self._key(path))
        except FileNotFoundError:
            return False
        except Exception as e:
            raise StorageError(f"{self.url}/{path}: cannot reach ({short_error(e)})") from e
        return True

    def list(self, prefix: str = "") -> Iterator[str]:
        import obstore

        full = self._key(prefix) if prefix else self.prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        try:
            for batch in obstore.list(self._store, prefix=full or None):
                for meta in batch:
                    yield str(meta["path"])[strip:]
        except Exception as e:
            raise StorageError(f"{self.url}/{prefix}: cannot list ({short_error(e)})") from e

    def delete(self, paths: Iterable[str]) -> None:
        import obstore

        keys = [self._key(p) for p in paths]
        for start in range(0, len(keys), 1000):
            try:
                obstore.delete(self._store, keys[start : start + 1000])
            except FileNotFoundError:
                pass
            except Exception as e:
                raise StorageError(f"{self.url}: cannot delete ({short_error(e)})") from e


def fresh_sibling(path: Path, *, folder: bool = False) -> Path:
    """Create a new, empty file (or ``folder``) beside ``path``, named ``.<name>.<random>``,
    to be renamed over ``path`` once it is complete.

    Unlike :mod:`tempfile`'s, which are private (0600/0700), it gets the permissions any new
    file gets here (the umask), or those of the file it will replace, since it will be that
    file: a search result or a pipeline run shared on a cluster stays readable.

    Raises:
        OSError: when it cannot be created.
    """
    while True:
        candidate = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
        try:
            if folder:
                candidate.mkdir()
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        if path.is_file() and not folder:
            shutil.copymode(path, candidate)
        return candidate


def folder_problem(folder: Path, error: OSError) -> str:
    """Why ``folder`` could not be created, in words: names the file standing in its way,
    which ``mkdir`` reports only as "File exists" or "Not a directory"."""
    for place in (folder, *folder.parents):
        if os.path.exists(place):  # os.path: Path.exists raises on a name too long
            return f"{place} is a file, not a folder" if not place.is_dir() else str(error.strerror)
    return str(error.strerror)


def open_store(url: str) -> ObjectStore | FolderStore:
    """Open a destination or source: a local folder, ``file://``, ``s3://bucket/prefix``, or
    ``memory://`` (an in-process store for tests).

    Raises:
        StorageError: for an unsupported scheme or a malformed bucket URL.

    Example:
        >>> store = open_store("memory://")
        >>> store.put("a/b.json", b"{}")
        >>> list(store.list())
        ['a/b.json']
    """
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and os.name == "nt"):
        return FolderStore(parts.path if parts.scheme == "file" else url)
    if parts.scheme == "memory":
        from obstore.store import MemoryStore

        return ObjectStore(MemoryStore(), "memory://")
    if parts.scheme == "s3":
        if not parts.netloc:
            raise StorageError(f"{url}: expected s3://bucket/prefix")
        if "#" in url or "?" in url:
            # A URL reads them as a fragment or a query: the catalog went to the prefix before
            # them, over whatever was there, and no reader finds it at the URL given.
            raise StorageError(
                f"{url}: '#' and '?' cannot be in an S3 destination (a URL reads them as a "
                "fragment or a query); choose a prefix without them"
            )
        return ObjectStore(s3_client(parts.netloc), url, parts.path.strip("/"))
    raise StorageError(f"{url}: unsupported destination (use a folder or s3://bucket/prefix)")


def arrow_filesystem(url: str) -> tuple[pyarrow.fs.FileSystem, str]:
    """The pyarrow filesystem and path for ``url``, configured like :func:`open_store`.

    Example:
        >>> fs, path = arrow_filesystem("/tmp")
        >>> path
        '/tmp'
    """
    import pyarrow.fs as pafs

    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return pafs.LocalFileSystem(), parts.path if parts.scheme == "file" else url
    if parts.scheme == "s3":
        config, _ = s3_settings()
        endpoint = str(config.get("endpoint", ""))
        kwargs: dict[str, Any] = {"region": config["region"]}
        if endpoint:
            split = urlsplit(endpoint)
            kwargs["endpoint_override"] = split.netloc
            kwargs["scheme"] = split.scheme or "https"
        if os.environ.get("AWS_ACCESS_KEY_ID"):
            kwargs["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
            kwargs["secret_key"] = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
            if os.environ.get("AWS_SESSION_TOKEN"):
                kwargs["session_token"] = os.environ["AWS_SESSION_TOKEN"]
        return pafs.S3FileSystem(**kwargs), f"{parts.netloc}{parts.path}".rstrip("/")
    raise StorageError(f"{url}: unsupported location for Parquet (use a folder or s3://)")
