"""Object storage for the worker, Django-free: a local folder (the embedded default) or S3 / any
S3-compatible store, chosen by the same environment variables as the platform (docs/formats.md):
AURALIGN_STORAGE, AURALIGN_MEDIA_ROOT, S3_ENDPOINT_URL, S3_BUCKET, S3_ACCESS_KEY_ID,
S3_SECRET_ACCESS_KEY, S3_REGION. Keys are opaque and content addressed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import urlparse

from worker.celery_conf import var_dir


class StorageUnavailable(Exception):
    """The store could not be reached; the job is retried later."""


class ObjectMissing(Exception):
    """The key (or s3:// URI) names nothing."""


class ObjectStore(Protocol):
    def get(self, key: str) -> bytes: ...
    def put(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...


def _check_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not key or key.startswith("/") or ".." in parts:
        raise ValueError(f"invalid object key {key!r}")
    return key


@dataclass(frozen=True)
class LocalStore:
    root: Path

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"object '{key}' is not in {self.root}") from None

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if path.exists():  # content addressed: same key, same bytes
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # atomic: a reader never sees half an object

    def exists(self, key: str) -> bool:
        return self._path(key).exists()


def s3_client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
        region_name=os.environ.get("S3_REGION", "us-east-1"),
        aws_access_key_id=os.environ.get("S3_ACCESS_KEY_ID") or None,
        aws_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY") or None,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 5, "mode": "standard"}),
    )


def _unavailable(exc: Exception, what: str) -> StorageUnavailable:
    return StorageUnavailable(f"object storage unavailable while {what}: {exc.__class__.__name__}: {exc}")


@dataclass(frozen=True)
class S3Store:
    bucket: str
    client: object

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=_check_key(key))["Body"].read()
        except ClientError as exc:
            if exc.response["Error"].get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(f"object '{key}' is not in bucket '{self.bucket}'") from None
            raise _unavailable(exc, f"reading '{key}'") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"reading '{key}'") from exc

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, f"writing '{key}'") from exc

    def exists(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=_check_key(key))
            return True
        except ClientError as exc:
            if exc.response["Error"].get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise _unavailable(exc, f"checking '{key}'") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, f"checking '{key}'") from exc


def store_from_env() -> ObjectStore:
    kind = os.environ.get("AURALIGN_STORAGE", "local")
    if kind == "local":
        return LocalStore(Path(os.environ.get("AURALIGN_MEDIA_ROOT", var_dir() / "media")))
    if kind == "s3":
        return S3Store(bucket=os.environ.get("S3_BUCKET", "auralign"), client=s3_client())
    raise ValueError(f"AURALIGN_STORAGE must be 'local' or 's3', not {kind!r}")


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"'{uri}' is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def download_s3(uri: str, dest: Path) -> Path:
    """Copy an s3:// object, or every object under an s3:// prefix, into `dest` (once: a finished
    download leaves a marker; concurrent worker processes on one machine wait for each other).
    Returns the local file (single object) or folder (prefix)."""
    import fcntl

    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_uri(uri)
    if not prefix.strip("/"):
        raise ValueError(f"'{uri}' names a whole bucket; give s3://bucket/prefix")
    dest.mkdir(parents=True, exist_ok=True)
    marker = dest / ".complete"
    with open(dest / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            client = s3_client()
            try:
                keys = [
                    obj["Key"]
                    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                    for obj in page.get("Contents", [])
                ]
                if not keys:
                    raise ObjectMissing(f"nothing found at {uri}")
                single = keys == [prefix]
                base = PurePosixPath(prefix).parent if single else PurePosixPath(prefix.rstrip("/"))
                for key in keys:
                    target = dest / PurePosixPath(key).relative_to(base)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, key, str(target))
            except ClientError as exc:
                code = exc.response["Error"].get("Code")
                if code in ("NoSuchBucket", "AccessDenied", "NoSuchKey", "404"):
                    raise ObjectMissing(f"cannot read {uri} ({code})") from None
                raise _unavailable(exc, f"downloading {uri}") from exc
            except BotoCoreError as exc:
                raise _unavailable(exc, f"downloading {uri}") from exc
            marker.write_text(PurePosixPath(prefix).name if single else ".")
    return dest / marker.read_text()
