"""Exports in real object storage (SeaweedFS): multipart streaming, and what a failure leaves."""

import hashlib
import os

import pytest

from auralign.core import storage
from rlhf_export import writers
from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_create, snapshot_run
from tests import services
from tests.rlhf_export.conftest import export, read_rows

pytestmark = [pytest.mark.django_db, pytest.mark.services]


def bucket_keys(server, prefix: str) -> list[str]:
    listing = server.client().list_objects_v2(Bucket=server.bucket, Prefix=prefix)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def test_a_large_file_is_streamed_as_a_multipart_upload(s3_settings):
    data = os.urandom(writers.PART_BYTES * 2 + 12345)
    sink = writers.open_sink("exports/test/big.parquet")
    for start in range(0, len(data), 1 << 20):
        sink.write(data[start : start + (1 << 20)])
    assert not bucket_keys(s3_settings, "exports/test/")  # invisible until committed
    sink.commit()
    head = s3_settings.client().head_object(Bucket=s3_settings.bucket, Key="exports/test/big.parquet")
    assert head["ETag"].strip('"').endswith("-3")  # three parts
    assert storage.read("exports/test/big.parquet") == data
    assert sink.sha256 == hashlib.sha256(data).hexdigest()


def test_an_aborted_upload_leaves_no_object(s3_settings):
    sink = writers.open_sink("exports/test/aborted.parquet")
    sink.write(os.urandom(writers.PART_BYTES + 1))
    sink.abort()
    assert not bucket_keys(s3_settings, "exports/test/aborted")
    assert not s3_settings.client().list_multipart_uploads(Bucket=s3_settings.bucket, Prefix="exports/test/aborted").get("Uploads")


def test_an_export_to_s3_writes_its_files_then_its_manifest(judged, s3_settings):
    snapshot = export(judged)
    keys = bucket_keys(s3_settings, snapshot.prefix)
    assert keys == sorted([snapshot.prefix + "manifest.json", *(snapshot.prefix + f["path"] for f in snapshot.files)])
    assert len(read_rows(snapshot)) == snapshot.rows


def test_s3_down_marks_the_export_failed_with_the_reason_and_shows_no_files(judged, s3_settings, settings):
    dead = f"http://127.0.0.1:{services.free_port()}"
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": {
        **settings.STORAGES["default"]["OPTIONS"], "endpoint_url": dead}}}
    snapshot = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    failed = snapshot_run(snapshot_id=snapshot.pk)
    assert failed.status == ExportSnapshot.Status.FAILED
    assert "EndpointConnectionError" in failed.error and dead in failed.error
    assert (failed.files, failed.manifest, failed.watermark) == ([], None, None)


@pytest.mark.slow
def test_s3_dying_mid_export_fails_it_before_any_manifest_and_shows_no_files(judged, tmp_path, settings, client):
    proc, server = services.start_seaweedfs(tmp_path / "weed")
    try:
        settings.STORAGES = {**settings.STORAGES, "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": server.bucket, "endpoint_url": server.endpoint_url, "region_name": server.region,
                        "access_key": server.access_key, "secret_key": server.secret_key, "file_overwrite": True,
                        "default_acl": None, "signature_version": "s3v4", "addressing_style": "path"}}}
        snapshot = snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False,
                                   splits={"train": 1.0}, rows_per_shard=10)
        written = []

        def stop_storage_after_the_first_batch(done, total, rows):
            written.append(bucket_keys(server, snapshot.prefix))
            services.stop_process(proc)

        failed = snapshot_run(snapshot_id=snapshot.pk, on_progress=stop_storage_after_the_first_batch)
    finally:
        services.stop_process(proc)
    assert snapshot.prefix + "pairwise/train-00000.parquet" in written[0]  # shards were already uploaded...
    assert snapshot.prefix + "manifest.json" not in written[0]  # ...but never the manifest
    assert failed.status == ExportSnapshot.Status.FAILED and "EndpointConnectionError" in failed.error
    assert (failed.files, failed.manifest) == ([], None)
    client.force_login(judged.trainer)
    assert client.get(f"/api/v1/exports/{snapshot.uuid}").json()["urls"] == {}
