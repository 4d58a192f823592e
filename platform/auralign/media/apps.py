from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "auralign.media"
    label = "media"
