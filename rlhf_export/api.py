"""Export snapshots over the API (docs/export.md).

Leads and trainers of every campaign a snapshot covers may see it; a campaign-scoped token only
sees snapshots whose campaigns it covers. Creating one needs a session or a token that is not
read-only (read-only trainer tokens pull, they do not create).
"""

from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.models import ApiToken
from auralign.core import storage
from auralign.core.errors import Conflict, NotFound, ServiceError
from rlhf_export.models import ExportSnapshot
from rlhf_export.selectors import export_campaigns, snapshot_audio_keys, snapshots_for
from rlhf_export.services import snapshot_create
from rlhf_export.spec import FORMATS

MAX_AUDIO_KEYS = 200


def _token(request) -> ApiToken | None:
    return request.auth if isinstance(request.auth, ApiToken) else None


def _visible(request, uuid) -> ExportSnapshot:
    return get_object_or_404(snapshots_for(user=request.user, token=_token(request)), uuid=uuid)


# A plain string in the schema: an enum named "status" would collide with the campaigns' one.
STATUS_FIELD = {"read_only": True, "help_text": "pending, running, succeeded or failed"}


class SnapshotSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    status = serializers.CharField(**STATUS_FIELD)
    campaigns = serializers.SlugRelatedField(slug_field="uuid", many=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = ExportSnapshot
        fields = [
            "id", "kind", "status", "progress", "rows", "error", "campaigns", "spec", "watermark", "schema_version",
            "files", "created_by", "created_at", "started_at", "finished_at",
        ]


class ExportFiltersSerializer(serializers.Serializer):
    """Filters of an export (rlhf_export.spec.DEFAULT_FILTERS); unknown keys are refused, not ignored."""

    rubric_versions = serializers.ListField(child=serializers.CharField(), required=False, help_text="'slug@version' labels")
    exclude_gold = serializers.BooleanField(required=False)
    exclude_honeypots = serializers.BooleanField(required=False)
    exclude_flagged = serializers.BooleanField(required=False)
    min_reliability = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    min_agreement = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    qualified_only = serializers.BooleanField(required=False)
    judged_after = serializers.DateTimeField(required=False, allow_null=True)
    judged_before = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data):
        unknown = set(data) - set(self.fields) if isinstance(data, dict) else set()
        if unknown:
            raise serializers.ValidationError(f"unknown filter(s): {', '.join(sorted(unknown))}")
        return super().to_internal_value(data)


class ExportListApi(APIView):
    class InputSerializer(serializers.Serializer):
        campaigns = serializers.ListField(child=serializers.UUIDField(), min_length=1)
        kind = serializers.ChoiceField(choices=ExportSnapshot.Kind.choices)
        filters = ExportFiltersSerializer(required=False)
        splits = serializers.DictField(child=serializers.FloatField(), required=False, help_text="train/validation/test fractions")
        split_seed = serializers.CharField(required=False, max_length=100, allow_blank=True)
        formats = serializers.ListField(child=serializers.ChoiceField(choices=FORMATS), required=False, min_length=1)
        rows_per_shard = serializers.IntegerField(required=False)

    @extend_schema(responses=SnapshotSerializer(many=True), summary="Export snapshots I may pull")
    def get(self, request):
        snapshots = snapshots_for(user=request.user, token=_token(request)).prefetch_related("campaigns")
        return Response(SnapshotSerializer(snapshots, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: SnapshotSerializer}, summary="Create an export (runs in the background)")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = dict(data.validated_data)
        wanted = set(options.pop("campaigns"))
        campaigns = list(export_campaigns(user=request.user, token=_token(request)).filter(uuid__in=wanted))
        if len(campaigns) != len(wanted):
            raise ServiceError("unknown campaign, or you are not its lead or trainer", field="campaigns")
        snapshot = snapshot_create(user=request.user, campaigns=campaigns, **options)
        return Response(SnapshotSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class ExportDetailApi(APIView):
    class OutputSerializer(SnapshotSerializer):
        manifest = serializers.JSONField(read_only=True)
        urls = serializers.SerializerMethodField(help_text="path -> short-lived URL, for manifest.json and every file")
        urls_expire_in = serializers.SerializerMethodField()

        class Meta(SnapshotSerializer.Meta):
            fields = [*SnapshotSerializer.Meta.fields, "manifest", "urls", "urls_expire_in"]

        def get_urls(self, snapshot) -> dict[str, str]:
            if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
                return {}
            request = self.context["request"]
            paths = ["manifest.json", *(f["path"] for f in snapshot.files)]
            return {p: request.build_absolute_uri(storage.url(snapshot.prefix + p, ttl=settings.MEDIA_URL_TTL_SECONDS)) for p in paths}

        def get_urls_expire_in(self, snapshot) -> int:
            return settings.MEDIA_URL_TTL_SECONDS

    @extend_schema(responses=OutputSerializer, summary="One snapshot: its manifest and short-lived URLs of its files")
    def get(self, request, uuid):
        snapshot = _visible(request, uuid)
        return Response(self.OutputSerializer(snapshot, context={"request": request}).data)


class ExportProgressApi(APIView):
    class OutputSerializer(serializers.ModelSerializer):
        id = serializers.UUIDField(source="uuid", read_only=True)
        status = serializers.CharField(**STATUS_FIELD)

        class Meta:
            model = ExportSnapshot
            fields = ["id", "status", "progress", "rows", "error", "finished_at"]

    @extend_schema(responses=OutputSerializer, summary="Progress of a snapshot (cheap, for polling)")
    def get(self, request, uuid):
        return Response(self.OutputSerializer(_visible(request, uuid)).data)


class ExportAudioApi(APIView):
    class OutputSerializer(serializers.Serializer):
        urls = serializers.DictField(child=serializers.CharField(), help_text="audio key -> short-lived URL")
        urls_expire_in = serializers.IntegerField()

    @extend_schema(
        parameters=[OpenApiParameter("key", str, many=True, required=True, description=f"audio keys (1-{MAX_AUDIO_KEYS})")],
        responses=OutputSerializer,
        summary="Resolve audio keys referenced by a snapshot to short-lived URLs",
    )
    def get(self, request, uuid):
        snapshot = _visible(request, uuid)
        if snapshot.status != ExportSnapshot.Status.SUCCEEDED:
            raise Conflict(f"the snapshot is {snapshot.status}")
        keys = sorted(set(request.query_params.getlist("key")))
        if not 1 <= len(keys) <= MAX_AUDIO_KEYS:
            raise ServiceError(f"give between 1 and {MAX_AUDIO_KEYS} audio keys", field="key")
        unknown = set(keys) - snapshot_audio_keys(snapshot=snapshot, keys=keys)
        if unknown:
            raise NotFound(f"not audio of this snapshot's campaigns: {', '.join(sorted(unknown)[:5])}", field="key")
        ttl = settings.MEDIA_URL_TTL_SECONDS
        urls = {k: request.build_absolute_uri(storage.url(k, ttl=ttl)) for k in keys}
        return Response({"urls": urls, "urls_expire_in": ttl})


urlpatterns = [
    path("exports", ExportListApi.as_view(), name="api-exports"),
    path("exports/<uuid:uuid>", ExportDetailApi.as_view(), name="api-export"),
    path("exports/<uuid:uuid>/progress", ExportProgressApi.as_view(), name="api-export-progress"),
    path("exports/<uuid:uuid>/audio", ExportAudioApi.as_view(), name="api-export-audio"),
]
