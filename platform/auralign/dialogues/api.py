from django.conf import settings
from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from auralign.accounts.permissions import lead_permissions
from auralign.core import storage
from auralign.dialogues.models import DialogueImport, DialogueSet
from auralign.dialogues.selectors import dialogue_list, dialogue_set_list
from auralign.dialogues.services import dialogue_import_start, dialogue_set_import
from auralign.dialogues.sources import UploadedSource


class DialogueSetSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    dialogue_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = DialogueSet
        fields = ["id", "name", "description", "dialogue_count", "created_at"]


class ImportSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    dialogue_set = serializers.UUIDField(source="dialogue_set.uuid", read_only=True)

    class Meta:
        model = DialogueImport
        fields = ["id", "dialogue_set", "source", "status", "progress", "created", "unchanged", "errors", "created_at", "finished_at"]


class DialogueSetListApi(APIView):
    """Upload a manifest plus its audio files (multipart) to import synchronously; large sets
    in S3 import in the background (see the S3 import endpoint)."""

    permission_classes = lead_permissions()
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        manifest = serializers.FileField(help_text="JSONL, one dialogue per line")
        audio = serializers.ListField(child=serializers.FileField(), required=False, default=list)

    @extend_schema(responses=DialogueSetSerializer(many=True), summary="List dialogue sets")
    def get(self, request):
        return Response(DialogueSetSerializer(dialogue_set_list(), many=True).data)

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses={201: dict}, summary="Import a dialogue set (all or nothing)")
    def post(self, request):
        payload = {k: v for k, v in request.data.items() if k != "audio"}
        payload["audio"] = request.FILES.getlist("audio")
        data = self.InputSerializer(data=payload)
        data.is_valid(raise_exception=True)
        manifest = data.validated_data["manifest"]
        if manifest.size > settings.MANIFEST_MAX_BYTES:
            return Response({"manifest": [f"larger than {settings.MANIFEST_MAX_BYTES} bytes"]}, status=400)
        files: dict[str, bytes] = {}
        for f in data.validated_data["audio"]:
            if f.name in files:
                return Response({"audio": [f"file '{f.name}' uploaded twice"]}, status=400)
            if f.size > settings.AUDIO_MAX_BYTES:
                return Response({"audio": [f"audio '{f.name}' is larger than {settings.AUDIO_MAX_BYTES} bytes"]}, status=400)
            files[f.name] = f.read()
        report = dialogue_set_import(
            name=data.validated_data["name"],
            description=data.validated_data["description"],
            manifest=manifest.read(),
            source=UploadedSource(files=files),
            user=request.user,
        )
        body = {
            "dialogue_set": DialogueSetSerializer(dialogue_set_list().get(pk=report.dialogue_set.pk)).data,
            "created": report.created,
            "unchanged": report.unchanged,
            "audio_files": report.audio_files,
        }
        return Response(body, status=status.HTTP_201_CREATED if report.created else status.HTTP_200_OK)


class DialogueSetS3ImportApi(APIView):
    permission_classes = lead_permissions()

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        s3_prefix = serializers.CharField(max_length=1000, help_text="s3://bucket/prefix/ holding manifest.jsonl")

    @extend_schema(request=InputSerializer, responses={202: ImportSerializer}, summary="Import from an S3 prefix in the background")
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = dialogue_import_start(
            dialogue_set_name=data.validated_data["name"], source_uri=data.validated_data["s3_prefix"], user=request.user
        )
        return Response(ImportSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class DialogueImportDetailApi(APIView):
    permission_classes = lead_permissions()

    @extend_schema(responses=ImportSerializer, summary="Progress and errors of a background import")
    def get(self, request, uuid):
        return Response(ImportSerializer(get_object_or_404(DialogueImport.objects.select_related("dialogue_set"), uuid=uuid)).data)


class DialogueSetDetailApi(APIView):
    permission_classes = lead_permissions()

    @extend_schema(responses=DialogueSetSerializer, summary="One dialogue set")
    def get(self, request, uuid):
        return Response(DialogueSetSerializer(get_object_or_404(dialogue_set_list(), uuid=uuid)).data)


class DialogueListApi(APIView):
    permission_classes = lead_permissions()

    @extend_schema(responses={200: dict}, summary="Dialogues of a set, with turns and short-lived audio URLs")
    def get(self, request, uuid):
        from rest_framework.pagination import LimitOffsetPagination

        dialogue_set = get_object_or_404(DialogueSet, uuid=uuid)
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(dialogue_list(dialogue_set=dialogue_set), request, view=self)
        rows = [
            {
                "id": str(d.uuid),
                "external_id": d.external_id,
                "metadata": d.metadata,
                "turns": [
                    {
                        "role": t.role,
                        "text": t.text,
                        "audio_url": storage.url(t.audio.key) if t.audio_id else None,
                        "duration_s": t.audio.duration_s if t.audio_id else None,
                    }
                    for t in d.turns.all()
                ],
            }
            for d in page
        ]
        return paginator.get_paginated_response(rows)


urlpatterns = [
    path("dialogue-sets", DialogueSetListApi.as_view(), name="api-dialogue-sets"),
    path("dialogue-sets/import-s3", DialogueSetS3ImportApi.as_view(), name="api-dialogue-sets-import-s3"),
    path("dialogue-imports/<uuid:uuid>", DialogueImportDetailApi.as_view(), name="api-dialogue-import"),
    path("dialogue-sets/<uuid:uuid>", DialogueSetDetailApi.as_view(), name="api-dialogue-set"),
    path("dialogue-sets/<uuid:uuid>/dialogues", DialogueListApi.as_view(), name="api-dialogues"),
]
