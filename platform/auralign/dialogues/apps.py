from django.apps import AppConfig


class DialoguesConfig(AppConfig):
    name = "auralign.dialogues"
    label = "dialogues"
