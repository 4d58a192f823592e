from django.contrib import admin

from rlhf_export.models import ExportSnapshot


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
