"""Streaming writers: Arrow tables → Parquet / JSONL shards in object storage, hashed on the way.

A sink receives bytes as they are produced and never holds a whole file: S3 gets a real
multipart upload (8 MiB parts through the platform storage's boto3 client), local storage a
`.partial` file. Either way the object appears only on `commit()` (S3 completes the upload, the
local file is renamed), and `abort()` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from auralign.core import storage
from rlhf_export.models import SCHEMA_VERSION
from rlhf_export.schema import SCHEMAS
from rlhf_export.spec import SPLITS

PART_BYTES = 8 * 1024 * 1024
ROW_GROUP_ROWS = 16_384
CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "jsonl": "application/x-ndjson", "json": "application/json"}


class Sink:
    """Write-only byte stream that counts and hashes what it is given; subclasses store it."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.bytes = 0
        self._sha256 = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes) -> int:
        self._sha256.update(data)
        self.bytes += len(data)
        self._store(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        pass

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()

    def commit(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def _store(self, data: bytes) -> None:
        pass


class HashOnlySink(Sink):
    """Stores nothing: for re-running an export to compare checksums (snapshot_verify)."""


class LocalSink(Sink):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.path = Path(storage.store().path(key))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self.path.with_name(self.path.name + ".partial")
        self._file = open(self._partial, "wb")  # noqa: SIM115 (closed by commit/abort)

    def _store(self, data: bytes) -> None:
        self._file.write(data)

    def commit(self) -> None:
        self._file.close()
        os.replace(self._partial, self.path)
        super().commit()

    def abort(self) -> None:
        self._file.close()
        self._partial.unlink(missing_ok=True)
        super().abort()


class S3Sink(Sink):
    def __init__(self, key: str, content_type: str) -> None:
        super().__init__(key)
        s3 = storage.store()
        self._client, self._bucket = s3.connection.meta.client, s3.bucket_name
        self._content_type = content_type
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []

    def _store(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) >= PART_BYTES:
            self._upload_part()

    def _upload_part(self) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self.key, ContentType=self._content_type
            )["UploadId"]
        number = len(self._parts) + 1
        response = self._client.upload_part(
            Bucket=self._bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})
        self._buffer.clear()

    def commit(self) -> None:
        if self._upload_id is None:  # small file: one PUT
            self._client.put_object(
                Bucket=self._bucket, Key=self.key, Body=bytes(self._buffer), ContentType=self._content_type
            )
        else:
            if self._buffer:
                self._upload_part()
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        super().commit()

    def abort(self) -> None:
        if self._upload_id is not None:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=self.key, UploadId=self._upload_id)
        super().abort()


def open_sink(key: str) -> Sink:
    if storage.is_s3():
        return S3Sink(key, CONTENT_TYPES[key.rsplit(".", 1)[-1]])
    return LocalSink(key)


def delete_prefix(prefix: str) -> None:
    """Remove every object (and unfinished multipart upload) under `prefix`."""
    if not storage.is_s3():
        shutil.rmtree(storage.store().path(prefix), ignore_errors=True)
        return
    s3 = storage.store()
    client, bucket = s3.connection.meta.client, s3.bucket_name
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


@dataclass
class _Shard:
    number: int
    sinks: dict[str, Sink]
    parquet: pq.ParquetWriter | None
    rows: int = 0


class SplitWriter:
    """The rows of one split → shards of at most `rows_per_shard` rows each, in every requested
    format (shard n holds the same rows in each format): `<kind>/<split>-<n:05d>.parquet` and
    `jsonl/<kind>/<split>-<n:05d>.jsonl`.

    Parquet: zstd, fixed row groups of ROW_GROUP_ROWS rows, statistics from the data only and no
    timestamps, so equal rows give byte-equal files. JSONL: one object per row, sorted keys.
    A split without rows still gets one (empty) shard, so every snapshot has the same layout."""

    def __init__(self, *, prefix: str, kind: str, split: str, formats: list[str], rows_per_shard: int, make_sink=open_sink):
        self.prefix, self.kind, self.split, self.formats = prefix, kind, split, formats
        self.rows_per_shard = rows_per_shard
        self.row_group_rows = min(ROW_GROUP_ROWS, rows_per_shard)
        self.schema = _file_schema(kind)
        self.make_sink = make_sink
        self.files: list[dict] = []
        self._shard: _Shard | None = None
        self._shards_done = 0
        self._pending: list[pa.Table] = []  # Parquet rows waiting for a full row group
        self._pending_rows = 0

    def path(self, number: int, fmt: str) -> str:
        """Parquet shards alone in `<kind>/` (so a folder reader such as pandas sees only them), JSONL under `jsonl/`."""
        folder = self.kind if fmt == "parquet" else f"{fmt}/{self.kind}"
        return f"{folder}/{self.split}-{number:05d}.{fmt}"

    def write(self, table: pa.Table) -> None:
        while table.num_rows:
            if self._shard is None:
                self._open_shard()
            room = self.rows_per_shard - self._shard.rows
            self._append(table.slice(0, room))
            table = table.slice(room)
            if self._shard.rows == self.rows_per_shard:
                self._close_shard()

    def close(self) -> list[dict]:
        if self._shard is None and not self._shards_done:
            self._open_shard()
        if self._shard is not None:
            self._close_shard()
        return self.files

    def abort(self) -> None:
        if self._shard is not None:
            if self._shard.parquet is not None:
                with contextlib.suppress(Exception):  # its footer goes to a sink about to be discarded
                    self._shard.parquet.close()
            for sink in self._shard.sinks.values():
                sink.abort()
            self._shard = None

    def _open_shard(self) -> None:
        sinks = {fmt: self.make_sink(self.prefix + self.path(self._shards_done, fmt)) for fmt in self.formats}
        parquet = None
        if "parquet" in sinks:
            parquet = pq.ParquetWriter(
                sinks["parquet"], self.schema, compression="zstd", write_statistics=True, store_schema=True
            )
        self._shard = _Shard(number=self._shards_done, sinks=sinks, parquet=parquet)

    def _append(self, table: pa.Table) -> None:
        shard = self._shard
        shard.rows += table.num_rows
        if shard.parquet is not None:
            self._pending.append(table)
            self._pending_rows += table.num_rows
            self._write_row_groups(final=False)
        if "jsonl" in shard.sinks:
            sink = shard.sinks["jsonl"]
            for row in table.to_pylist():
                sink.write(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")

    def _write_row_groups(self, *, final: bool) -> None:
        if self._pending_rows < self.row_group_rows and not (final and self._pending_rows):
            return
        pending = pa.concat_tables(self._pending)
        whole = pending.num_rows if final else pending.num_rows - pending.num_rows % self.row_group_rows
        self._shard.parquet.write_table(pending.slice(0, whole), row_group_size=self.row_group_rows)
        rest = pending.slice(whole)
        self._pending, self._pending_rows = ([rest] if rest.num_rows else []), rest.num_rows

    def _close_shard(self) -> None:
        shard = self._shard
        if shard.parquet is not None:
            self._write_row_groups(final=True)
            shard.parquet.close()
        for fmt, sink in shard.sinks.items():
            sink.commit()
            self.files.append(
                {"path": self.path(shard.number, fmt), "split": self.split, "format": fmt, "rows": shard.rows,
                 "bytes": sink.bytes, "sha256": sink.sha256}
            )
        self._shard = None
        self._shards_done += 1


def _file_schema(kind: str) -> pa.Schema:
    return SCHEMAS[kind].with_metadata({"auralign.kind": kind, "auralign.schema_version": str(SCHEMA_VERSION)})


class SnapshotWriter:
    """One SplitWriter per split with a non-zero fraction; routes each table's rows by `split`."""

    def __init__(self, *, prefix: str, kind: str, spec: dict, make_sink=open_sink):
        self.writers = {
            name: SplitWriter(prefix=prefix, kind=kind, split=name, formats=spec["formats"],
                              rows_per_shard=spec["rows_per_shard"], make_sink=make_sink)
            for name in SPLITS
            if spec["splits"][name] > 0
        }
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        split_column = table["split"]
        for name, writer in self.writers.items():
            part = table.filter(pc.equal(split_column, name)) if len(self.writers) > 1 else table
            if part.num_rows:
                writer.write(part)

    def close(self) -> list[dict]:
        return [entry for writer in self.writers.values() for entry in writer.close()]

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()
