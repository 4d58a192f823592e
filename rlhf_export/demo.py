"""The export part of `make demo`: a trainer creates exports of the demo judgments, pulls one with
the CLI's code path over the real API (a read-only token scoped to the campaign), and loads it
with `datasets`."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import httpx
from django.core.wsgi import get_wsgi_application

from auralign.accounts.models import User
from auralign.accounts.services import api_token_create
from auralign.campaigns.models import Campaign
from rlhf_export.client import AuralignClient, load_snapshot, pull
from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_create, snapshot_run

DEMO_HOST = "http://localhost:9"  # the API served in-process (WSGI): no web server needs to be running


def demo_export(*, trainer: User, campaign: Campaign, out_dir: Path, stdout: TextIO) -> ExportSnapshot:
    """Returns the pairwise snapshot, pulled (with audio) to `out_dir/<kind>` and loaded."""
    snapshots = {}
    for kind in (ExportSnapshot.Kind.PAIRWISE, ExportSnapshot.Kind.LISTWISE):
        snapshot = snapshot_create(user=trainer, campaigns=[campaign], kind=kind, enqueue=False)
        snapshots[kind] = snapshot = snapshot_run(snapshot_id=snapshot.pk)
        if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
            raise RuntimeError(f"{kind} export failed: {snapshot.error}")
        stdout.write(f"export {snapshot.uuid}: {kind}, {snapshot.watermark['judgment_count']} judgments, {snapshot.rows} rows\n")
    _, secret = api_token_create(user=trainer, name="demo export pull", campaigns=[campaign], read_only=True)
    http = httpx.Client(mounts={DEMO_HOST: httpx.WSGITransport(app=get_wsgi_application())}, follow_redirects=True)
    client = AuralignClient(DEMO_HOST, secret, http=http)
    for kind, snapshot in snapshots.items():
        folder = Path(out_dir) / kind
        pull(client, str(snapshot.uuid), folder, with_audio=kind == ExportSnapshot.Kind.PAIRWISE, progress=False)
        dataset = load_snapshot(folder)
        counts = ", ".join(f"{split} {len(ds)}" for split, ds in dataset.items())
        stdout.write(f"pulled to {folder} and loaded with datasets: {counts} rows\n")
        stdout.write(f"  python -m rlhf_export pull {snapshot.uuid} --to {folder}\n")
    return snapshots[ExportSnapshot.Kind.PAIRWISE]
