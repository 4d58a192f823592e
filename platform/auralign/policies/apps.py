from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "auralign.policies"
    label = "policies"
