"""The annotator's task page in a real Chromium against a live server: listening, scoring,
ranking by drag and by keyboard, drafts, submission, errors."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from auralign.annotation.models import Assignment, Item, Judgment, Skip
from auralign.dialogues.models import Turn
from tests.e2e.conftest import logged_in_context
from tests.factories import make_audio_asset, make_campaign, make_items, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def campaign():
    """A campaign with three replies per item, two items, and audio on every user turn."""
    annotator = make_user("ann", password=PASSWORD)
    campaign = make_campaign(annotators=[annotator], policies=3, k=3, dialogues=2, overlap=1, min_listened_fraction=0.8)
    make_items(campaign)
    Turn.objects.filter(dialogue__dialogue_set=campaign.dialogue_set, role="user").update(audio=make_audio_asset(0.5))
    return campaign


@pytest.fixture
def page(browser, live_server, campaign):
    """The annotator's task page, logged in, with its first item on screen."""
    context = logged_in_context(browser, live_server, campaign.memberships.get(role="annotator").user)
    page = context.new_page()
    page.goto(f"/annotate/{campaign.uuid}/")
    page.wait_for_selector("#workspace:not([hidden])")
    yield page
    quiet_close(context)


def quiet_close(context):
    """Stop the page's requests (heartbeats, drafts, audio) before the test database goes away."""
    context.route("**/*", lambda route: route.abort())
    for p in context.pages:
        p.goto("about:blank")
    context.close()
    time.sleep(0.3)  # let the live server finish what it was answering


def card(page, n):
    return page.locator(".reply").nth(n)


def listen(page, n):
    """Focus reply n by its letter, play it, and wait until scoring unlocks."""
    page.keyboard.press("abcdef"[n])
    page.keyboard.press("Space")
    page.wait_for_function(f"!document.querySelectorAll('.reply')[{n}].classList.contains('locked')")


def tiers(page):
    """The ranking on screen: lists of letters, best first."""
    return page.eval_on_selector_all(
        "#tiers .chips", "lists => lists.map(l => [...l.querySelectorAll('.chip')].map(c => c.textContent))"
    )


def judge_with_keyboard(page, scores=("5434", "3333", "2222")):
    for n, digits in enumerate(scores):
        listen(page, n)
        for d in digits:
            page.keyboard.press(d)
        page.keyboard.press("Alt+ArrowUp")


def item_on_screen(page):
    return page.evaluate("document.body.dataset.item")


def test_login_shows_my_campaigns_with_their_progress(browser, live_server, campaign):
    page = browser.new_context(base_url=live_server.url).new_page()
    page.goto("/")
    page.fill("input[name=username]", "ann")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('My campaigns')")
    assert campaign.name in page.inner_text(".my-campaigns")
    assert "0 of 2 items" in page.inner_text(".my-campaigns")
    page.click("text=Start annotating")
    page.wait_for_selector("#workspace:not([hidden])")
    quiet_close(page.context)


def test_playing_a_reply_fills_its_listened_bar_and_unlocks_scoring(page):
    assert "locked" in card(page, 0).get_attribute("class")
    card(page, 0).locator(".play").click()
    page.wait_for_function("!document.querySelectorAll('.reply')[0].classList.contains('locked')")
    assert card(page, 0).locator(".heard").inner_text() in {f"{p}% heard" for p in range(80, 101)}
    assert card(page, 0).locator(".score").first.is_enabled()


def test_scoring_before_listening_is_blocked(page):
    assert card(page, 1).locator(".score").first.is_disabled()
    page.keyboard.press("b")
    page.keyboard.press("4")
    assert "Listen to at least 80% of reply B" in page.inner_text("#banner")
    assert card(page, 1).locator(".score[aria-checked=true]").count() == 0


def test_ranking_by_drag_places_and_ties_replies(page):
    page.drag_and_drop("#unranked .chip >> text=B", "#tiers .gap.end")
    page.drag_and_drop("#unranked .chip >> text=A", "#tiers .gap.end")
    assert tiers(page) == [["B"], ["A"]]
    page.drag_and_drop("#unranked .chip >> text=C", "#tiers .chips >> nth=0")
    assert sorted(tiers(page)[0]) == ["B", "C"] and tiers(page)[1] == ["A"]


def test_ranking_by_keyboard_places_ties_and_unties_replies(page):
    for letter in "cab":
        page.keyboard.press(letter)
        page.keyboard.press("Alt+ArrowUp")
    assert tiers(page) == [["C"], ["A"], ["B"]]
    page.keyboard.press("b")
    page.keyboard.press("t")
    assert tiers(page) == [["C"], ["A", "B"]]
    page.keyboard.press("Alt+ArrowUp")
    assert tiers(page) == [["C"], ["B"], ["A"]]
    page.keyboard.press("Alt+ArrowUp")
    assert tiers(page) == [["B"], ["C"], ["A"]]


def test_the_keyboard_alone_judges_submits_and_loads_the_next_item_without_a_reload(page, campaign):
    first = item_on_screen(page)
    page.evaluate("window.stillThisPage = true")
    judge_with_keyboard(page)
    page.keyboard.press("c")
    page.keyboard.press("t")  # C ties with B
    page.keyboard.press("r")
    page.keyboard.type("A sounds warmest")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.body.dataset.item && document.body.dataset.item !== '{first}'")
    assert page.evaluate("window.stillThisPage") is True
    assert "1 judged" in page.inner_text("#progress")

    judgment = Judgment.objects.get(item__uuid=first)
    a, b, c = Assignment.objects.get(item__uuid=first).display_order
    assert judgment.ranking == [[a], [b, c]]
    assert judgment.scores[a] == {"correctness": 5, "fluency": 4, "emotional_resonance": 3, "persona_consistency": 4}
    assert judgment.scores[c] == {"correctness": 2, "fluency": 2, "emotional_resonance": 2, "persona_consistency": 2}
    assert min(judgment.listened.values()) >= 0.8
    assert judgment.rationale == "A sounds warmest" and judgment.time_spent_ms > 0
    assert not judgment.is_late and not judgment.is_surplus


def test_submitting_an_incomplete_judgment_lists_what_is_missing(page):
    listen(page, 0)
    page.keyboard.press("5")
    page.keyboard.press("Enter")
    errors = page.inner_text("#errors")
    assert "B, C are not ranked yet" in errors and "Listen to at least 80% of reply B" in errors
    assert not Judgment.objects.exists()


def test_a_reload_mid_task_restores_the_draft_from_the_server(page):
    listen(page, 0)
    page.keyboard.press("4")
    page.keyboard.press("Alt+ArrowUp")
    page.fill("#rationale", "half way")
    page.wait_for_selector("#saved:has-text('Draft saved')")
    item = item_on_screen(page)
    page.evaluate("localStorage.clear()")  # only the server copy is left
    page.reload()
    page.wait_for_selector("#workspace:not([hidden])")
    assert item_on_screen(page) == item
    assert page.input_value("#rationale") == "half way"
    assert tiers(page) == [["A"]]
    assert card(page, 0).locator(".score[aria-checked=true]").inner_text() == "4"
    assert "locked" not in card(page, 0).get_attribute("class")  # what was heard is kept too
    assert "restored" in page.inner_text("#banner")


def test_a_draft_survives_a_reload_even_while_offline(page):
    page.route("**/draft", lambda route: route.abort())
    listen(page, 0)
    page.keyboard.press("3")
    page.reload()
    page.wait_for_selector("#workspace:not([hidden])")
    assert card(page, 0).locator(".score[aria-checked=true]").inner_text() == "3"


def test_a_submission_brings_the_next_item_along_in_the_same_request(page):
    first = item_on_screen(page)
    asked = []
    page.on("request", lambda request: asked.append(request.url.split("/api/v1/annotate/", 1)[-1]))
    judge_with_keyboard(page)
    page.keyboard.press("Enter")
    page.wait_for_function(f"document.body.dataset.item && document.body.dataset.item !== '{first}'")
    calls = [url for url in asked if "/next" in url or "/judgment" in url]
    assert calls == [f"items/{first}/judgment?next=1"]
    following = Assignment.objects.get(item__uuid=item_on_screen(page))
    assert following.status == Assignment.Status.LIVE


def test_a_lost_connection_resends_the_judgment_with_the_same_id(page):
    sent = []

    def flaky(route):
        sent.append(json.loads(route.request.post_data))
        if len(sent) == 1:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route(re.compile(r"/judgment(\?|$)"), flaky)
    first = item_on_screen(page)
    judge_with_keyboard(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#banner:has-text('Connection lost')")
    page.wait_for_function(f"document.body.dataset.item && document.body.dataset.item !== '{first}'")
    assert len(sent) == 2 and sent[0]["client_submission_id"] == sent[1]["client_submission_id"]
    assert Judgment.objects.filter(item__uuid=first).count() == 1


def test_an_expired_lease_taken_by_someone_else_is_explained_with_a_way_on(page, campaign):
    item = Item.objects.get(uuid=item_on_screen(page))
    Assignment.objects.filter(item=item).update(status="expired", expires_at=timezone.now() - timedelta(seconds=1))
    Item.objects.filter(pk=item.pk).update(slots_used=item.overlap)  # another annotator holds it now
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")  # back on the tab
    page.wait_for_selector("#banner:has-text('another annotator has it now')")
    page.click("#banner button:has-text('Next item')")
    page.wait_for_function(f"document.body.dataset.item && document.body.dataset.item !== '{item.uuid}'")


def test_skip_records_the_reason_and_moves_on(page):
    first = item_on_screen(page)
    page.keyboard.press("s")
    page.check("input[value='I do not understand the language']")
    page.click("#skip-dialog button[value=skip]")
    page.wait_for_function(f"document.body.dataset.item && document.body.dataset.item !== '{first}'")
    assert Skip.objects.get(assignment__item__uuid=first).reason == "I do not understand the language"


def test_question_mark_opens_the_shortcut_help(page):
    page.keyboard.press("?")
    assert page.is_visible("#help") and "Alt" in page.inner_text("#help")
    page.keyboard.press("Escape")
    assert not page.is_visible("#help")


def test_dialogue_and_model_text_is_shown_as_text_never_as_markup(page):
    assert "<script>x</script>" in card(page, 0).locator(".reply-text").inner_text()
    assert "<b>hello</b>" in page.inner_text("#turns")
    assert page.locator("#cards script, #turns b").count() == 0
