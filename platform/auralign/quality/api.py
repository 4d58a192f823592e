"""Quality API: every dashboard figure (leads and trainers; the annotator table: leads only),
and the lead's gold, honeypot and recompute actions. Figures are read from the precomputed
tables; nothing is computed in a request."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.annotation.models import Item
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.permissions import require_campaign_role
from auralign.quality import selectors
from auralign.quality.honeypots import DEGRADATIONS
from auralign.quality.services import (
    gold_import,
    honeypots_create,
    item_gold_clear,
    item_gold_set,
    quality_schedule_recompute,
)

LEAD, TRAINER = Membership.Role.LEAD, Membership.Role.TRAINER
FIGURE_READERS = {LEAD, TRAINER}


def _campaign(request, uuid, roles) -> Campaign:
    campaign = get_object_or_404(Campaign, uuid=uuid)
    require_campaign_role(request, campaign, roles)
    return campaign


def _figures(campaign: Campaign, key: str) -> dict:
    quality = selectors.campaign_quality(campaign=campaign)
    return {**selectors.quality_freshness(campaign=campaign, quality=quality), key: getattr(quality, key) if quality else {}}


class QualitySummaryApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Progress, agreement and flags of a campaign (leads, trainers)")
    def get(self, request, uuid):
        campaign = _campaign(request, uuid, FIGURE_READERS)
        quality = selectors.campaign_quality(campaign=campaign)
        body = selectors.quality_freshness(campaign=campaign, quality=quality)
        for key in ("progress", "agreement", "flags"):
            body[key] = getattr(quality, key) if quality else {}
        return Response(body)


def _figure_api(key: str, summary: str):
    class FigureApi(APIView):
        @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary=summary, operation_id=f"campaign_quality_{key}")
        def get(self, request, uuid):
            return Response(_figures(_campaign(request, uuid, FIGURE_READERS), key))

    FigureApi.__name__ = FigureApi.__qualname__ = f"Quality{key.title()}Api"
    return FigureApi


QualityProgressApi = _figure_api("progress", "Progress and throughput over time (leads, trainers)")
QualityAgreementApi = _figure_api("agreement", "Krippendorff's α and pairwise agreement per criterion (leads, trainers)")
QualityFlagsApi = _figure_api("flags", "Broken / unsafe / none-acceptable flags (leads, trainers)")


class LeaderboardApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("view", str, description="'ranking', 'score' or 'criterion.<key>' (default 'ranking')"),
            OpenApiParameter("min_weight", float, description="reliability threshold, one of the listed thresholds (default 0)"),
        ],
        responses={200: OpenApiTypes.OBJECT},
        summary="Bradley–Terry strengths per policy with bootstrap CIs, win-rate matrix (leads, trainers)",
    )
    def get(self, request, uuid):
        campaign = _campaign(request, uuid, FIGURE_READERS)
        quality = selectors.campaign_quality(campaign=campaign)
        body = selectors.quality_freshness(campaign=campaign, quality=quality)
        views = quality.leaderboard.get("views", []) if quality else []
        thresholds = quality.leaderboard.get("thresholds", []) if quality else []
        view = request.query_params.get("view", "ranking")
        try:
            min_weight = float(request.query_params.get("min_weight", "0"))
        except ValueError:
            return Response({"min_weight": ["must be a number"]}, status=400)
        if views and view not in {v["key"] for v in views}:
            return Response({"view": [f"unknown view '{view}'; choose one of: {', '.join(v['key'] for v in views)}"]}, status=400)
        if thresholds and min_weight not in thresholds:
            return Response({"min_weight": [f"choose one of: {', '.join(f'{t:g}' for t in thresholds)}"]}, status=400)
        board = selectors.leaderboard_board(quality=quality, view=view, min_weight=min_weight)
        return Response({**body, "views": views, "thresholds": thresholds, "view": view, "min_weight": min_weight, "board": board})


class AnnotatorStatsApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Per-annotator stats and warnings (leads only)")
    def get(self, request, uuid):
        campaign = _campaign(request, uuid, {LEAD})
        quality = selectors.campaign_quality(campaign=campaign)
        return Response(
            {
                **selectors.quality_freshness(campaign=campaign, quality=quality),
                "warnings": selectors.WARNINGS,
                "annotators": selectors.annotator_table(campaign=campaign),
            }
        )


class ItemConsensusApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Consensus ranking and agreement per item (leads, trainers)")
    def get(self, request, uuid):
        campaign = _campaign(request, uuid, FIGURE_READERS)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.item_consensus_list(campaign=campaign), request, view=self)
        return paginator.get_paginated_response(
            [{"item": str(c.item.uuid), "judgments": c.judgments, "agreement": c.agreement, "ranking": c.ranking} for c in page]
        )


class RecomputeApi(APIView):
    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT}, summary="Queue a recompute of the figures (leads)")
    def post(self, request, uuid):
        campaign = _campaign(request, uuid, {LEAD})
        queued = quality_schedule_recompute(campaign.pk, countdown=0)
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class CampaignItemsApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Items with candidates, gold and honeypot marks (leads)")
    def get(self, request, uuid):
        campaign = _campaign(request, uuid, {LEAD})
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.campaign_items(campaign=campaign), request, view=self)
        return paginator.get_paginated_response([item_as_dict(i) for i in page])


def item_as_dict(item: Item) -> dict:
    return {
        "id": str(item.uuid),
        "dialogue": item.dialogue.external_id,
        "is_gold": item.is_gold,
        "gold_ranking": item.gold_ranking,
        "gold_pairs": item.gold_pairs,
        "is_honeypot": item.is_honeypot,
        "overlap": item.overlap,
        "judgments": item.judgment_count,
        "candidates": [
            {
                "id": str(link.candidate.uuid),
                "policy": link.candidate.policy.name,
                "sample_index": link.candidate.sample_index,
                "degradation": link.candidate.degradation or None,
            }
            for link in item.item_candidates.all()
        ],
    }


class ItemGoldApi(APIView):
    class InputSerializer(serializers.Serializer):
        ranking = serializers.ListField(child=serializers.ListField(child=serializers.CharField()), required=False)
        pairs = serializers.ListField(child=serializers.ListField(child=serializers.CharField()), required=False)

    @extend_schema(request=InputSerializer, responses={200: OpenApiTypes.OBJECT}, summary="Make an item gold (leads)")
    def put(self, request, uuid, item_uuid):
        campaign = _campaign(request, uuid, {LEAD})
        item = get_object_or_404(Item, campaign=campaign, uuid=item_uuid)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = item_gold_set(item=item, ranking=data.validated_data.get("ranking"), pairs=data.validated_data.get("pairs"))
        return Response(item_as_dict(selectors.campaign_items(campaign=campaign).get(pk=item.pk)))

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Make a gold item regular again (leads)")
    def delete(self, request, uuid, item_uuid):
        campaign = _campaign(request, uuid, {LEAD})
        item = item_gold_clear(item=get_object_or_404(Item, campaign=campaign, uuid=item_uuid))
        return Response(item_as_dict(selectors.campaign_items(campaign=campaign).get(pk=item.pk)))


class GoldImportApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="JSONL, one gold item per line (docs/quality.md)")

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT}, summary="Import gold items from JSONL (leads)")
    def post(self, request, uuid):
        campaign = _campaign(request, uuid, {LEAD})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = gold_import(campaign=campaign, data=data.validated_data["file"].read())
        return Response({"marked": marked}, status=status.HTTP_201_CREATED)


class HoneypotsApi(APIView):
    parser_classes = [JSONParser, FormParser]

    class InputSerializer(serializers.Serializer):
        count = serializers.IntegerField(min_value=1, max_value=100)
        kinds = serializers.ListField(child=serializers.ChoiceField(choices=list(DEGRADATIONS)), min_length=1)
        seed = serializers.IntegerField(required=False, default=0)

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT}, summary="Plant degraded-audio honeypot items (leads)")
    def post(self, request, uuid):
        campaign = _campaign(request, uuid, {LEAD})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        made = honeypots_create(campaign=campaign, **data.validated_data)
        items = selectors.campaign_items(campaign=campaign).filter(pk__in=[i.pk for i in made])
        return Response({"items": [item_as_dict(i) for i in items]}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path("campaigns/<uuid:uuid>/quality", QualitySummaryApi.as_view(), name="api-quality"),
    path("campaigns/<uuid:uuid>/quality/progress", QualityProgressApi.as_view(), name="api-quality-progress"),
    path("campaigns/<uuid:uuid>/quality/agreement", QualityAgreementApi.as_view(), name="api-quality-agreement"),
    path("campaigns/<uuid:uuid>/quality/flags", QualityFlagsApi.as_view(), name="api-quality-flags"),
    path("campaigns/<uuid:uuid>/quality/leaderboard", LeaderboardApi.as_view(), name="api-quality-leaderboard"),
    path("campaigns/<uuid:uuid>/quality/annotators", AnnotatorStatsApi.as_view(), name="api-quality-annotators"),
    path("campaigns/<uuid:uuid>/quality/items", ItemConsensusApi.as_view(), name="api-quality-items"),
    path("campaigns/<uuid:uuid>/quality/recompute", RecomputeApi.as_view(), name="api-quality-recompute"),
    path("campaigns/<uuid:uuid>/items", CampaignItemsApi.as_view(), name="api-campaign-items"),
    path("campaigns/<uuid:uuid>/items/<uuid:item_uuid>/gold", ItemGoldApi.as_view(), name="api-item-gold"),
    path("campaigns/<uuid:uuid>/gold/import", GoldImportApi.as_view(), name="api-gold-import"),
    path("campaigns/<uuid:uuid>/honeypots", HoneypotsApi.as_view(), name="api-honeypots"),
]
