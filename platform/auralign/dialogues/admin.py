from django.contrib import admin
from django.utils.html import format_html

from auralign.core import storage
from auralign.dialogues.models import Dialogue, DialogueImport, DialogueSet, Turn


class TurnInline(admin.TabularInline):
    model = Turn
    extra = 0
    fields = ("index", "role", "text", "player")
    readonly_fields = ("index", "role", "text", "player")
    can_delete = False

    @admin.display(description="audio")
    def player(self, obj):
        if not obj.audio_id:
            return "—"
        return format_html('<audio controls preload="none" src="{}"></audio>', storage.url(obj.audio.key))

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(DialogueSet)
class DialogueSetAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(Dialogue)
class DialogueAdmin(admin.ModelAdmin):
    list_display = ("external_id", "dialogue_set", "created_at")
    list_filter = ("dialogue_set",)
    search_fields = ("external_id",)
    inlines = [TurnInline]
    readonly_fields = ("uuid", "content_sha256")


@admin.register(DialogueImport)
class DialogueImportAdmin(admin.ModelAdmin):
    list_display = ("dialogue_set", "source", "status", "progress", "created", "unchanged", "created_at")
    readonly_fields = [f.name for f in DialogueImport._meta.fields]
