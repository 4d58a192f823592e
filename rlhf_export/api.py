"""Export snapshots and training runs over the API (docs/export.md, docs/training.md).

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
from auralign.campaigns.models import Campaign
from auralign.core import storage
from auralign.core.errors import Conflict, NotFound, ServiceError
from auralign.policies.models import Policy
from rlhf_export.models import CampaignScoring, ExportSnapshot, TrainingRun
from rlhf_export.selectors import (
    chart_series,
    export_campaigns,
    run_scorings,
    scoring_uncertain_items,
    snapshot_audio_keys,
    snapshots_for,
    training_runs_for,
)
from rlhf_export.services import (
    MAX_PRIORITISE,
    campaign_scoring_create,
    items_prioritise,
    snapshot_create,
    training_run_create,
    training_run_refresh,
)
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


# --- training runs (docs/training.md, "The platform") --------------------------------------------


def _visible_run(request, uuid) -> TrainingRun:
    return get_object_or_404(training_runs_for(user=request.user, token=_token(request)), uuid=uuid)


class ScoringSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    campaign = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    campaign_name = serializers.CharField(source="campaign.name", read_only=True)
    status = serializers.CharField(**STATUS_FIELD)
    agreement = serializers.JSONField(read_only=True, help_text="RM-versus-human pairwise agreement, overall and per criterion")
    uncertain_items = serializers.SerializerMethodField(help_text="the least-certain items (top 20) and their state now")

    class Meta:
        model = CampaignScoring
        fields = ["id", "campaign", "campaign_name", "status", "candidates_scored", "agreement", "uncertain_items", "error",
                  "created_at", "finished_at"]

    def get_uncertain_items(self, scoring) -> list[dict]:
        return scoring_uncertain_items(scoring=scoring)


class TrainingRunSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    status = serializers.CharField(read_only=True, help_text="queued, running, succeeded or failed")
    snapshot = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    base_policy = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    produced_policy = serializers.SerializerMethodField(help_text="the policy a succeeded DPO run registered")
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)
    results = serializers.JSONField(read_only=True, help_text="final metrics (metrics.json): eval accuracy, per criterion, calibration")

    class Meta:
        model = TrainingRun
        fields = [
            "id", "kind", "status", "snapshot", "base_policy", "base_model", "audio_encoder", "config", "policy_name",
            "results", "error", "attempts", "produced_policy", "created_by", "created_at", "started_at", "finished_at",
        ]

    def get_produced_policy(self, run) -> dict | None:
        policy = getattr(run, "produced_policy", None)
        return {"id": str(policy.uuid), "name": policy.name} if policy is not None else None


class TrainingRunListApi(APIView):
    class InputSerializer(serializers.Serializer):
        snapshot = serializers.UUIDField(help_text="a succeeded pairwise, listwise or pairwise_consensus export")
        kind = serializers.ChoiceField(choices=TrainingRun.Kind.choices)
        base_policy = serializers.UUIDField(required=False, allow_null=True, help_text="DPO: the hf policy to train; RM: optional backbone")
        base_model = serializers.JSONField(required=False, allow_null=True, help_text='RM backbone {"path", "gguf_file"} (instead of base_policy)')
        audio_encoder = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
        config = serializers.JSONField(required=False, default=dict, help_text="training options, names as in docs/training.md")
        policy_name = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)

    @extend_schema(responses=TrainingRunSerializer(many=True), summary="Training runs on snapshots I may see")
    def get(self, request):
        return Response(TrainingRunSerializer(training_runs_for(user=request.user, token=_token(request)), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: TrainingRunSerializer}, summary="Start a reward-model or DPO run")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        options = dict(data.validated_data)
        snapshot = snapshots_for(user=request.user, token=_token(request)).filter(uuid=options.pop("snapshot")).first()
        if snapshot is None:
            raise NotFound("no such snapshot, or you are not lead or trainer of every one of its campaigns", field="snapshot")
        policy_uuid = options.pop("base_policy", None)
        base_policy = None
        if policy_uuid is not None:
            base_policy = Policy.objects.filter(uuid=policy_uuid).first()
            if base_policy is None:
                raise NotFound("no such policy", field="base_policy")
        run = training_run_create(user=request.user, snapshot=snapshot, base_policy=base_policy, **options)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailApi(APIView):
    class OutputSerializer(TrainingRunSerializer):
        checkpoint = serializers.CharField(read_only=True, help_text="the trained model folder (local path or s3://)")
        metrics = serializers.JSONField(read_only=True, help_text="live metrics.jsonl records")
        artifacts = serializers.SerializerMethodField(help_text="path, sha256, bytes, key and a short-lived download URL")
        scorings = serializers.SerializerMethodField()

        class Meta(TrainingRunSerializer.Meta):
            fields = [*TrainingRunSerializer.Meta.fields, "checkpoint", "metrics", "artifacts", "scorings"]

        def get_artifacts(self, run) -> list[dict]:
            request, ttl = self.context["request"], settings.MEDIA_URL_TTL_SECONDS
            return [{**a, "url": request.build_absolute_uri(storage.url(a["key"], ttl=ttl))} for a in run.artifacts]

        def get_scorings(self, run) -> list[dict]:
            request = self.context["request"]
            return ScoringSerializer(run_scorings(run=run, user=request.user, token=_token(request)), many=True).data

    @extend_schema(responses=OutputSerializer, summary="One training run: metrics, artifacts, produced policy, scorings")
    def get(self, request, uuid):
        run = training_run_refresh(run=_visible_run(request, uuid))
        return Response(self.OutputSerializer(run, context={"request": request}).data)


class TrainingRunMetricsApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        status = serializers.CharField()
        metrics = serializers.JSONField(help_text="live metrics.jsonl records")
        series = serializers.JSONField(help_text="{train_loss, train_accuracy, eval_loss, eval_accuracy}: [{x: step, y}]")
        error = serializers.CharField()
        finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(responses=OutputSerializer, summary="Live metrics of a run (cheap, for polling)")
    def get(self, request, uuid):
        run = training_run_refresh(run=_visible_run(request, uuid))
        return Response({
            "id": run.uuid, "status": run.status, "metrics": run.metrics, "series": chart_series(run.metrics),
            "error": run.error, "finished_at": run.finished_at,
        })


def _run_campaign(request, run: TrainingRun, campaign_uuid) -> Campaign:
    campaign = run.snapshot.campaigns.filter(uuid=campaign_uuid).first() or Campaign.objects.filter(uuid=campaign_uuid).first()
    if campaign is None or not export_campaigns(user=request.user, token=_token(request)).filter(pk=campaign.pk).exists():
        raise NotFound("no such campaign, or you are not its lead or trainer", field="campaign")
    return campaign


class TrainingRunScoreApi(APIView):
    class InputSerializer(serializers.Serializer):
        campaign = serializers.UUIDField(help_text="the campaign whose candidates the reward model scores")

    @extend_schema(request=InputSerializer, responses={202: ScoringSerializer}, summary="Score a campaign's candidates with this reward model")
    def post(self, request, uuid):
        run = _visible_run(request, uuid)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = _run_campaign(request, run, data.validated_data["campaign"])
        scoring = campaign_scoring_create(run=run, campaign=campaign, user=request.user)
        return Response(ScoringSerializer(scoring).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunPrioritiseApi(APIView):
    class InputSerializer(serializers.Serializer):
        campaign = serializers.UUIDField()
        n = serializers.IntegerField(min_value=1, max_value=MAX_PRIORITISE, help_text="how many of the least-certain open items")

    class OutputSerializer(serializers.Serializer):
        items = serializers.ListField(child=serializers.DictField(), help_text="[{item, priority}], least certain first")

    @extend_schema(request=InputSerializer, responses=OutputSerializer, summary="Serve the N least-certain open items first (campaign lead)")
    def post(self, request, uuid):
        run = _visible_run(request, uuid)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = _run_campaign(request, run, data.validated_data["campaign"])
        scoring = run.scorings.filter(campaign=campaign).first()
        if scoring is None:
            raise Conflict("score this campaign with this reward model first")
        items = items_prioritise(scoring=scoring, n=data.validated_data["n"], user=request.user)
        return Response({"items": [{"item": str(i.uuid), "priority": i.priority} for i in items]})


urlpatterns += [
    path("training-runs", TrainingRunListApi.as_view(), name="api-training-runs"),
    path("training-runs/<uuid:uuid>", TrainingRunDetailApi.as_view(), name="api-training-run"),
    path("training-runs/<uuid:uuid>/metrics", TrainingRunMetricsApi.as_view(), name="api-training-run-metrics"),
    path("training-runs/<uuid:uuid>/score", TrainingRunScoreApi.as_view(), name="api-training-run-score"),
    path("training-runs/<uuid:uuid>/prioritise", TrainingRunPrioritiseApi.as_view(), name="api-training-run-prioritise"),
]
