from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "auralign.annotation"
    label = "annotation"
