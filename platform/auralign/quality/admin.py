from django.contrib import admin

from auralign.quality.models import AnnotatorStats, CampaignQuality


class ReadOnly(admin.ModelAdmin):
    """Written by the recompute task only."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CampaignQuality)
class CampaignQualityAdmin(ReadOnly):
    list_display = ("campaign", "computed_at", "judgment_count", "duration_ms", "scheduled_at")


@admin.register(AnnotatorStats)
class AnnotatorStatsAdmin(ReadOnly):
    list_display = ("campaign", "annotator", "judgments", "qualified", "gold_accuracy", "loo_agreement", "weight")
    list_filter = ("campaign", "qualified")
