from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.models import ApiToken
from auralign.accounts.services import api_token_create, api_token_revoke
from auralign.campaigns.models import Campaign, Membership
from auralign.campaigns.selectors import campaigns_for_user


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        is_lead = serializers.BooleanField(source="can_lead")
        roles = serializers.SerializerMethodField()

        def get_roles(self, user) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for campaign_uuid, role in Membership.objects.filter(user=user, active=True).values_list("campaign__uuid", "role"):
                out.setdefault(str(campaign_uuid), []).append(role)
            return out

    @extend_schema(responses=OutputSerializer, summary="Who am I, and my roles per campaign")
    def get(self, request):
        return Response(self.OutputSerializer(request.user).data)


class TokenOutputSerializer(serializers.ModelSerializer):
    campaigns = serializers.SlugRelatedField(slug_field="uuid", many=True, read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "read_only", "campaigns", "created_at", "expires_at", "last_used_at", "revoked_at"]


class TokenListApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        read_only = serializers.BooleanField(default=False)
        campaigns = serializers.ListField(child=serializers.UUIDField(), required=False, default=list)
        ttl_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)

    @extend_schema(responses=TokenOutputSerializer(many=True), summary="My API tokens")
    def get(self, request):
        tokens = ApiToken.objects.filter(user=request.user).prefetch_related("campaigns").order_by("-created_at")
        return Response(TokenOutputSerializer(tokens, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: TokenOutputSerializer}, summary="Create a token (secret shown once)")
    def post(self, request):
        from datetime import timedelta

        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        mine = campaigns_for_user(user=request.user)
        wanted = list(Campaign.objects.filter(uuid__in=data.validated_data["campaigns"]))
        if len(wanted) != len(set(data.validated_data["campaigns"])) or any(c not in mine for c in wanted):
            return Response({"campaigns": ["unknown campaign, or you are not a member"]}, status=400)
        ttl = timedelta(days=data.validated_data["ttl_days"]) if "ttl_days" in data.validated_data else None
        token, secret = api_token_create(
            user=request.user,
            name=data.validated_data["name"],
            campaigns=wanted,
            read_only=data.validated_data["read_only"],
            ttl=ttl,
        )
        return Response({**TokenOutputSerializer(token).data, "token": secret}, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(responses={204: None}, summary="Revoke a token")
    def delete(self, request, pk: int):
        api_token_revoke(token=get_object_or_404(ApiToken, pk=pk, user=request.user))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("me", MeApi.as_view(), name="api-me"),
    path("tokens", TokenListApi.as_view(), name="api-tokens"),
    path("tokens/<int:pk>", TokenDetailApi.as_view(), name="api-token"),
]
