"""Project-lead pages (campaigns, rubrics, dashboards)."""

urlpatterns: list = []
