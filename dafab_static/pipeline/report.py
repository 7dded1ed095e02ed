"""What a pipeline run did: scenes, failures, notes, time per step; for people and ``--json``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dafab_static.report import counted


@dataclass
class PipelineReport:
    """What a pipeline run did: scenes, failures, notes and where the time went."""

    recipe: str
    device: str
    scenes: int = 0
    processed: int = 0
    failed: list[str] = field(default_factory=list)
    #: Inputs that held no scene to run on (not STAC, unreadable), one line each.
    skipped: list[str] = field(default_factory=list)
    notes: Counter[str] = field(default_factory=Counter)
    #: The first item each note was about, so a summary can name one.
    noted: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    read_seconds: float = 0.0
    bytes_read: int = 0
    step_seconds: dict[str, float] = field(default_factory=dict)

    def note(self, message: str, item: Mapping[str, Any] | None = None) -> None:
        """Count one scene (``item``) that ``message`` is about."""
        self.notes[message] += 1
        if item is not None:
            self.noted.setdefault(message, str(item.get("id")))

    def summary(self) -> str:
        """A few lines for people."""
        rate = self.processed / self.seconds if self.seconds else 0.0
        lines = [
            f"pipeline {self.recipe} on {self.device}: {self.processed}/{self.scenes} scenes "
            f"in {self.seconds:.1f} s ({rate:.2f} scenes/s, read {self.bytes_read / 1e6:.1f} MB)"
        ]
        if self.step_seconds:
            lines.append("  time per step: " + ", ".join(
                f"{k} {v:.2f} s" for k, v in self.step_seconds.items()))  # fmt: skip
        for note, count in sorted(self.notes.items()):
            example = f", e.g. {self.noted[note]}" if note in self.noted else ""
            lines.append(f"  note: {note} ({counted(count, 'scene')}{example})")
        if self.skipped:
            lines.append(f"  {counted(len(self.skipped), 'input')} skipped:")
            lines += [f"  skipped: {f}" for f in self.skipped[:50]]
        if self.failed:
            lines.append(f"  {counted(len(self.failed), 'scene')} failed:")
            lines += [f"  failed: {f}" for f in self.failed[:50]]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Machine-readable form (``--json``)."""
        return {
            "ok": not self.failed and not self.skipped,
            "recipe": self.recipe, "device": self.device, "scenes": self.scenes,
            "processed": self.processed, "failed": self.failed, "skipped": self.skipped,
            "notes": dict(self.notes), "note_examples": dict(self.noted),
            "seconds": round(self.seconds, 3), "read_seconds": round(self.read_seconds, 3),
            "bytes_read": self.bytes_read,
            "step_seconds": {k: round(v, 4) for k, v in self.step_seconds.items()},
        }  # fmt: skip
