"""What both phases of a build share: options, release, report, spool, and the Collections
the sources gave. Phase 1 is :mod:`dafab_static.intake`, phase 2 :mod:`dafab_static.assembly`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dafab_static.errors import DafabError
from dafab_static.options import BuildOptions
from dafab_static.publish import Release
from dafab_static.report import BuildReport
from dafab_static.spool import Spool

ProgressFn = Callable[[str, int, int | None], None]


@dataclass
class BuildRun:
    """One build's state across both phases."""

    opts: BuildOptions
    release: Release
    report: BuildReport
    spool: Spool
    progress: ProgressFn
    #: Collections read from the sources (``--collection-json`` first), by id.
    given: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Where each given Collection was read, for messages.
    given_from: dict[str, str] = field(default_factory=dict)
    #: Local data files (absolute paths) of the items read in this process, rasters above
    #: all, and where each item is filed: (collection, id, (year, month), "DD/HH"). A
    #: ``derived_from`` link to such a file is pointed at its item, as STAC wants: see
    #: ``Assembly.source_items``.
    data_files: dict[str, tuple[str, str, tuple[int, int], str]] = field(default_factory=dict)

    def problem(self, error: DafabError) -> None:
        """Skip a bad input and report it, or stop the build with ``--strict``."""
        if self.opts.strict:
            raise error
        self.report.skipped.append(str(error))

    def notice(self, message: str) -> None:
        self.report.warnings.append(message)

    def put(self, path: str, data: bytes, *, media_type: str | None = None) -> None:
        """Store one object of the release at layout path ``path``, and count it."""
        self.release.store.put(self.release.locate(path), data, media_type=media_type)
        self.report.objects += 1
        self.report.bytes += len(data)
