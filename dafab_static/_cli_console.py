"""What every ``dafab-static`` command prints with: the consoles, the one-line error, plain
messages, and the progress bars."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from dafab_static.errors import DafabError

console = Console()
err = Console(stderr=True)
#: Set by the commands that publish (build, pipeline run), so an interrupt can say that
#: nothing was; other commands are just stopped.
PUBLISHING: list[bool] = []


def expand_home(value: Any) -> Any:
    """A Typer callback for path options: ``~`` and ``~user`` expanded as the shell would.

    The shell leaves ``--out=~/cat`` alone (the ``~`` does not start a word), and a
    folder named ``~`` was built in the working directory, one ``rm -rf ~`` away from
    losing a home."""
    if isinstance(value, str):
        return os.path.expanduser(value) if value.startswith("~") else value
    if isinstance(value, list):
        return [expand_home(v) for v in value]
    return value


def fail(error: DafabError, *, as_json: dict[str, Any] | None = None) -> NoReturn:
    """Print ``error`` as one line on stderr and exit with code 1; with ``as_json`` (the
    failed command's ``--json`` answer, less the error), say it on stdout too, for scripts
    that read only stdout."""
    if as_json is not None:
        console.print_json(json.dumps({**as_json, "ok": False, "error": str(error)}))
    # The message is text, never markup: paths and messages hold brackets ("no [[steps]]",
    # a folder "b[/x]") that rich would eat or fail on.
    err.print(
        Text.assemble(("error:", "bold red"), " ", str(error)), highlight=False, soft_wrap=True
    )
    raise typer.Exit(1)


def say(text: str, *, to: Console = console) -> None:
    """Print a summary or a message as plain text (no markup, no highlighting)."""
    to.print(text, markup=False, highlight=False, soft_wrap=True)


DEVICE = typer.Option(
    "--device", help="Torch device for pipelines: auto (cuda, then mps, then cpu), cpu, cuda..."
)


@contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int, int | None], None]]:
    """A ``progress(stage, done, total)`` function drawing bars on stderr, or doing nothing."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    bars = Progress(
        SpinnerColumn(), TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=err, transient=True,
    )  # fmt: skip
    tasks: dict[str, Any] = {}
    labels = {"read": "reading", "write": "writing"}

    def update(stage: str, done: int, total: int | None) -> None:
        if stage not in tasks:
            tasks[stage] = bars.add_task(labels.get(stage, stage), total=total)
        bars.update(tasks[stage], completed=done, total=total)

    with bars:
        yield update
