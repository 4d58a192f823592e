from django.contrib import admin
from django.utils.html import format_html

from auralign.core import storage
from auralign.media.models import AudioAsset


@admin.register(AudioAsset)
class AudioAssetAdmin(admin.ModelAdmin):
    list_display = ("sha256", "format", "sample_rate", "channels", "duration_s", "lufs", "created_at")
    search_fields = ("sha256",)
    readonly_fields = [f.name for f in AudioAsset._meta.fields] + ["player"]
    exclude = ("peaks",)

    @admin.display(description="listen")
    def player(self, obj):
        return format_html('<audio controls preload="none" src="{}"></audio>', storage.url(obj.key))
