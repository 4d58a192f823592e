from django.contrib import admin
from django.utils.html import format_html

from auralign.core import storage
from auralign.generation.models import Candidate, GenerationTask


@admin.register(GenerationTask)
class GenerationTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "dialogue", "policy", "status", "attempts", "dispatched_at", "finished_at")
    list_filter = ("status", "campaign")
    readonly_fields = [f.name for f in GenerationTask._meta.fields]


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ("uuid", "campaign", "policy", "dialogue", "sample_index", "short_reply", "created_at")
    list_filter = ("campaign", "policy")
    readonly_fields = [f.name for f in Candidate._meta.fields] + ["player"]

    @admin.display(description="reply")
    def short_reply(self, obj):
        return (obj.reply_text[:80] + "…") if len(obj.reply_text) > 80 else obj.reply_text

    @admin.display(description="listen")
    def player(self, obj):
        if not obj.audio_id:
            return "—"
        return format_html('<audio controls preload="none" src="{}"></audio>', storage.url(obj.audio.key))
