from django.apps import AppConfig


class RlhfExportConfig(AppConfig):
    """Export snapshots and training runs (platform side). rlhf_export/training/ is Django-free."""

    name = "rlhf_export"
    label = "rlhf_export"
    verbose_name = "Exports and training"
