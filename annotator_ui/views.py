from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from auralign.campaigns.selectors import campaigns_for_user


@login_required
def home(request):
    campaigns = campaigns_for_user(user=request.user).select_related("rubric_version__rubric")
    return render(request, "annotator_ui/home.html", {"campaigns": campaigns})
