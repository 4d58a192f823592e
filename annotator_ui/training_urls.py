"""Training pages (leads and trainers)."""

from django.urls import path

from annotator_ui import training_views

urlpatterns = [
    path("", training_views.training_list, name="training-list"),
    path("<uuid:uuid>/", training_views.training_detail, name="training-detail"),
]
