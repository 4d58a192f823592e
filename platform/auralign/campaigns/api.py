from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.models import ApiToken
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.permissions import require_campaign_role
from auralign.campaigns.selectors import campaign_members, campaign_roles, campaigns_for_user
from auralign.campaigns.services import (
    SETTINGS_BOUNDS,
    campaign_create,
    campaign_transition,
    campaign_update,
    membership_add,
    membership_deactivate,
)
from auralign.dialogues.models import DialogueSet
from auralign.policies.models import Policy
from auralign.rubrics.models import RubricVersion

LEAD, ANNOTATOR, TRAINER = Membership.Role.LEAD, Membership.Role.ANNOTATOR, Membership.Role.TRAINER
SETTINGS_FIELDS = [*SETTINGS_BOUNDS, "reasoning_display"]


class AnnotatorCampaignSerializer(serializers.ModelSerializer):
    """What any member may see: nothing about which models are being compared."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    rubric = serializers.CharField(source="rubric_version.label", read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "name", "description", "instructions", "status", "rubric", "candidates_per_item", "reasoning_display", "min_listened_fraction"]


class CampaignSerializer(serializers.ModelSerializer):
    """Leads and trainers: the full configuration."""

    id = serializers.UUIDField(source="uuid", read_only=True)
    rubric = serializers.CharField(source="rubric_version.label", read_only=True)
    dialogue_set = serializers.UUIDField(source="dialogue_set.uuid", read_only=True)
    policies = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "description", "instructions", "status", "rubric", "dialogue_set", "policies",
            *SETTINGS_FIELDS, "created_at", "launched_at", "completed_at",
        ]

    def get_policies(self, campaign) -> list[dict]:
        return [
            {"policy": str(cp.policy.uuid), "name": cp.policy.name, "samples": cp.samples_per_dialogue}
            for cp in campaign.campaign_policies.select_related("policy")
        ]


def serialize_for(request, campaign: Campaign) -> dict:
    roles = campaign_roles(user=request.user, campaign=campaign)
    if roles & {LEAD, TRAINER}:
        return CampaignSerializer(campaign).data
    return AnnotatorCampaignSerializer(campaign).data


class PolicyEntrySerializer(serializers.Serializer):
    policy = serializers.SlugRelatedField(slug_field="uuid", queryset=Policy.objects.all())
    samples = serializers.IntegerField(min_value=1, max_value=16, default=1)


@extend_schema_field(OpenApiTypes.STR)
class RubricVersionField(serializers.Field):
    """'slug@version' (or 'slug' for the latest version)."""

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data:
            raise serializers.ValidationError("give 'slug@version' or 'slug'")
        slug, _, version = data.partition("@")
        qs = RubricVersion.objects.filter(rubric__slug=slug)
        if version:
            if not version.isdigit():
                raise serializers.ValidationError(f"'{version}' is not a version number")
            found = qs.filter(version=int(version)).first()
        else:
            found = qs.order_by("-version").first()
        if found is None:
            raise serializers.ValidationError(f"no rubric version '{data}'")
        return found

    def to_representation(self, value):
        return value.label


class CampaignInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    instructions = serializers.CharField(required=False, allow_blank=True)
    rubric = RubricVersionField()
    dialogue_set = serializers.SlugRelatedField(slug_field="uuid", queryset=DialogueSet.objects.all())
    policies = PolicyEntrySerializer(many=True)
    candidates_per_item = serializers.IntegerField(required=False)
    judgments_per_item = serializers.IntegerField(required=False)
    lease_seconds = serializers.IntegerField(required=False)
    gold_rate = serializers.FloatField(required=False)
    min_listened_fraction = serializers.FloatField(required=False)
    reasoning_display = serializers.ChoiceField(choices=Campaign.Reasoning.choices, required=False)
    sample_rate = serializers.IntegerField(required=False)
    target_lufs = serializers.FloatField(required=False)
    qualification_gold_items = serializers.IntegerField(required=False)
    qualification_min_accuracy = serializers.FloatField(required=False)


def _split(validated: dict) -> tuple[dict, dict]:
    refs = {}
    for key, target in (("rubric", "rubric_version"), ("dialogue_set", "dialogue_set")):
        if key in validated:
            refs[target] = validated.pop(key)
    if "policies" in validated:
        refs["policies"] = [(p["policy"], p["samples"]) for p in validated.pop("policies")]
    return refs, validated


class CampaignListApi(APIView):
    @extend_schema(responses=CampaignSerializer(many=True), summary="Campaigns I belong to")
    def get(self, request):
        token = request.auth if isinstance(request.auth, ApiToken) else None
        campaigns = campaigns_for_user(user=request.user, token=token).select_related("rubric_version__rubric", "dialogue_set")
        return Response([serialize_for(request, c) for c in campaigns])

    @extend_schema(request=CampaignInputSerializer, responses={201: CampaignSerializer}, summary="Create a campaign (draft)")
    def post(self, request):
        if not request.user.can_lead:
            raise PermissionDenied("only project leads may create campaigns")
        data = CampaignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        refs, fields = _split(dict(data.validated_data))
        campaign = campaign_create(user=request.user, **refs, **fields)
        return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    @extend_schema(responses=CampaignSerializer, summary="One campaign (annotators get a reduced view)")
    def get(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD, ANNOTATOR, TRAINER})
        return Response(serialize_for(request, campaign))

    @extend_schema(request=CampaignInputSerializer, responses=CampaignSerializer, summary="Edit (settings only in draft)")
    def patch(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        data = CampaignInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        refs, fields = _split(dict(data.validated_data))
        campaign = campaign_update(campaign=campaign, **refs, **fields)
        return Response(CampaignSerializer(campaign).data)


class CampaignStatusApi(APIView):
    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=[Campaign.Status.PAUSED, Campaign.Status.ANNOTATING, Campaign.Status.COMPLETED])

    @extend_schema(request=InputSerializer, responses=CampaignSerializer, summary="Pause, resume or complete")
    def post(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        campaign = campaign_transition(campaign=campaign, to=data.validated_data["status"])
        return Response(CampaignSerializer(campaign).data)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ["username", "role", "active", "created_at"]


class MemberListApi(APIView):
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=Membership.Role.choices)

    @extend_schema(responses=MembershipSerializer(many=True), summary="Campaign members")
    def get(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        return Response(MembershipSerializer(campaign_members(campaign=campaign), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: MembershipSerializer}, summary="Add a member")
    def post(self, request, uuid):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=data.validated_data["username"], is_active=True).first()
        if user is None:
            return Response({"username": [f"no active user '{data.validated_data['username']}'"]}, status=400)
        membership = membership_add(campaign=campaign, user=user, role=data.validated_data["role"])
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    @extend_schema(responses={204: None}, summary="Deactivate a member's role")
    def delete(self, request, uuid, username: str, role: str):
        campaign = get_object_or_404(Campaign, uuid=uuid)
        require_campaign_role(request, campaign, {LEAD})
        user = get_object_or_404(get_user_model(), username=username)
        membership_deactivate(campaign=campaign, user=user, role=role)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("campaigns", CampaignListApi.as_view(), name="api-campaigns"),
    path("campaigns/<uuid:uuid>", CampaignDetailApi.as_view(), name="api-campaign"),
    path("campaigns/<uuid:uuid>/status", CampaignStatusApi.as_view(), name="api-campaign-status"),
    path("campaigns/<uuid:uuid>/members", MemberListApi.as_view(), name="api-campaign-members"),
    path("campaigns/<uuid:uuid>/members/<str:username>/<str:role>", MemberDetailApi.as_view(), name="api-campaign-member"),
]
