"""Sampling API: launch a campaign, watch its progress, retry failed sampling (leads; progress
also for trainers). Annotators never reach these: progress names the policies."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.permissions import require_campaign_role
from auralign.generation.selectors import campaign_progress
from auralign.generation.services import campaign_launch, generation_retry_failed

LEAD, TRAINER = Membership.Role.LEAD, Membership.Role.TRAINER


class CampaignLaunchApi(APIView):
    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT}, summary="Launch: draft → sampling")
    def post(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        campaign = campaign_launch(campaign=campaign)
        return Response(campaign_progress(campaign=campaign), status=status.HTTP_202_ACCEPTED)


class CampaignProgressApi(APIView):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Sampling progress, per policy, with failures")
    def get(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD, TRAINER})
        return Response(campaign_progress(campaign=campaign))


class SamplingRetryApi(APIView):
    @extend_schema(request=None, responses={202: OpenApiTypes.OBJECT}, summary="Retry the failed sampling tasks")
    def post(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        retried = generation_retry_failed(campaign=campaign)
        return Response({"retried": retried, **campaign_progress(campaign=campaign)}, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path("campaigns/<uuid:uuid>/launch", CampaignLaunchApi.as_view(), name="api-campaign-launch"),
    path("campaigns/<uuid:uuid>/progress", CampaignProgressApi.as_view(), name="api-campaign-progress"),
    path("campaigns/<uuid:uuid>/sampling/retry", SamplingRetryApi.as_view(), name="api-campaign-sampling-retry"),
]
