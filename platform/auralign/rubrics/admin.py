from django.contrib import admin

from auralign.rubrics.models import Criterion, Rubric, RubricVersion


class CriterionInline(admin.TabularInline):
    model = Criterion
    extra = 0

    def has_change_permission(self, request, obj=None):
        return not (obj and obj.is_frozen)

    has_add_permission = has_delete_permission = has_change_permission


@admin.register(Rubric)
class RubricAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")


@admin.register(RubricVersion)
class RubricVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "frozen_at", "created_at")
    list_filter = ("rubric",)
    inlines = [CriterionInline]
    readonly_fields = ("frozen_at",)

    def get_readonly_fields(self, request, obj=None):
        if obj and obj.is_frozen:
            return ("rubric", "version", "instructions", "changelog", "frozen_at", "created_by")
        return self.readonly_fields
