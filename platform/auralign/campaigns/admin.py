from django.contrib import admin

from auralign.campaigns.models import Campaign, CampaignPolicy, Membership


class CampaignPolicyInline(admin.TabularInline):
    model = CampaignPolicy
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "rubric_version", "dialogue_set", "candidates_per_item", "judgments_per_item", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    inlines = [CampaignPolicyInline, MembershipInline]
    readonly_fields = ("uuid", "status", "launched_at", "completed_at")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("campaign", "user", "role", "active")
    list_filter = ("role", "active")
