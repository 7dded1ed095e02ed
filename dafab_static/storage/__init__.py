"""The only door to a local folder, an S3-compatible bucket or a web server.

:func:`open_store` turns a destination URL into a :class:`Store`; every writer in the package
(`tree`, `index`, `publish`) talks to that interface and never to a filesystem API directly.
:func:`arrow_filesystem` gives pyarrow the same location for Parquet scans, :func:`read_url`
reads one whole document, and :func:`open_input` gives pyarrow a file whose reads become HTTP
range requests, counted in :class:`IOStats`, so a search fetches only the Parquet footer and
the column chunks it needs.

Endpoint and credentials for ``s3://`` come the usual AWS way: ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_REGION`` and, when
boto3 is installed, ``AWS_PROFILE`` (credentials and ``endpoint_url`` from ``~/.aws``).
"""

from dafab_static.storage._ranges import ChangedObject, InputFile, IOStats, open_input
from dafab_static.storage._stores import (
    FolderStore,
    ObjectStore,
    Store,
    arrow_filesystem,
    folder_problem,
    fresh_sibling,
    open_store,
)
from dafab_static.storage._urls import file_path, join_href, read_url

__all__ = [
    "ChangedObject",
    "FolderStore",
    "IOStats",
    "InputFile",
    "ObjectStore",
    "Store",
    "arrow_filesystem",
    "file_path",
    "folder_problem",
    "fresh_sibling",
    "join_href",
    "open_input",
    "open_store",
    "read_url",
]
