"""The one place that reads the clock: the time a build or a pipeline run records."""

from __future__ import annotations

import datetime as _dt
import os


def now() -> str:
    """Now in UTC as ``YYYY-MM-DDTHH:MM:SSZ``, or ``SOURCE_DATE_EPOCH`` when set, so that a
    rebuild of the same inputs gives the same bytes (reproducible-builds.org).

    Example:
        >>> len(now())
        20
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
        if epoch and epoch.isdigit()
        else _dt.datetime.now(_dt.timezone.utc)
    )
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
