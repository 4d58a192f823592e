from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.permissions import lead_permissions
from auralign.policies.models import Policy
from auralign.policies.services import policy_create, policy_update


class PolicySerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    parent = serializers.SlugRelatedField(slug_field="uuid", read_only=True)
    produced_by_run = serializers.SerializerMethodField()

    class Meta:
        model = Policy
        fields = ["id", "name", "description", "backend", "config", "generation", "tts", "parent", "produced_by_run", "archived", "created_at"]

    def get_produced_by_run(self, policy) -> str | None:
        run = getattr(policy, "produced_by_run", None)
        return str(run.uuid) if run is not None else None


class PolicyListApi(APIView):
    permission_classes = lead_permissions()

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        backend = serializers.CharField()
        config = serializers.JSONField()
        generation = serializers.JSONField(required=False, default=dict)
        tts = serializers.JSONField(required=False, default=dict)
        parent = serializers.SlugRelatedField(slug_field="uuid", queryset=Policy.objects.all(), required=False, allow_null=True)

    @extend_schema(responses=PolicySerializer(many=True), summary="List policies")
    def get(self, request):
        return Response(PolicySerializer(Policy.objects.select_related("parent").order_by("name"), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: PolicySerializer}, summary="Register a policy")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        policy = policy_create(user=request.user, **data.validated_data)
        return Response(PolicySerializer(policy).data, status=status.HTTP_201_CREATED)


class PolicyDetailApi(APIView):
    permission_classes = lead_permissions()

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        config = serializers.JSONField(required=False)
        generation = serializers.JSONField(required=False)
        tts = serializers.JSONField(required=False)
        archived = serializers.BooleanField(required=False)

    @extend_schema(responses=PolicySerializer, summary="One policy")
    def get(self, request, uuid):
        return Response(PolicySerializer(get_object_or_404(Policy, uuid=uuid)).data)

    @extend_schema(request=InputSerializer, responses=PolicySerializer, summary="Edit a policy")
    def patch(self, request, uuid):
        data = self.InputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy = policy_update(policy=get_object_or_404(Policy, uuid=uuid), **data.validated_data)
        return Response(PolicySerializer(policy).data)


urlpatterns = [
    path("policies", PolicyListApi.as_view(), name="api-policies"),
    path("policies/<uuid:uuid>", PolicyDetailApi.as_view(), name="api-policy"),
]
