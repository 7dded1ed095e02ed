"""dafab-static: a unified, serverless Earth-observation metadata catalog.

Rasters and other hubs' STAC items become one static STAC tree plus stac-geoparquet
indexes, in a folder or an S3-compatible bucket.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
