"""The annotator's API (`/api/v1/annotate/...`), used by the task page with its session + CSRF.

An annotator reaches only their own leases: every item endpoint looks up the (item, requester)
assignment, so another annotator's item is a 404. Nothing here names a policy."""

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.models import ApiToken
from auralign.annotation.models import Assignment, Item, Judgment
from auralign.annotation.selectors import lease_audio_urls, lease_payload
from auralign.annotation.services import (
    AnnotationConflict,
    assignment_next,
    assignment_skip,
    draft_save,
    judgment_submit,
    lease_heartbeat,
)
from auralign.core.errors import NotFound, ServiceError


def _check_token_scope(request, *, campaign_uuid=None, item_uuid=None) -> None:
    """A campaign-scoped API token reaches only its campaigns (sessions have no scope)."""
    token = request.auth if isinstance(request.auth, ApiToken) else None
    if token is None or not getattr(token, "is_scoped", True):  # authentication read whether it has a scope
        return
    scope = set(token.campaigns.values_list("uuid", flat=True))
    if not scope:
        return
    if campaign_uuid is None:
        campaign_uuid = Item.objects.filter(uuid=item_uuid).values_list("campaign__uuid", flat=True).first()
    if campaign_uuid not in scope:
        raise NotFound("no such campaign")


def judgment_as_dict(judgment: Judgment, *, item_uuid) -> dict:
    return {
        "id": str(judgment.uuid),
        "item": str(item_uuid),
        "client_submission_id": str(judgment.client_submission_id),
        "ranking": judgment.ranking,
        "scores": judgment.scores,
        "flags": judgment.flags,
        "listened": judgment.listened,
        "rationale": judgment.rationale,
        "time_spent_ms": judgment.time_spent_ms,
        "is_late": judgment.is_late,
        "is_surplus": judgment.is_surplus,
        "counted": not judgment.is_surplus,
        "created_at": judgment.created_at,
    }


def next_as_dict(*, campaign_uuid, annotator) -> dict:
    """The annotator's next item as the task page receives it; item null when none is left."""
    lease = assignment_next(campaign=campaign_uuid, annotator=annotator)
    if lease is None:
        return {"item": None, "message": "Nothing left for you in this campaign. Thank you!"}
    return lease_payload(lease.assignment, resumed=lease.resumed, content=lease.content)


class NextApi(APIView):
    @extend_schema(request=None, responses={200: dict}, summary="My next item (my live lease first); item null when none is left")
    def post(self, request, uuid):
        _check_token_scope(request, campaign_uuid=uuid)
        return Response(next_as_dict(campaign_uuid=uuid, annotator=request.user))


class HeartbeatApi(APIView):
    @extend_schema(request=None, responses={200: dict}, summary="Keep my lease while the page is in use")
    def post(self, request, uuid):
        _check_token_scope(request, item_uuid=uuid)
        assignment = lease_heartbeat(item_uuid=uuid, annotator=request.user)
        return Response({"status": assignment.status, "expires_at": assignment.expires_at})


class DraftApi(APIView):
    class InputSerializer(serializers.Serializer):
        draft = serializers.JSONField()

    @extend_schema(request=InputSerializer, responses={204: None}, summary="Autosave my unfinished work")
    def put(self, request, uuid):
        _check_token_scope(request, item_uuid=uuid)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        draft_save(item_uuid=uuid, annotator=request.user, draft=data.validated_data["draft"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class AudioApi(APIView):
    @extend_schema(responses={200: dict}, summary="Fresh short-lived audio URLs for my live lease")
    def get(self, request, uuid):
        _check_token_scope(request, item_uuid=uuid)
        assignment = (
            Assignment.objects.select_related("item").filter(item__uuid=uuid, annotator=request.user).first()
        )
        if assignment is None:
            raise NotFound("you hold no lease on this item")
        if assignment.status != Assignment.Status.LIVE:
            raise AnnotationConflict("audio is only available while you hold the item", code="lease_expired")
        return Response(lease_audio_urls(assignment))


class JudgmentApi(APIView):
    @extend_schema(
        request=dict,
        parameters=[OpenApiParameter(
            "next", bool, description="also lease my next item in this campaign and return it as `next` (as the next"
            " endpoint would; null when it could not be leased, e.g. the campaign is paused: ask the next endpoint)",
        )],
        responses={201: dict, 200: dict},
        summary="Submit my judgment (idempotent by client_submission_id: a resubmission returns the stored one)",
    )
    def post(self, request, uuid):
        _check_token_scope(request, item_uuid=uuid)
        judgment, created = judgment_submit(item_uuid=uuid, annotator=request.user, data=request.data)
        body = judgment_as_dict(judgment, item_uuid=uuid)
        if request.query_params.get("next") in ("1", "true"):
            # The judgment is committed by now: whatever happens to the next lease, it stays stored.
            try:
                body["next"] = next_as_dict(campaign_uuid=judgment.assignment.campaign.uuid, annotator=request.user)
            except ServiceError:
                body["next"] = None
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class SkipApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: dict}, summary="Skip an item, saying why")
    def post(self, request, uuid):
        _check_token_scope(request, item_uuid=uuid)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        skip = assignment_skip(item_uuid=uuid, annotator=request.user, reason=data.validated_data["reason"])
        return Response({"item": str(uuid), "reason": skip.reason, "created_at": skip.created_at})


urlpatterns = [
    path("annotate/campaigns/<uuid:uuid>/next", NextApi.as_view(), name="api-annotate-next"),
    path("annotate/items/<uuid:uuid>/heartbeat", HeartbeatApi.as_view(), name="api-annotate-heartbeat"),
    path("annotate/items/<uuid:uuid>/draft", DraftApi.as_view(), name="api-annotate-draft"),
    path("annotate/items/<uuid:uuid>/audio", AudioApi.as_view(), name="api-annotate-audio"),
    path("annotate/items/<uuid:uuid>/judgment", JudgmentApi.as_view(), name="api-annotate-judgment"),
    path("annotate/items/<uuid:uuid>/skip", SkipApi.as_view(), name="api-annotate-skip"),
]
