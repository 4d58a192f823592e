"""Object storage behind one interface: local files (served by an authorised view with HTTP
Range) or S3 / any S3-compatible store (short-lived presigned URLs), chosen by AURALIGN_STORAGE.

Keys are opaque and content addressed (docs/formats.md); nothing here knows about models.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.urls import reverse

_SIGNER_SALT = "auralign.media"


def store() -> Storage:
    return storages["default"]


def is_s3() -> bool:
    return settings.STORAGES["default"]["BACKEND"].endswith("S3Storage")


def put(key: str, data: bytes) -> None:
    """Write bytes under `key`. Content-addressed keys make a second write of the same key a no-op."""
    s = store()
    if s.exists(key):
        return
    s.save(key, ContentFile(data))


def exists(key: str) -> bool:
    return store().exists(key)


def read(key: str) -> bytes:
    with store().open(key, "rb") as f:
        return f.read()


def size(key: str) -> int:
    return store().size(key)


def iter_range(key: str, start: int, length: int, chunk: int = 64 * 1024) -> Iterator[bytes]:
    with store().open(key, "rb") as f:
        f.seek(start)
        remaining = length
        while remaining > 0:
            data = f.read(min(chunk, remaining))
            if not data:
                break
            remaining -= len(data)
            yield data


def url(key: str, *, ttl: int | None = None) -> str:
    """A short-lived URL a browser or script can GET (with Range). Callers must have checked that
    the requester may read this object: the URL itself is a bearer credential until it expires."""
    ttl = ttl or settings.MEDIA_URL_TTL_SECONDS
    if is_s3():
        return store().url(key, expire=ttl)
    expires = int(time.time()) + ttl
    sig = signing.Signer(salt=_SIGNER_SALT).signature(f"{key}|{expires}")
    return f"{reverse('media-object', kwargs={'key': key})}?e={expires}&s={sig}"


def verify_local_signature(key: str, expires: str, sig: str) -> bool:
    try:
        exp = int(expires)
    except (TypeError, ValueError):
        return False
    if exp < time.time():
        return False
    expected = signing.Signer(salt=_SIGNER_SALT).signature(f"{key}|{exp}")
    return signing.constant_time_compare(expected, sig or "")


def ensure_bucket() -> None:
    """Create the S3 bucket if it is missing (used by the demo, compose and tests)."""
    if not is_s3():
        return
    s = store()
    client = s.connection.meta.client
    try:
        client.head_bucket(Bucket=s.bucket_name)
    except client.exceptions.ClientError:
        client.create_bucket(Bucket=s.bucket_name)
