"""REST API v1: each app contributes its routes."""

from django.urls import include, path

urlpatterns = [
    # First: the annotator's next/submit calls are most of the traffic, and the resolver tries
    # the includes in order (no other app's routes start with annotate/).
    path("", include("auralign.annotation.api")),
    path("", include("auralign.accounts.api")),
    path("", include("auralign.rubrics.api")),
    path("", include("auralign.policies.api")),
    path("", include("auralign.dialogues.api")),
    path("", include("auralign.campaigns.api")),
    path("", include("auralign.quality.api")),
    path("", include("auralign.generation.api")),
    path("", include("rlhf_export.api")),
]
