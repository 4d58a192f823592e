"""Gold items (marking, import), audio honeypots and the qualification gate's effect on stats."""

import json

import numpy as np
import pytest

from auralign.core import storage
from auralign.core.errors import Conflict, ServiceError
from auralign.quality.models import AnnotatorStats
from auralign.quality.selectors import annotator_qualification
from auralign.quality.services import (
    gold_import,
    honeypot_create,
    honeypots_create,
    item_gold_clear,
    item_gold_set,
    quality_recompute,
)
from tests.factories import make_campaign, make_items, make_judgment, make_policy, make_user
from worker import audio as dsp

pytestmark = pytest.mark.django_db


def cands(item):
    return [str(c.uuid) for c in item.candidates.order_by("item_links__position")]


def test_item_gold_set_stores_the_expected_ranking():
    campaign = make_campaign(dialogues=1)
    (item,) = make_items(campaign)
    x, y = cands(item)
    item = item_gold_set(item=item, ranking=[[y], [x]])
    assert (item.is_gold, item.gold_ranking, item.gold_pairs) == (True, [[y], [x]], None)


def test_item_gold_set_refuses_a_ranking_that_misses_a_candidate():
    campaign = make_campaign(dialogues=1)
    (item,) = make_items(campaign)
    with pytest.raises(ServiceError, match="exactly once"):
        item_gold_set(item=item, ranking=[[cands(item)[0]]])


def test_item_gold_clear_refuses_an_item_shown_beyond_its_overlap():
    users = [make_user() for _ in range(3)]
    campaign = make_campaign(annotators=users, dialogues=1, overlap=2)
    (item,) = make_items(campaign, gold=1)
    for u in users:
        make_judgment(item, u)
    with pytest.raises(Conflict):
        item_gold_clear(item=item)


def test_gold_import_marks_items_by_uuid_and_by_dialogue_with_policy_names():
    good, bad = make_policy("good"), make_policy("bad")
    campaign = make_campaign(policies=[good, bad], dialogues=2)
    first, second = make_items(campaign)
    x, y = cands(first)
    lines = [
        json.dumps({"item": str(first.uuid), "pairs": [[y, x]]}),
        json.dumps({"dialogue": second.dialogue.external_id, "ranking": [["good"], ["bad"]]}),
    ]
    assert gold_import(campaign=campaign, data="\n".join(lines).encode()) == 2
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.gold_pairs == [[y, x]]
    by_policy = {c.policy.name: str(c.uuid) for c in second.candidates.select_related("policy")}
    assert second.gold_ranking == [[by_policy["good"]], [by_policy["bad"]]]


def test_gold_import_is_all_or_nothing_and_names_the_bad_line():
    campaign = make_campaign(dialogues=2)
    first, _ = make_items(campaign)
    x, y = cands(first)
    data = json.dumps({"item": str(first.uuid), "ranking": [[x], [y]]}) + "\n" + json.dumps({"dialogue": "nope", "ranking": [["a"], ["b"]]})
    with pytest.raises(ServiceError, match="line 2"):
        gold_import(campaign=campaign, data=data.encode())
    first.refresh_from_db()
    assert not first.is_gold


@pytest.mark.parametrize("kind", ["noise", "clipping", "truncation"])
def test_honeypot_create_replaces_a_candidate_with_a_degraded_copy(kind):
    campaign = make_campaign(dialogues=1)
    (item,) = make_items(campaign)
    source = item.candidates.order_by("item_links__position").first()
    honeypot = honeypot_create(item=item, kind=kind, candidate=source)
    members = list(honeypot.candidates.order_by("item_links__position"))
    copy = members[0]
    assert honeypot.is_honeypot and honeypot.dialogue_id == item.dialogue_id
    assert (copy.honeypot_of_id, copy.degradation["kind"], copy.sample_index) == (source.pk, kind, 1000)
    assert members[1] == item.candidates.order_by("item_links__position")[1]
    original = dsp.decode(storage.read(source.audio.key)).samples[:, 0]
    degraded = dsp.decode(storage.read(copy.audio.key)).samples[:, 0]
    if kind == "truncation":
        assert len(degraded) < 0.5 * len(original)
    elif kind == "clipping":
        assert np.mean(np.abs(degraded) >= 0.98 * np.abs(degraded).max()) > 0.3  # flat-topped most of the time
    else:
        assert np.corrcoef(original, degraded)[0, 1] < 0.8  # as much noise as speech
    assert abs(copy.audio.lufs - source.audio.lufs) < 1.5  # loudness matched: volume gives nothing away


def test_honeypots_create_uses_distinct_items_and_cycles_degradations():
    campaign = make_campaign(dialogues=4)
    make_items(campaign)
    made = honeypots_create(campaign=campaign, count=3, kinds=["noise", "truncation"], seed=1)
    kinds = [i.candidates.get(honeypot_of__isnull=False).degradation["kind"] for i in made]
    assert kinds == ["noise", "truncation", "noise"]
    assert len({i.dialogue_id for i in made}) == 3


def test_honeypot_catch_rate_counts_degraded_copies_ranked_last():
    alert, careless = make_user(), make_user()
    campaign = make_campaign(annotators=[alert, careless], dialogues=2)
    item, _ = make_items(campaign)
    honeypot = honeypot_create(item=item, kind="noise", seed=3)
    degraded = str(honeypot.candidates.get(honeypot_of__isnull=False).uuid)
    genuine = next(c for c in cands(honeypot) if c != degraded)
    make_judgment(honeypot, alert, ranking=[[genuine], [degraded]])
    make_judgment(honeypot, careless, ranking=[[degraded], [genuine]])
    quality_recompute(campaign_id=campaign.pk)
    alert_stats = AnnotatorStats.objects.get(campaign=campaign, annotator=alert)
    careless_stats = AnnotatorStats.objects.get(campaign=campaign, annotator=careless)
    assert (alert_stats.honeypots_seen, alert_stats.honeypot_catch_rate) == (1, 1.0)
    assert (careless_stats.honeypots_seen, careless_stats.honeypot_catch_rate) == (1, 0.0)
    assert careless_stats.weight < alert_stats.weight


def test_annotator_qualification_reports_progress_through_the_gate():
    user = make_user()
    campaign = make_campaign(annotators=[user], dialogues=3, qualification_gold_items=2, qualification_min_accuracy=0.5)
    g1, _g2, _ = make_items(campaign, gold=2)
    make_judgment(g1, user)  # make_judgment's default ranking is the gold ranking
    assert annotator_qualification(campaign=campaign, user_id=user.pk) == {
        "gold_answered": 1, "gold_needed": 2, "accuracy": 1.0, "passed": False,
    }
