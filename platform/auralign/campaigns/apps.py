from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "auralign.campaigns"
    label = "campaigns"
