"""Atomic publish: a reader sees the old catalog or the new one, never a mixture.

Two mechanisms behind one :class:`Release` interface, because folders and buckets offer
different atomic primitives:

* **Folder.** The build writes a fresh sibling folder ``.<name>.staging-<pid>-<token>``;
  :meth:`Release.commit` swaps it with the destination in one ``renameat2(RENAME_EXCHANGE)``
  system call (Linux), so the destination path never disappears and paths stay stable. Where
  that call is missing, two renames leave a window of microseconds with no folder at all,
  never a mixed one. A killed build leaves only the staging folder, which the next build
  removes.
* **Bucket.** S3 has no rename and no multi-object transaction; its one atomic primitive is
  a single PUT. So every build writes its tree under a new ``releases/<id>/`` prefix and
  :meth:`Release.commit` finally PUTs the root ``catalog.json``, whose child links point into
  that prefix. A crawler that fetched the previous root keeps reading a complete previous
  release: the previous release is kept, and older ones are deleted; a release that no root
  has named yet is another build's in progress, and is left alone (see _stale_releases).

The writers place objects with :meth:`Release.locate`, which maps a layout path (such as
``sensors/catalog.json``) to the key the object gets in this release.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import hashlib
import os
import re
import secrets
import shutil
import time
from pathlib import Path

import orjson

from dafab_static import _processes, _stop
from dafab_static.errors import StorageError
from dafab_static.layout import RELEASE_MARKER as MARKER
from dafab_static.layout import ROOT
from dafab_static.storage import FolderStore, ObjectStore, folder_problem, open_store

_RELEASE_ID = re.compile(r"[0-9a-f]{12}")
_OUR_RELEASE_KEY = re.compile(rf"releases/{_RELEASE_ID.pattern}/")
#: 2024-01-01: no release id of this scheme starts before.
_FIRST_RELEASE_S = 1704067200
_RENAME_EXCHANGE = 2
#: ``Cache-Control`` of the objects a build replaces in place (the root and the marker).
REVALIDATE = "no-cache"
_AT_FDCWD = -100


class Release:
    """One build's output, invisible to readers until :meth:`commit`."""

    def __init__(self, dest: str, *, release_id: str | None = None) -> None:
        self.dest = dest
        #: What could not be cleaned up (a folder this user may not delete): for the report.
        self.leftovers: list[str] = []
        #: Whether the commit point was passed: the release is then the published catalog.
        self.committed = False
        #: Folders above a local DEST this build creates: a failed one removes them again.
        self._created: list[Path] = []
        # 12 hex digits: the start time (8, seconds) and 4 random ones; see _stale_releases.
        self.id = release_id or f"{int(time.time()) & 0xFFFFFFFF:08x}{secrets.token_hex(2)}"
        target = open_store(dest)
        self.store: FolderStore | ObjectStore
        #: The destination folder, for a local destination (a build never reads it).
        self.folder = target.root if isinstance(target, FolderStore) else None
        if isinstance(target, FolderStore):
            try:
                _refuse_foreign_folder(target.root)
                self.leftovers += _remove_stale_staging(target.root)
            except StorageError:
                raise  # an OSError too, and already one line
            except OSError as e:  # a name too long, a parent that is a file...
                raise StorageError(
                    f"{dest}: cannot create the catalog there ({folder_problem(target.root, e)})"
                ) from e
            staging = target.root.parent / f"{_staging_prefix(target.root)}{os.getpid()}-{self.id}"
            self._created = _missing_folders(target.root.parent)
            try:  # now, so that an unwritable destination fails before any work is done
                staging.mkdir(parents=True)
            except OSError as e:
                raise StorageError(
                    f"{dest}: cannot create the catalog there ({folder_problem(staging, e)})"
                ) from e
            self.store = FolderStore(staging)
            self.body_prefix = ""
        else:
            _refuse_foreign_prefix(target)
            self.store = target
            self.body_prefix = f"releases/{self.id}/"

    def locate(self, path: str) -> str:
        """Key of the layout path ``path`` in this release (the root stays at the top)."""
        return path if path in (ROOT, MARKER) else self.body_prefix + path

    def commit(self, root: bytes, marker: dict[str, object]) -> None:
        """Make the release visible atomically.

        Args:
            root: The root ``catalog.json``: writing it is the commit point on a bucket.
            marker: What was built, kept in :data:`MARKER` beside the root.

        Raises:
            KeyboardInterrupt: when the program was asked to stop (:mod:`._stop`).
        """
        _stop.check()
        if isinstance(self.store, FolderStore):
            self.store.put(ROOT, root)
            self.store.put(MARKER, _dumps({**marker, **_listing(self.store.root)}))
            self.leftovers += _swap_into_place(self.store.root, Path(self.dest).resolve())
            self.committed = True
            return
        previous = _read_marker(self.store)
        live = str(previous.get("release", ""))
        # The commit point: one atomic PUT. The root is the one object a later build
        # replaces, and a cache (a CDN, a browser) that kept an old root past the next two
        # builds would lead readers to a deleted release: caches must revalidate it.
        self.store.put(ROOT, root, cache_control=REVALIDATE)
        self.committed = True
        self.store.put(MARKER, _dumps({**marker, "release": self.id,
                                       "retired": [live] if live else []}),
                       cache_control=REVALIDATE)  # fmt: skip
        try:  # published already: cleaning up is best effort, and the next build retries
            self.store.delete(_stale_releases(self.store, previous, keep={self.id, live}))
        except StorageError as e:
            self.leftovers.append(f"older releases were not deleted ({e}); the next build will")

    def abort(self) -> None:
        """Discard everything this release wrote; the published catalog is untouched.
        Once committed, the release is the published catalog: nothing is discarded."""
        if self.committed:
            return
        if isinstance(self.store, FolderStore):
            self.store.remove_tree()
            for folder in self._created:  # nearest first; only while empty
                with contextlib.suppress(OSError):
                    folder.rmdir()
        else:
            self.store.delete(list(self.store.list(f"releases/{self.id}/")))


#: A release that no root ever named, started this long ago, was left by a killed build.
ABANDONED_AFTER_S = 24 * 3600


def _stale_releases(
    store: ObjectStore, previous: dict[str, object], *, keep: set[str]
) -> list[str]:
    """Keys of the releases a commit may delete from a bucket.

    The one being committed and the one it replaces stay (a reader may still be crawling
    the previous root). A release that was replaced before that (``retired`` in the marker)
    goes: no root names it. A release that no root ever named is another build's, in
    progress, unless it started more than :data:`ABANDONED_AFTER_S` ago (its id begins with
    its start time): deleting every unnamed release, as one did, deleted a concurrent
    build's release under it, and its root then named a release that was gone.
    """
    retired = previous.get("retired")
    retired_ids = {str(r) for r in retired} if isinstance(retired, list) else set()
    now = time.time()
    stale = []
    for key in store.list("releases/"):
        release = key.split("/")[1]
        if not _RELEASE_ID.fullmatch(release) or release in keep:
            continue
        started = int(release[:8], 16)
        plausible = _FIRST_RELEASE_S <= started <= now + 3600  # older ids were all random
        if release in retired_ids or not plausible or now - started > ABANDONED_AFTER_S:
            stale.append(key)
    return stale


def _dumps(marker: dict[str, object]) -> bytes:
    return orjson.dumps(marker, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _refuse_foreign_prefix(store: ObjectStore) -> None:
    """Never publish over a bucket prefix holding objects this tool did not write. Objects
    under ``releases/<id>/`` alone, with no marker, are a first build's that was killed."""
    if store.exists(MARKER):
        return
    if any(not _OUR_RELEASE_KEY.match(key) for key in store.list()):
        raise StorageError(
            f"{store.url}: prefix is not empty and was not published by dafab-static; "
            "choose a new or empty prefix"
        )


def _read_marker(store: FolderStore | ObjectStore) -> dict[str, object]:
    try:
        value = orjson.loads(store.get(MARKER))
    except (StorageError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def _refuse_foreign_folder(root: Path) -> None:
    """Never swap away a folder this tool did not publish, or one the user added files to
    since: a rebuild deleted a ``.git`` and notes put into the catalog, without a word, and
    any folder holding a file named like the marker."""
    if root.exists() and not root.is_dir():
        raise StorageError(f"{root}: exists and is not a folder")
    if not root.is_dir() or not any(root.iterdir()):
        return
    marker = _read_marker(FolderStore(root)) if (root / MARKER).is_file() else None
    if marker is None or not str(marker.get("generator", "")).startswith("dafab-static"):
        raise StorageError(
            f"{root}: folder is not empty and was not published by dafab-static; "
            "choose a new or empty folder"
        )
    if "listing" not in marker:
        return  # published before listings were recorded
    now = _listing(root)
    if now != {"files": marker.get("files"), "listing": marker["listing"]}:
        raise StorageError(
            f"{root}: holds {now['files']} files where the last build wrote "
            f"{marker.get('files')}: files were added, removed or renamed since, and a build "
            "replaces the whole folder; move them out, or choose another folder"
        )


def _listing(root: Path) -> dict[str, object]:
    """The files under ``root`` but the marker: their count and a digest of their paths.
    Recorded in the marker, it lets the next build see whether the folder is still only
    what this one wrote (a listing: 30 ms for a 10k-item catalog)."""
    paths = sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
    )
    paths = [p for p in paths if p != MARKER]
    digest = hashlib.sha256("\0".join(paths).encode("utf-8", "surrogateescape")).hexdigest()
    return {"files": len(paths), "listing": digest}


#: Longest destination name kept whole in its staging folder's name: the staging name adds
#: up to 40 characters, and a file name holds 255 bytes (a 230-character DEST failed).
_NAME_KEPT = 180


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, nearest first: what
    ``mkdir(parents=True)`` creates, and a build that fails leaves behind (`--out a/b/cat`
    left a/ and a/b/ after "nothing was published")."""
    missing = []
    for place in (folder, *folder.parents):
        if os.path.exists(place):
            break
        missing.append(place)
    return missing


def _staging_prefix(root: Path) -> str:
    """``.<name>.staging-``, the start of the name of ``root``'s staging folders; a long
    name is cut and a digest of it added, so that it stays one destination's."""
    name = root.name
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > _NAME_KEPT:
        name = raw[:100].decode("utf-8", "ignore") + "~" + hashlib.sha256(raw).hexdigest()[:12]
    return f".{name}.staging-"


def _remove_stale_staging(root: Path) -> list[str]:
    """Delete staging folders left by builds that were killed (their process is gone);
    return a line for each that could not be deleted."""
    # Exactly ours: a name with [, * or ? is not a pattern, and "a" does not own the
    # staging of a destination called "a.staging-x".
    prefix = _staging_prefix(root)
    mine = re.compile(rf"{re.escape(prefix)}(\d+)-[0-9a-f]{{12}}")
    leftovers = []
    for stale in root.parent.glob(f"{glob.escape(prefix)}*"):
        match = mine.fullmatch(stale.name)
        if match and not _processes.alive(int(match[1])):
            leftovers += _remove(stale, "a killed build's staging folder")
    return leftovers


def _swap_into_place(staging: Path, final: Path) -> list[str]:
    """Put ``staging`` where ``final`` is and delete the previous catalog; return a line if
    that could not be deleted."""
    if not final.exists():
        staging.rename(final)
        return []
    if _exchange(staging, final):
        return _remove(staging, "the previous catalog")  # the exchange put it there
    old = final.parent / f"{_staging_prefix(final)}old-{os.getpid()}"
    final.rename(old)
    staging.rename(final)
    return _remove(old, "the previous catalog")


def _remove(folder: Path, what: str) -> list[str]:
    """Delete ``folder``; a folder this user may not delete is reported, not hidden: it
    stayed behind as hidden debris beside the catalog, build after build."""
    try:
        shutil.rmtree(folder)
        return []
    except FileNotFoundError:
        return []
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)  # what can go, goes
        if not folder.exists():
            return []
        return [f"{folder}: {what} is left there ({e.strerror or e}); delete it by hand"]


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths with Linux ``renameat2``; False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    with contextlib.suppress(Exception):
        rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if rc == 0:
            return True
    return False
