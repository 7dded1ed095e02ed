"""What a build did, for people (``summary``) and machines (``to_dict``, ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuildReport:
    """What a build did: counts, sizes, time and every problem met."""

    dest: str
    items: int = 0
    collections: dict[str, int] = field(default_factory=dict)
    partitions: int = 0
    objects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    published: bool = False
    #: A :class:`dafab_static.pipeline.PipelineReport` when the build ran a pipeline.
    pipeline: Any = None

    @property
    def ok(self) -> bool:
        """True when the catalog was published and no input was skipped."""
        return self.published and not self.skipped and not (self.pipeline and self.pipeline.failed)

    def summary(self) -> str:
        """A few human lines: what was built, how big, how long, what went wrong."""
        state = "published" if self.published else "NOT published"
        lines = [
            f"{state} {self.dest}: {counted(self.items, 'item')} in "
            f"{counted(len(self.collections), 'collection')}, "
            f"{counted(self.partitions, 'index partition')}, {counted(self.objects, 'object')}, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.1f} s",
        ]
        lines += [f"  {cid}: {counted(n, 'item')}" for cid, n in sorted(self.collections.items())]
        if self.pipeline is not None:
            lines.append(self.pipeline.summary())
        if self.warnings:
            lines.append(f"{counted(len(self.warnings), 'warning')}:")
            lines += [f"  warning: {w}" for w in self.warnings[:20]]
        if self.skipped:
            lines.append(f"{counted(len(self.skipped), 'input')} skipped:")
            lines += [f"  skipped: {s}" for s in self.skipped[:50]]
            if len(self.skipped) > 50:
                lines.append(f"  ... and {len(self.skipped) - 50} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable summary (``--json``)."""
        return {
            "dest": self.dest, "published": self.published, "ok": self.ok,
            "items": self.items, "collections": dict(sorted(self.collections.items())),
            "partitions": self.partitions, "objects": self.objects, "bytes": self.bytes,
            "seconds": round(self.seconds, 3), "skipped": self.skipped, "warnings": self.warnings,
            **({"pipeline": self.pipeline.to_dict()} if self.pipeline is not None else {}),
        }  # fmt: skip


def counted(n: int, noun: str) -> str:
    """``1 item``, ``2 items``: a count with its noun, for summaries."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def nothing_found(sources: list[str], skipped: list[str], *, valid: bool = False) -> str:
    """The one line of a build or pipeline run that found no (``valid``) item: with why,
    since no summary follows it."""
    where = ", ".join(sources) if sources else "no sources"
    found = (
        f"no STAC item of {where} passes validation" if valid else f"no STAC items found in {where}"
    )
    if not skipped:
        return found
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"{found}; {counted(len(skipped), 'input')} skipped: {'; '.join(skipped[:3])}{more}"
