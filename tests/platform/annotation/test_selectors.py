"""What an annotator's pages read: "My campaigns" and its progress counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auralign.annotation.models import Item
from auralign.annotation.selectors import annotator_campaigns
from tests.factories import make_campaign, make_items, make_judgment, make_user

pytestmark = pytest.mark.django_db


def setup():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], dialogues=4)
    items = make_items(campaign, with_audio=False)
    return campaign, items, annotator


def complete(item):
    Item.objects.filter(pk=item.pk).update(completed_at=timezone.now())


def test_my_campaigns_counts_the_campaigns_items_and_completed_ones():
    campaign, items, annotator = setup()
    complete(items[0])
    (row,) = annotator_campaigns(user=annotator)
    assert (row["campaign"], row["items_total"], row["items_completed"], row["percent"]) == (campaign, 4, 1, 25)


def test_my_campaigns_reads_a_campaigns_item_counts_once_within_the_cache_time(settings):
    settings.CAMPAIGN_PROGRESS_CACHE_SECONDS = 30
    _, items, annotator = setup()
    annotator_campaigns(user=annotator)
    complete(items[0])
    with CaptureQueriesContext(connection) as queries:
        (row,) = annotator_campaigns(user=annotator)
    assert row["items_completed"] == 0
    assert not any("annotation_item" in q["sql"] for q in queries.captured_queries)


def test_my_campaigns_counts_every_time_with_the_cache_off(settings):
    settings.CAMPAIGN_PROGRESS_CACHE_SECONDS = 0
    _, items, annotator = setup()
    annotator_campaigns(user=annotator)
    complete(items[0])
    (row,) = annotator_campaigns(user=annotator)
    assert row["items_completed"] == 1


def test_my_own_judged_count_is_current_while_the_campaign_counts_are_cached(settings):
    settings.CAMPAIGN_PROGRESS_CACHE_SECONDS = 30
    _, items, annotator = setup()
    annotator_campaigns(user=annotator)
    make_judgment(items[0], annotator)
    (row,) = annotator_campaigns(user=annotator)
    assert row["judged"] == 1
