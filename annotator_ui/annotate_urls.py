"""Annotator pages (task page, my campaigns)."""

urlpatterns: list = []
