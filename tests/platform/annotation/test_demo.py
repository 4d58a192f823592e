import pytest

from auralign.annotation.demo import demo_simulated_judgments
from auralign.annotation.models import Item, Judgment
from tests.factories import make_campaign, make_items, make_user

pytestmark = pytest.mark.django_db


def test_simulated_judgments_go_through_the_real_engine_and_count():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], policies=3, k=3, dialogues=3, overlap=2)
    make_items(campaign, with_audio=False)
    assert demo_simulated_judgments(campaign=campaign, annotator=annotator, n=2) == 2
    judgments = Judgment.objects.filter(annotator=annotator)
    assert judgments.count() == 2 and not judgments.filter(is_surplus=True).exists()
    assert sum(Item.objects.filter(campaign=campaign).values_list("judgment_count", flat=True)) == 2


def test_simulated_judgments_stop_when_nothing_is_left():
    annotator = make_user()
    campaign = make_campaign(annotators=[annotator], dialogues=2)
    make_items(campaign, with_audio=False)
    assert demo_simulated_judgments(campaign=campaign, annotator=annotator, n=10) == 2
