from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.permissions import lead_permissions
from auralign.rubrics.models import Rubric, RubricVersion
from auralign.rubrics.selectors import rubric_list, rubric_version_as_dict, rubric_version_diff
from auralign.rubrics.services import rubric_create, rubric_update


class CriterionSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    guidance = serializers.CharField(required=False, allow_blank=True)
    scale_min = serializers.IntegerField(required=False)
    scale_max = serializers.IntegerField(required=False)
    anchors = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    weight = serializers.FloatField(required=False)
    required = serializers.BooleanField(required=False)


class VersionSerializer(serializers.Serializer):
    rubric = serializers.CharField()
    version = serializers.IntegerField()
    instructions = serializers.CharField()
    frozen = serializers.BooleanField()
    criteria = CriterionSerializer(many=True)


class RubricSerializer(serializers.ModelSerializer):
    versions = serializers.SerializerMethodField()
    latest = serializers.SerializerMethodField()

    class Meta:
        model = Rubric
        fields = ["slug", "name", "created_at", "versions", "latest"]

    def get_versions(self, rubric) -> list[dict]:
        return [
            {"version": v.version, "frozen": v.is_frozen, "changelog": v.changelog, "created_at": v.created_at}
            for v in rubric.versions.all()
        ]

    def get_latest(self, rubric) -> dict:
        versions = list(rubric.versions.all())
        return rubric_version_as_dict(max(versions, key=lambda v: v.version))


class RubricListApi(APIView):
    permission_classes = lead_permissions()

    class InputSerializer(serializers.Serializer):
        slug = serializers.CharField(max_length=80)
        name = serializers.CharField(max_length=200)
        instructions = serializers.CharField(required=False, allow_blank=True, default="")
        criteria = serializers.JSONField()

    @extend_schema(responses=RubricSerializer(many=True), summary="List rubrics")
    def get(self, request):
        return Response(RubricSerializer(rubric_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: VersionSerializer}, summary="Create a rubric (version 1)")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = rubric_create(user=request.user, **data.validated_data)
        return Response(rubric_version_as_dict(version), status=status.HTTP_201_CREATED)


class RubricDetailApi(APIView):
    permission_classes = lead_permissions()

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        instructions = serializers.CharField(required=False, allow_blank=True)
        criteria = serializers.JSONField(required=False)
        changelog = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(responses=RubricSerializer, summary="A rubric with its versions")
    def get(self, request, slug: str):
        return Response(RubricSerializer(get_object_or_404(rubric_list(), slug=slug)).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: VersionSerializer, 201: VersionSerializer},
        summary="Edit a rubric: a draft version changes in place (200), a frozen one gets version + 1 (201)",
    )
    def patch(self, request, slug: str):
        rubric = get_object_or_404(Rubric, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        before = rubric.versions.order_by("-version").first().version
        version = rubric_update(rubric=rubric, user=request.user, **data.validated_data)
        code = status.HTTP_201_CREATED if version.version != before else status.HTTP_200_OK
        return Response(rubric_version_as_dict(version), status=code)


class RubricVersionApi(APIView):
    permission_classes = lead_permissions()

    @extend_schema(responses=VersionSerializer, summary="One rubric version")
    def get(self, request, slug: str, version: int):
        v = get_object_or_404(RubricVersion.objects.select_related("rubric"), rubric__slug=slug, version=version)
        return Response(rubric_version_as_dict(v))


class RubricDiffApi(APIView):
    permission_classes = lead_permissions()

    @extend_schema(
        parameters=[OpenApiParameter("from", int, required=True), OpenApiParameter("to", int, required=True)],
        responses={200: dict},
        summary="What changed between two versions",
    )
    def get(self, request, slug: str):
        try:
            a, b = int(request.query_params["from"]), int(request.query_params["to"])
        except (KeyError, ValueError):
            return Response({"from": ["give integer 'from' and 'to' versions"]}, status=400)
        qs = RubricVersion.objects.select_related("rubric").filter(rubric__slug=slug)
        return Response(rubric_version_diff(old=get_object_or_404(qs, version=a), new=get_object_or_404(qs, version=b)))


urlpatterns = [
    path("rubrics", RubricListApi.as_view(), name="api-rubrics"),
    path("rubrics/<slug:slug>", RubricDetailApi.as_view(), name="api-rubric"),
    path("rubrics/<slug:slug>/versions/<int:version>", RubricVersionApi.as_view(), name="api-rubric-version"),
    path("rubrics/<slug:slug>/diff", RubricDiffApi.as_view(), name="api-rubric-diff"),
]
