"""Built-in steps; importing this package registers them (see
:mod:`dafab_static.pipeline.registry`)."""

from dafab_static.pipeline.steps import embeddings, indices, thumbnail

__all__ = ["embeddings", "indices", "thumbnail"]
