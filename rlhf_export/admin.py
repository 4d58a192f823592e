from django.contrib import admin

from rlhf_export.models import CampaignScoring, ExportSnapshot, TrainingRun


@admin.register(ExportSnapshot)
class ExportSnapshotAdmin(admin.ModelAdmin):
    """Read-only: snapshots are created by the export service and immutable once done."""

    list_display = ["uuid", "kind", "status", "rows", "created_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    search_fields = ["uuid"]
    readonly_fields = [f.name for f in ExportSnapshot._meta.get_fields() if f.concrete and not f.many_to_many] + ["campaigns"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Read-only: runs are created by the training service and written by their tasks."""

    list_display = ["uuid", "kind", "status", "snapshot", "base_policy", "created_by", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    search_fields = ["uuid", "snapshot__uuid"]
    readonly_fields = [f.name for f in TrainingRun._meta.get_fields() if f.concrete]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CampaignScoring)
class CampaignScoringAdmin(admin.ModelAdmin):
    list_display = ["uuid", "run", "campaign", "status", "candidates_scored", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in CampaignScoring._meta.get_fields() if f.concrete]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
