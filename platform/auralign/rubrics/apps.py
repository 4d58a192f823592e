from django.apps import AppConfig


class RubricsConfig(AppConfig):
    name = "auralign.rubrics"
    label = "rubrics"
