"""Built-in steps; importing this package registers them (see
:mod:`dafab_static.pipeline.registry`)."""

from dafab_static.pipeline.steps import (
    annotations,
    cloud,
    embeddings,
    indices,
    landcover,
    thumbnail,
)

__all__ = ["annotations", "cloud", "embeddings", "indices", "landcover", "thumbnail"]
