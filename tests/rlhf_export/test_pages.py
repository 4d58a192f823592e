"""The export pages (annotator_ui/exports): list, create, detail."""

import pytest

from rlhf_export.models import ExportSnapshot
from rlhf_export.services import snapshot_create
from tests.factories import make_user
from tests.rlhf_export.conftest import export

pytestmark = pytest.mark.django_db


def test_a_trainer_sees_snapshots_and_the_create_form(judged, client):
    snapshot = export(judged)
    client.force_login(judged.trainer)
    page = client.get("/exports/").content.decode()
    assert str(snapshot.uuid)[:10] in page and 'id="new-export"' in page
    assert judged.campaign.name in page


def test_an_annotator_sees_neither_snapshots_nor_the_form(judged, client):
    export(judged)
    client.force_login(judged.annotators[0])
    page = client.get("/exports/").content.decode()
    assert "No snapshots yet" in page and 'id="new-export"' not in page


def test_the_form_creates_a_pending_snapshot_and_shows_its_live_progress(judged, client):
    client.force_login(judged.trainer)
    response = client.post("/exports/", {"campaigns": [str(judged.campaign.uuid)], "kind": "listwise",
                                         "exclude_gold": "on", "formats": ["parquet"]})
    snapshot = ExportSnapshot.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/exports/{snapshot.uuid}/"
    assert (snapshot.kind, snapshot.spec["filters"]["exclude_gold"], snapshot.spec["formats"]) == ("listwise", True, ["parquet"])
    assert snapshot.created_by == judged.trainer
    page = client.get(response["Location"]).content.decode()
    assert 'data-status="pending"' in page and "<progress" in page and "exports.js" in page


def test_the_form_names_a_bad_value(judged, client):
    client.force_login(judged.trainer)
    response = client.post("/exports/", {"campaigns": [str(judged.campaign.uuid)], "kind": "pairwise",
                                         "min_agreement": "3", "formats": ["parquet"]})
    assert response.status_code == 200 and not ExportSnapshot.objects.exists()
    assert "less than or equal to 1" in response.content.decode()


def test_a_succeeded_snapshot_page_links_its_files_and_shows_the_pull_command(judged, client):
    snapshot = export(judged)
    client.force_login(judged.trainer)
    page = client.get(f"/exports/{snapshot.uuid}/").content.decode()
    assert f"python -m rlhf_export pull {snapshot.uuid}" in page
    assert all(f["path"] in page for f in snapshot.files) and "/media/exports/" in page


def test_campaign_names_are_escaped(judged, client):
    judged.campaign.name = "<script>alert(1)</script>"
    judged.campaign.save()
    snapshot_create(user=judged.trainer, campaigns=[judged.campaign], kind="pairwise", enqueue=False)
    client.force_login(judged.trainer)
    page = client.get("/exports/").content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_outsiders_get_404_for_a_snapshot_page(judged, client):
    snapshot = export(judged)
    client.force_login(make_user())
    assert client.get(f"/exports/{snapshot.uuid}/").status_code == 404


def test_the_admin_shows_snapshots_read_only(judged, admin_client):
    snapshot = export(judged)
    assert str(snapshot.uuid) in admin_client.get("/admin/rlhf_export/exportsnapshot/").content.decode()
    page = admin_client.get(f"/admin/rlhf_export/exportsnapshot/{snapshot.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
