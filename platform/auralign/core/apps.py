from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "auralign.core"
    label = "core"
    verbose_name = "Auralign core"
