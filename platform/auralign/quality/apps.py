from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "auralign.quality"
    label = "quality"
