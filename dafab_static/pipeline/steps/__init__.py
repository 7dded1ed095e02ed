"""Built-in steps; importing this package registers them (see
:mod:`dafab_static.pipeline.registry`)."""

from dafab_static.pipeline.steps import indices, thumbnail

__all__ = ["indices", "thumbnail"]
