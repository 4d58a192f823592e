"""Lead pages in a real Chromium against a live server: the dashboard draws its charts, and a
campaign is created from the browser with its preview."""


import pytest

from auralign.campaigns.models import Campaign
from auralign.quality.services import quality_recompute
from tests.factories import (
    make_campaign,
    make_dialogue_set,
    make_items,
    make_judgment,
    make_policy,
    make_rubric,
    make_user,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def browser_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


DRAWN_PIXELS = """(id) => {
  const canvas = document.getElementById(id);
  if (!window.Chart.getChart(canvas)) return 0;
  const ctx = canvas.getContext("2d");
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let drawn = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++;
  return drawn;
}"""


def test_dashboard_draws_its_charts_from_the_quality_api(browser_page, live_server):
    lead = make_user("lead-e2e", is_lead=True)
    annotators = [make_user(f"ann-{i}") for i in range(3)]
    campaign = make_campaign(lead=lead, annotators=annotators, dialogues=4, k=2, overlap=3)
    for item in make_items(campaign):
        for user in annotators:
            make_judgment(item, user)
    quality_recompute(campaign_id=campaign.pk)
    page = browser_page
    log_in(page, live_server, lead)
    page.goto(f"{live_server.url}/lead/campaigns/{campaign.uuid}/dashboard")
    page.wait_for_function("document.body.dataset.dashboard === 'ready'")
    page.wait_for_timeout(800)  # let Chart.js finish its first animation frame
    for chart in ("progress-chart", "agreement-chart", "leaderboard-chart"):
        assert page.evaluate(DRAWN_PIXELS, chart) > 500, f"{chart} drew nothing"
    assert page.locator("#annotators tbody tr").count() == 3
    assert page.locator("#winrate tr").count() == 3  # header + two policies


def test_annotator_table_sorts_by_a_clicked_column(browser_page, live_server):
    lead = make_user("lead-sort", is_lead=True)
    fast, slow = make_user("zed-fast"), make_user("amy-slow")
    campaign = make_campaign(lead=lead, annotators=[fast, slow], dialogues=2)
    for item in make_items(campaign):
        make_judgment(item, fast, time_spent_ms=5_000)
        make_judgment(item, slow, time_spent_ms=50_000)
    quality_recompute(campaign_id=campaign.pk)
    page = browser_page
    log_in(page, live_server, lead)
    page.goto(f"{live_server.url}/lead/campaigns/{campaign.uuid}/dashboard")
    page.wait_for_function("document.body.dataset.dashboard === 'ready'")
    first_name = lambda: page.locator("#annotators tbody tr td").first.text_content()  # noqa: E731
    assert first_name() == "amy-slow"  # by username
    page.click("#annotators th[data-key=median_time_ms]")
    assert first_name() == "zed-fast"
    page.click("#annotators th[data-key=median_time_ms]")
    assert first_name() == "amy-slow"


def test_lead_creates_a_campaign_in_the_browser_after_previewing_it(browser_page, live_server):
    lead = make_user("lead-create", is_lead=True)
    rubric = make_rubric(slug="browser-rubric")
    ds = make_dialogue_set(2, name="browser-set")
    policies = [make_policy("model-one"), make_policy("model-two")]
    page = browser_page
    log_in(page, live_server, lead)
    page.goto(f"{live_server.url}/lead/campaigns/new")
    page.fill("input[name=name]", "browser campaign")
    page.select_option("select[name=rubric_version]", str(rubric.pk))
    page.select_option("select[name=dialogue_set]", str(ds.pk))
    for p in policies:
        page.check(f"input[name=policy_{p.uuid}]")
    page.click("button[name=preview]")
    preview = page.locator("section.preview")
    assert preview.locator("article.reply-card").count() == 2
    assert "model-one" not in preview.inner_text()
    page.click("button[name=create]")
    page.wait_for_url(f"{live_server.url}/lead/campaigns/*/")
    assert page.locator("#campaign-status").text_content() == "draft"
    campaign = Campaign.objects.get(name="browser campaign")
    assert (campaign.rubric_version_id, campaign.campaign_policies.count()) == (rubric.pk, 2)
