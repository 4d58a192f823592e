"""Annotator pages (task page, my campaigns)."""

from django.urls import path

from annotator_ui import views

urlpatterns = [
    path("annotate/<uuid:uuid>/", views.annotate, name="annotate"),
]
