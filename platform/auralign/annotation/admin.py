from django.contrib import admin

from auralign.annotation.models import Assignment, Item, ItemCandidate, Judgment, Skip


class ItemCandidateInline(admin.TabularInline):
    model = ItemCandidate
    extra = 0
    raw_id_fields = ("candidate",)


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ("uuid", "campaign", "dialogue", "is_gold", "is_honeypot", "slots_used", "overlap", "judgment_count", "completed_at")
    list_filter = ("campaign", "is_gold", "is_honeypot")
    inlines = [ItemCandidateInline]
    raw_id_fields = ("dialogue",)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "item", "annotator", "status", "leased_at", "expires_at")
    list_filter = ("status", "campaign")
    raw_id_fields = ("item",)


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    """Judgments are immutable: the admin shows them read-only."""

    list_display = ("uuid", "campaign", "annotator", "item", "is_late", "is_surplus", "created_at")
    list_filter = ("campaign", "is_late", "is_surplus")

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


admin.site.register(Skip)
