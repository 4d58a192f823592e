"""Where an import's manifest and audio come from: a local folder, uploaded files, or S3.

Every source answers `fetch(ref) -> bytes` for the `audio` field of a manifest turn and raises
SourceError with a short reason when it cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import httpx
from django.conf import settings


class SourceError(Exception):
    pass


def s3_client():
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=settings.S3_ENDPOINT_URL,
        region_name=settings.S3_REGION,
        aws_access_key_id=settings.S3_ACCESS_KEY_ID,
        aws_secret_access_key=settings.S3_SECRET_ACCESS_KEY,
    )


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise SourceError(f"'{uri}' is not an s3://bucket/key URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _limited(data: bytes, ref: str) -> bytes:
    if len(data) > settings.AUDIO_MAX_BYTES:
        raise SourceError(f"audio '{ref}' is larger than {settings.AUDIO_MAX_BYTES} bytes")
    return data


def _fetch_s3(uri: str) -> bytes:
    bucket, key = split_s3_uri(uri)
    client = s3_client()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
        if head["ContentLength"] > settings.AUDIO_MAX_BYTES:
            raise SourceError(f"audio '{uri}' is larger than {settings.AUDIO_MAX_BYTES} bytes")
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.ClientError as exc:
        raise SourceError(f"audio '{uri}' could not be read from S3 ({exc.response['Error'].get('Code')})") from None


def _fetch_url(url: str) -> bytes:
    try:
        with httpx.stream("GET", url, timeout=30, follow_redirects=True) as r:
            if r.status_code != 200:
                raise SourceError(f"audio '{url}' answered HTTP {r.status_code}")
            chunks, total = [], 0
            for chunk in r.iter_bytes():
                total += len(chunk)
                if total > settings.AUDIO_MAX_BYTES:
                    raise SourceError(f"audio '{url}' is larger than {settings.AUDIO_MAX_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise SourceError(f"audio '{url}' could not be downloaded ({exc.__class__.__name__})") from None


@dataclass
class LocalSource:
    """CLI imports: relative paths resolve against the manifest's folder; URLs and s3:// work too."""

    base_dir: Path
    allow_urls: bool = True

    def fetch(self, ref: str) -> bytes:
        if ref.startswith("s3://"):
            return _fetch_s3(ref)
        if ref.startswith(("http://", "https://")):
            if not self.allow_urls:
                raise SourceError(f"audio '{ref}': URLs are not allowed here")
            return _fetch_url(ref)
        path = Path(ref) if Path(ref).is_absolute() else self.base_dir / ref
        if not path.is_file():
            raise SourceError(f"audio '{ref}' does not exist")
        if path.stat().st_size > settings.AUDIO_MAX_BYTES:
            raise SourceError(f"audio '{ref}' is larger than {settings.AUDIO_MAX_BYTES} bytes")
        return path.read_bytes()


@dataclass
class UploadedSource:
    """API imports: the manifest refers to files uploaded in the same request, by file name.
    s3:// URIs are read with the server's credentials; arbitrary URLs are refused (SSRF)."""

    files: dict[str, bytes] = field(default_factory=dict)

    def fetch(self, ref: str) -> bytes:
        if ref.startswith("s3://"):
            return _fetch_s3(ref)
        if ref.startswith(("http://", "https://")):
            raise SourceError(f"audio '{ref}': upload the file instead of giving a URL")
        name = PurePosixPath(ref).name
        if name not in self.files:
            raise SourceError(f"audio '{ref}' was not uploaded with the manifest")
        return _limited(self.files[name], ref)


@dataclass
class S3PrefixSource:
    """Imports from s3://bucket/prefix/: manifest.jsonl there, audio paths relative to the prefix."""

    bucket: str
    prefix: str

    @classmethod
    def from_uri(cls, uri: str) -> tuple[S3PrefixSource, str]:
        bucket, key = split_s3_uri(uri)
        if key.endswith(".jsonl"):
            prefix, manifest_key = key.rsplit("/", 1)[0] + "/" if "/" in key else "", key
        else:
            prefix = key.rstrip("/") + "/" if key else ""
            manifest_key = prefix + "manifest.jsonl"
        return cls(bucket=bucket, prefix=prefix), manifest_key

    def read_manifest(self, key: str) -> bytes:
        client = s3_client()
        try:
            head = client.head_object(Bucket=self.bucket, Key=key)
            if head["ContentLength"] > settings.MANIFEST_MAX_BYTES:
                raise SourceError(f"manifest s3://{self.bucket}/{key} is larger than {settings.MANIFEST_MAX_BYTES} bytes")
            return client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except client.exceptions.ClientError:
            raise SourceError(f"manifest s3://{self.bucket}/{key} could not be read") from None

    def fetch(self, ref: str) -> bytes:
        if ref.startswith("s3://"):
            return _fetch_s3(ref)
        if ref.startswith(("http://", "https://")):
            return _fetch_url(ref)
        clean = str(PurePosixPath(ref))
        if clean.startswith("/") or ".." in PurePosixPath(clean).parts:
            raise SourceError(f"audio '{ref}' must be a path inside the prefix")
        return _fetch_s3(f"s3://{self.bucket}/{self.prefix}{clean}")
