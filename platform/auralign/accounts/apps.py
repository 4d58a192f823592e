from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "auralign.accounts"
    label = "accounts"
