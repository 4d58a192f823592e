from django.contrib import admin

from auralign.policies.models import Policy


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("name", "backend", "parent", "archived", "created_at")
    list_filter = ("backend", "archived")
    search_fields = ("name",)
    readonly_fields = ("uuid", "created_at", "produced_by_run")
