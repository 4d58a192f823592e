from django.apps import AppConfig


class AnnotatorUiConfig(AppConfig):
    name = "annotator_ui"
    verbose_name = "Annotator and lead pages"
