"""Project-lead pages (campaigns, rubrics, dashboards), mounted at /lead/."""

from django.urls import path

from annotator_ui import lead_views as views

urlpatterns = [
    path("", views.home, name="lead-home"),
    path("rubrics/", views.rubrics, name="lead-rubrics"),
    path("rubrics/new", views.rubric_new, name="lead-rubric-new"),
    path("rubrics/<slug:slug>/", views.rubric_detail, name="lead-rubric"),
    path("rubrics/<slug:slug>/diff", views.rubric_diff, name="lead-rubric-diff"),
    path("policies/", views.policies, name="lead-policies"),
    path("policies/<uuid:uuid>/archive", views.policy_archive, name="lead-policy-archive"),
    path("dialogue-sets/", views.dialogue_sets, name="lead-dialogue-sets"),
    path("campaigns/new", views.campaign_new, name="lead-campaign-new"),
    path("campaigns/<uuid:uuid>/", views.campaign_detail, name="lead-campaign"),
    path("campaigns/<uuid:uuid>/status", views.campaign_status, name="lead-campaign-status"),
    path("campaigns/<uuid:uuid>/members/add", views.campaign_members_add, name="lead-campaign-members-add"),
    path("campaigns/<uuid:uuid>/members/remove", views.campaign_members_remove, name="lead-campaign-members-remove"),
    path("campaigns/<uuid:uuid>/preview", views.campaign_preview, name="lead-campaign-preview"),
    path("campaigns/<uuid:uuid>/dashboard", views.campaign_dashboard, name="lead-campaign-dashboard"),
    path("campaigns/<uuid:uuid>/items", views.campaign_items, name="lead-campaign-items"),
]
