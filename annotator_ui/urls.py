"""Browser pages. Annotator pages live in annotate_urls, lead pages in lead_urls."""

from django.contrib.auth import views as auth_views
from django.urls import include, path

from annotator_ui import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(template_name="annotator_ui/login.html", redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("", include("annotator_ui.annotate_urls")),
    path("lead/", include("annotator_ui.lead_urls")),
    path("exports/", include("annotator_ui.export_urls")),
    path("training/", include("annotator_ui.training_urls")),
]
