from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from auralign.accounts.models import ApiToken, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = BaseUserAdmin.fieldsets + (("Auralign", {"fields": ("is_lead",)}),)
    list_display = ("username", "email", "is_lead", "is_staff", "is_active")
    list_filter = ("is_lead", "is_staff", "is_active")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "read_only", "created_at", "expires_at", "revoked_at")
    readonly_fields = ("prefix", "digest", "created_at", "last_used_at")
    filter_horizontal = ("campaigns",)
