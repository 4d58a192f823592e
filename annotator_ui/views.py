from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from auralign.annotation.models import Assignment
from auralign.annotation.selectors import annotator_campaigns, task_page_config
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.selectors import campaigns_for_user


@login_required
def home(request):
    """My campaigns: the ones I annotate (with progress), then the others I belong to."""
    annotating = annotator_campaigns(user=request.user)
    mine = {row["campaign"].pk for row in annotating}
    others = [c for c in campaigns_for_user(user=request.user) if c.pk not in mine]
    can_train = campaigns_for_user(user=request.user, roles={Membership.Role.LEAD, Membership.Role.TRAINER}).exists()
    return render(request, "annotator_ui/home.html", {"annotating": annotating, "others": others, "can_train": can_train})


@login_required
def annotate(request, uuid):
    """The task page. Item data arrives over the annotate API; the page holds the rubric."""
    campaign = Campaign.objects.select_related("rubric_version").filter(uuid=uuid).first()
    if campaign is None or not Membership.objects.filter(
        campaign=campaign, user=request.user, role=Membership.Role.ANNOTATOR, active=True
    ).exists():
        raise Http404("no such campaign")
    config = task_page_config(campaign)
    config["judged"] = Assignment.objects.filter(
        campaign=campaign, annotator=request.user, status=Assignment.Status.SUBMITTED
    ).count()
    return render(
        request,
        "annotator_ui/annotate.html",
        {"campaign": campaign, "rubric": campaign.rubric_version, "criteria": config["criteria"], "config": config},
    )
