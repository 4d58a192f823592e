"""Export pages (leads and trainers)."""

from django.urls import path

from annotator_ui import export_views

urlpatterns = [
    path("", export_views.export_list, name="export-list"),
    path("<uuid:uuid>/", export_views.export_detail, name="export-detail"),
]
