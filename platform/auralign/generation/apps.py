from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "auralign.generation"
    label = "generation"
