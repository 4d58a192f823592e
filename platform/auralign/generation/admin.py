from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from auralign.core import storage
from auralign.core.errors import ServiceError
from auralign.generation.models import Candidate, GenerationTask, SamplingProgress
from auralign.generation.selectors import campaign_progress, progress_line
from auralign.generation.services import campaign_launch, generation_reconcile, generation_retry_failed


def _player(audio) -> str:
    if audio is None:
        return "—"
    return format_html('<audio controls preload="none" src="{}"></audio>', storage.url(audio.key))


@admin.register(SamplingProgress)
class SamplingProgressAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "progress", "launched_at")
    list_filter = ("status",)
    search_fields = ("name",)
    fields = ("name", "status", "launched_at", "progress", "per_policy", "failures")
    readonly_fields = fields
    actions = ["launch", "retry_failed", "reconcile_now"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress(self, obj):
        return progress_line(campaign_progress(campaign=obj))

    @admin.display(description="per policy")
    def per_policy(self, obj):
        rows = campaign_progress(campaign=obj)["policies"]
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td></tr>",
            ((p["name"], p["succeeded"], p["failed"], p["samples_done"], p["samples_expected"]) for p in rows),
        )
        return format_html("<table><tr><th>policy</th><th>tasks ok</th><th>failed</th><th>samples</th></tr>{}</table>", body)

    @admin.display(description="failures")
    def failures(self, obj):
        rows = campaign_progress(campaign=obj)["failures"]
        if not rows:
            return "none"
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((f["dialogue"], f["policy"], f["attempts"], f["error"]) for f in rows),
        )
        return format_html("<table><tr><th>dialogue</th><th>policy</th><th>attempts</th><th>error</th></tr>{}</table>", body)

    def _each(self, request, queryset, action, done: str):
        for campaign in queryset:
            try:
                action(campaign=campaign)
                self.message_user(request, f"{campaign.name}: {done}")
            except ServiceError as exc:
                self.message_user(request, f"{campaign.name}: {exc.message}", level=messages.ERROR)

    @admin.action(description="Launch sampling (draft campaigns)")
    def launch(self, request, queryset):
        self._each(request, queryset, campaign_launch, "launched")

    @admin.action(description="Retry failed sampling tasks")
    def retry_failed(self, request, queryset):
        self._each(request, queryset, generation_retry_failed, "failed tasks queued again")

    @admin.action(description="Reconcile now (re-dispatch lost jobs, form items)")
    def reconcile_now(self, request, queryset):
        self.message_user(request, f"reconcile: {generation_reconcile()}")


@admin.register(GenerationTask)
class GenerationTaskAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "dialogue", "policy", "status", "attempts", "short_error", "dispatched_at", "finished_at")
    list_filter = ("status", "campaign")
    readonly_fields = [f.name for f in GenerationTask._meta.fields]

    @admin.display(description="error")
    def short_error(self, obj):
        return (obj.error[:100] + "…") if len(obj.error) > 100 else obj.error


@admin.register(Candidate)
class CandidateAdmin(admin.ModelAdmin):
    list_display = ("uuid", "campaign", "policy", "dialogue", "sample_index", "short_reply", "list_player", "created_at")
    list_filter = ("campaign", "policy")
    list_select_related = ("campaign", "policy", "dialogue__dialogue_set", "audio")
    readonly_fields = [f.name for f in Candidate._meta.fields] + ["player", "raw_player"]

    @admin.display(description="reply")
    def short_reply(self, obj):
        return (obj.reply_text[:80] + "…") if len(obj.reply_text) > 80 else obj.reply_text

    @admin.display(description="listen")
    def list_player(self, obj):
        return _player(obj.audio)

    @admin.display(description="listen (normalised)")
    def player(self, obj):
        return _player(obj.audio)

    @admin.display(description="listen (raw)")
    def raw_player(self, obj):
        return _player(obj.raw_audio)
