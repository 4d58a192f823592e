from datetime import timedelta

import pytest
from django.utils import timezone

from auralign.annotation.models import Assignment
from auralign.annotation.services import assignment_next
from auralign.annotation.tasks import expire_leases
from tests.factories import make_campaign, make_items, make_user

pytestmark = pytest.mark.django_db


def test_the_periodic_task_frees_overdue_leases():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator])
    make_items(campaign, with_audio=False)
    assignment_next(campaign=campaign, annotator=annotator, now=timezone.now() - timedelta(seconds=campaign.lease_seconds + 1))
    assert expire_leases.name == "auralign.annotation.expire_leases"
    assert expire_leases.apply().get() == 1
    assert Assignment.objects.get().status == Assignment.Status.EXPIRED
