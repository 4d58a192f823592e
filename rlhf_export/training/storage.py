"""Local folders and ``s3://bucket/prefix`` locations, through boto3.

The S3 endpoint and credentials come from the environment variables named in docs/formats.md:
S3_ENDPOINT_URL, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION (the bucket is in the URI).
"""

import os
from functools import cache
from pathlib import Path


def is_s3(location: str) -> bool:
    return str(location).startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> (``bucket``, ``a/b/``)."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"not an s3://bucket/prefix location: {uri!r}")
    return bucket, prefix


def join(location: str, relative: str) -> str:
    """Append a relative path to a local folder or an s3:// prefix."""
    if is_s3(location):
        return location.rstrip("/") + "/" + relative
    return str(Path(location) / relative)


def client():
    """A boto3 S3 client for the current environment (one per distinct setting)."""
    names = ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION")
    return _client(*(os.environ.get(name) or None for name in names))


@cache
def _client(endpoint_url, access_key, secret_key, region):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region or "us-east-1",
    )


def download_prefix(uri: str, dest: Path) -> Path:
    """Copy every object under an s3:// prefix into ``dest`` (keeping relative paths); returns dest."""
    bucket, prefix = split_s3(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    found = False
    for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found = True
            target = dest / obj["Key"][len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client().download_file(bucket, obj["Key"], str(target))
    if not found:
        raise FileNotFoundError(f"nothing stored under {uri}")
    return dest


def download_file(uri: str, dest: Path) -> Path:
    bucket, key = split_s3(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    client().download_file(bucket, key, str(dest))
    return dest


def upload_file(path: Path, uri: str) -> None:
    bucket, key = split_s3(uri)
    client().upload_file(str(path), bucket, key)
