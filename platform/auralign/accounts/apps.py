from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "auralign.accounts"
    label = "accounts"

    def ready(self):
        from auralign.accounts import schema  # noqa: F401  (registers the OpenAPI auth extension)
