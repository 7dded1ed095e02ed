"""Torch pipelines: recipes of steps that derive metadata from each scene's pixels.

A recipe (TOML, see ``pipelines/``) lists steps by name; each step takes a batch of raster
windows with their item and returns properties, assets, or both. ``dafab-static build
--pipeline`` runs a recipe between reading the sources and writing the catalog;
``dafab-static pipeline run`` runs it alone.
"""

from dafab_static.pipeline.device import choose_device
from dafab_static.pipeline.folder import run
from dafab_static.pipeline.recipe import (
    Execution,
    Recipe,
    StepSpec,
    load_recipe,
    parse_recipe,
    shipped_recipes,
)
from dafab_static.pipeline.registry import Step, available_steps, register_step
from dafab_static.pipeline.report import PipelineReport
from dafab_static.pipeline.runner import Pipeline, run_pipeline
from dafab_static.pipeline.windows import Asset, StepOutput, Windows

__all__ = [
    "Asset",
    "Execution",
    "Pipeline",
    "PipelineReport",
    "Recipe",
    "Step",
    "StepOutput",
    "StepSpec",
    "Windows",
    "available_steps",
    "choose_device",
    "load_recipe",
    "parse_recipe",
    "register_step",
    "run",
    "run_pipeline",
    "shipped_recipes",
]
