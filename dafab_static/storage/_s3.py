"""S3 configuration the usual AWS way, and the obstore clients built from it.

Shared by the whole-object stores (:mod:`._stores`), the range reader (:mod:`._ranges`) and
pyarrow's S3 filesystem, so every door to a bucket sees the same endpoint and credentials.
"""

from __future__ import annotations

import functools
import os
import re
from typing import TYPE_CHECKING, Any

from dafab_static.errors import StorageError

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

#: Where obstore asks for credentials last: off EC2 it cannot answer.
_METADATA_SERVICE = "169.254.169.254"


def short_error(error: Exception) -> str:
    """First line of an obstore error, which otherwise spans a page of debug output; when
    the credential chain ended at the EC2 instance metadata service (so no key was found
    anywhere else), what to set instead.

    Example:
        >>> short_error(OSError("Generic S3 error: PUT http://169.254.169.254/latest/api/token"))
        'no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE'
    """
    text = str(error).strip()
    if _METADATA_SERVICE in text:
        return (
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "or AWS_PROFILE"
        )
    if "<Code>NoSuchBucket</Code>" in text:
        return "no such bucket (NoSuchBucket)"
    first = text.splitlines()[0][:200] if text else type(error).__name__
    code = re.search(r"<Code>(\w+)</Code>", text)  # S3's XML error body, after the first line
    return f"{first.rstrip(': <')} ({code[1]})" if code else first


def client_options(url: str) -> ClientConfig:
    """obstore client options for an endpoint or origin ``url``: plain HTTP allowed where
    the URL says so, and time limits that fail a silent server in well under a minute.

    obstore's defaults retry a request that never answers for up to 180 s, 30 s at a time,
    and a blocked native call holds off Ctrl-C until it returns: a build to an endpoint that
    accepted connections and then said nothing hung for three minutes. A stalled read now
    fails after 20 s (``read_timeout`` resets with every chunk, so a large upload on a slow
    link is not cut short), and retries stop 30 s after the first try.
    """
    options: ClientConfig = {"connect_timeout": "5s", "read_timeout": "20s", "timeout": "600s"}
    if url.startswith("http://"):
        options["allow_http"] = True
    return options


def retry_config() -> RetryConfig:
    """obstore retries: a few, within 30 s of the first try (see :func:`client_options`)."""
    from datetime import timedelta

    return {"max_retries": 3, "retry_timeout": timedelta(seconds=30)}


def s3_settings() -> tuple[dict[str, Any], Any]:
    """Endpoint, region and credentials the usual AWS way (environment, then profile)."""
    config: dict[str, Any] = {}
    provider = None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    profile = os.environ.get("AWS_PROFILE")
    if profile and not os.environ.get("AWS_ACCESS_KEY_ID"):
        try:
            import boto3
            from obstore.auth.boto3 import Boto3CredentialProvider
        except ImportError:
            raise StorageError(
                f"AWS_PROFILE={profile}: reading profiles needs boto3 (pip install boto3), "
                "or set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            ) from None
        import botocore.exceptions

        try:
            session = boto3.Session(profile_name=profile)
            found = session.get_credentials()
        except botocore.exceptions.BotoCoreError as e:  # ProfileNotFound, a bad config file
            raise StorageError(f"AWS_PROFILE={profile}: {e}") from None
        if found is None:
            raise StorageError(
                f"AWS_PROFILE={profile}: the profile gives no credentials (no "
                "aws_access_key_id, role or SSO session in ~/.aws/config or ~/.aws/credentials)"
            )
        provider = Boto3CredentialProvider(session)
        endpoint = endpoint or session._session.get_scoped_config().get("endpoint_url")
        if session.region_name:
            config["region"] = session.region_name
    if endpoint:
        config["endpoint"] = _checked_endpoint(endpoint, profile)
        # Custom endpoints (MinIO, Ceph, moto, ...) rarely serve virtual-hosted buckets.
        config["virtual_hosted_style_request"] = False
    config.setdefault(
        "region", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    )
    return config, provider


def _checked_endpoint(endpoint: str, profile: str | None) -> str:
    """``endpoint`` if it is an http(s) URL with a host; else a StorageError naming where it
    came from. obstore panics on a malformed one (``InvalidUri``), and a Rust panic is no
    Exception: it went past every handler as a traceback."""
    from urllib.parse import urlsplit

    name = next((n for n in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") if os.environ.get(n)),
                f"endpoint_url of profile {profile!r}")  # fmt: skip
    try:
        split = urlsplit(endpoint)
        split.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as e:
        raise StorageError(f"{name}={endpoint!r}: not a URL ({e})") from None
    if split.scheme not in ("http", "https") or not split.hostname or endpoint != endpoint.strip():
        raise StorageError(
            f"{name}={endpoint!r}: expected an http:// or https:// URL such as "
            "http://127.0.0.1:9000"
        )
    return endpoint


def s3_client(bucket: str) -> Any:
    """A fresh obstore ``S3Store`` for ``bucket``, configured by :func:`_s3_settings`."""
    from obstore.exceptions import BaseError
    from obstore.store import S3Store

    config, provider = s3_settings()
    try:
        return S3Store(
            bucket,
            config=config,  # type: ignore[arg-type]  # built from env, keys checked by obstore
            client_options=client_options(str(config.get("endpoint", ""))),
            retry_config=retry_config(),
            credential_provider=provider,
        )
    except BaseError as e:  # e.g. AWS_ACCESS_KEY_ID set without AWS_SECRET_ACCESS_KEY
        raise StorageError(
            f"s3://{bucket}: cannot set up the S3 client ({short_error(e)}); check the AWS_* "
            "environment variables (endpoint, access key id and secret) or AWS_PROFILE"
        ) from e


def shared_s3_client(bucket: str) -> Any:
    """One ``S3Store`` per bucket, shared by readers: building a client costs more than a GET.

    Keyed on the AWS/obstore environment too, so a changed endpoint or key (tests, a
    long-lived process) gets a fresh client instead of a stale one.
    """
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "OBSTORE_"))))
    return _cached_s3_client(bucket, env)


# lru_cache is thread-safe: at worst two threads both build a client once.
@functools.lru_cache(maxsize=16)
def _cached_s3_client(bucket: str, env: tuple[tuple[str, str], ...]) -> Any:
    return s3_client(bucket)
