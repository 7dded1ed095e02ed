"""``dafab-static pipeline``: run metadata recipes without building a catalog."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from dafab_static import _cli_console
from dafab_static._cli_console import DEVICE, PUBLISHING, console, err, fail, progress_bars, say
from dafab_static.errors import DafabError, OptionError

pipeline_app = typer.Typer(
    help="Run metadata pipelines (torch recipes) without building a catalog.",
    no_args_is_help=True,
)


@pipeline_app.command("run")
def pipeline_run(
    recipe: Annotated[
        str,
        typer.Argument(
            metavar="RECIPE", help="Recipe: a TOML file, or a shipped recipe's name (default...)."
        ),
    ],
    sources: Annotated[
        list[str],
        typer.Argument(metavar="SOURCE", help="Rasters, STAC files, folders, globs or URLs."),
    ],
    out: Annotated[
        str,
        typer.Option(
            "--out", "-o", help="New or empty output folder.", callback=_cli_console.expand_home
        ),
    ] = "",
    device: Annotated[str | None, DEVICE] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Readers working ahead (0: read inline).")
    ] = None,
    when: Annotated[
        str | None,
        typer.Option("--datetime", help="Datetime for rasters that carry none (ISO 8601)."),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first failure.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no summary.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run a recipe over the scenes of SOURCES; write out/items.ndjson and out/assets/."""
    from dafab_static.options import parse_datetime
    from dafab_static.pipeline import run

    PUBLISHING.append(True)
    try:
        if not out:
            raise OptionError("--out is required (a new or empty folder)")
        with progress_bars(not quiet and not as_json and err.is_terminal) as progress:
            report = run(recipe, sources, out, device=device, workers=workers, strict=strict,
                         datetime=parse_datetime(when) if when else None,
                         progress=progress)  # fmt: skip
    except DafabError as e:
        fail(e, as_json={} if as_json else None)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    elif not quiet:
        say(report.summary())
    if report.failed or report.skipped:
        raise typer.Exit(2)


@pipeline_app.command("steps")
def pipeline_steps() -> None:
    """List the steps recipes can use: built-in and installed plugins."""
    from dafab_static.pipeline import available_steps

    for name in available_steps():
        typer.echo(name)


@pipeline_app.command("recipes")
def pipeline_recipes() -> None:
    """List the recipes shipped with dafab-static: give the name to --pipeline or to run."""
    from dafab_static.pipeline import shipped_recipes

    for name, path in shipped_recipes().items():
        typer.echo(f"{name}\t{path}")
