"""Knowledge-base endpoints: import (a CSV/JSONL file or JSON rows) and the docs it holds."""

import json

import django_filters
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import selectors
from generation.apis.parsers import BoundedJSONParser, RequestTooLarge
from generation.models import KnowledgeDoc
from generation.services.knowledge import (
    FORMATS,
    KINDS,
    embedding_model_name,
    knowledge_import_file,
    knowledge_import_rows,
)

ERRORS = {
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Your roles do not allow this."),
}


# --- import ---------------------------------------------------------------------------------


class KnowledgeUploadJSONParser(BoundedJSONParser):
    """JSON rows may be as large as an uploaded file (GENAI_KB_MAX_UPLOAD_BYTES)."""

    limit_setting = "GENAI_KB_MAX_UPLOAD_BYTES"
    max_keys_setting = None


class _MappingField(serializers.DictField):
    """A JSON object; in a multipart form, its JSON text."""

    child = serializers.CharField(max_length=64)

    def get_value(self, dictionary):
        if hasattr(dictionary, "getlist") and self.field_name in dictionary:  # a form field holding JSON
            return dictionary.get(self.field_name)
        return super().get_value(dictionary)

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                self.fail("not_a_dict", input_type="invalid JSON")
        return super().to_internal_value(data)


class KnowledgeImportInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS, default="conversations")
    source = serializers.CharField(
        max_length=64, required=False, help_text="The rows' origin; default: the file name, or `api` for `rows`."
    )
    file = serializers.FileField(
        required=False, help_text="A CSV with a header row, or JSONL (multipart). Give this or `rows`."
    )
    format = serializers.ChoiceField(choices=FORMATS, required=False, help_text="Of `file`; default: from its name.")
    rows = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=settings.GENAI_KB_MAX_IMPORT_ROWS,
        help_text="Rows as JSON objects (application/json). Give this or `file`.",
    )
    mapping = _MappingField(
        required=False, help_text='Column -> field, e.g. {"question": "title", "answer": "body"}; JSON text in a form.'
    )
    skip_bad = serializers.BooleanField(default=False, help_text="Import the good rows and list the bad ones.")
    prune = serializers.BooleanField(default=False, help_text="Deactivate rows of the source that are not in this import.")

    def validate(self, attrs: dict) -> dict:
        if ("file" in attrs) == ("rows" in attrs):
            raise serializers.ValidationError({"file": ["Give exactly one of `file` or `rows`."]})
        return attrs


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line in the file (1 is a CSV's header), or the 1-based item of `rows`.")
    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))


class KnowledgeImportOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    source = serializers.CharField()
    rows = serializers.IntegerField(help_text="Rows read.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    duplicates = serializers.IntegerField(help_text="Rows repeated within the import.")
    skipped = serializers.IntegerField(help_text="Bad rows left out (skip_bad).")
    deactivated = serializers.IntegerField(help_text="Rows of the source no longer imported (prune).")
    masked = serializers.DictField(child=serializers.IntegerField(), help_text="Personal data masked, by kind.")
    errors = RowErrorSerializer(many=True, help_text="Bad rows skipped (the first GENAI_KB_MAX_REPORTED_ERRORS).")
    embed_job_id = serializers.UUIDField(allow_null=True, help_text="The job that embeds the new rows.")
    notes = serializers.ListField(child=serializers.CharField())


class KnowledgeImportApi(APIView):
    parser_classes = [KnowledgeUploadJSONParser, MultiPartParser]

    @extend_schema(
        summary="Import knowledge docs or past conversations",
        description=(
            "A CSV (with a header row) or JSONL `file` as multipart/form-data, or `rows` as JSON. Columns map to "
            "fields by `mapping`, then by the Bitext CSV's layout, then by common names (title, body, message, "
            "reply, ...). If any row is invalid, nothing is imported and the response lists the bad rows with "
            "their line numbers (unless `skip_bad`). Re-importing the same rows changes nothing; a row with a "
            "known id and new content is updated. Personal data in conversations is masked before storing. "
            "New and changed rows are embedded by a `knowledge_embed` job queued after the import."
        ),
        request={"multipart/form-data": KnowledgeImportInputSerializer, "application/json": KnowledgeImportInputSerializer},
        responses={
            201: KnowledgeImportOutputSerializer,
            400: OpenApiResponse(description="Invalid input or rows; `errors.rows` lists the bad rows by line."),
            413: OpenApiResponse(description="Upload larger than GENAI_KB_MAX_UPLOAD_BYTES."),
            409: OpenApiResponse(description="Another import of the same source wrote the same rows meanwhile."),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        limit = settings.GENAI_KB_MAX_UPLOAD_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"Upload exceeds {limit} bytes (GENAI_KB_MAX_UPLOAD_BYTES).")
        serializer = KnowledgeImportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        options = {k: data[k] for k in ("kind", "skip_bad", "prune")} | {"mapping": data.get("mapping")}
        if "file" in data:
            upload = data["file"]
            if upload.size > limit:
                raise RequestTooLarge(f"Upload exceeds {limit} bytes (GENAI_KB_MAX_UPLOAD_BYTES).")
            report = knowledge_import_file(
                user=request.user,
                file=upload,
                name=upload.name or "upload.csv",
                format=data.get("format"),
                source=data.get("source"),
                **options,
            )
        else:
            report = knowledge_import_rows(
                user=request.user, rows=data["rows"], source=data.get("source") or "api", **options
            )
        return Response(KnowledgeImportOutputSerializer(report.as_dict()).data, status=status.HTTP_201_CREATED)


# --- docs -----------------------------------------------------------------------------------


class KnowledgeDocFilter(django_filters.FilterSet):
    source = django_filters.CharFilter(max_length=64)
    language = django_filters.CharFilter(max_length=16)
    active = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="_search", max_length=200, help_text="Text in the title or body.")

    class Meta:
        model = KnowledgeDoc
        fields = ["source", "language", "active", "q"]

    def _search(self, queryset, name, value):
        from django.db.models import Q

        return queryset.filter(Q(title__icontains=value) | Q(body__icontains=value))


class KnowledgeDocOutputSerializer(serializers.ModelSerializer):
    embedding_status = serializers.SerializerMethodField()

    class Meta:
        model = KnowledgeDoc
        fields = [
            "id", "title", "body", "tags", "source", "external_id", "language", "active", "embedding_status",
            "embedding_model", "embedded_at", "created_at", "updated_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["current", "stale", "missing"]))
    def get_embedding_status(self, doc: KnowledgeDoc) -> str:
        """current: searchable by its present text; stale: by its previous text until re-embedded."""
        if not doc.embedded_hash:
            return "missing"
        current = doc.embedded_hash == doc.content_hash and doc.embedding_model == embedding_model_name()
        return "current" if current else "stale"


class KnowledgeDocListApi(generics.ListAPIView):
    serializer_class = KnowledgeDocOutputSerializer
    filterset_class = KnowledgeDocFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return KnowledgeDoc.objects.none()
        return selectors.knowledge_doc_list(user=self.request.user)

    @extend_schema(summary="List knowledge docs, newest first", responses={200: KnowledgeDocOutputSerializer(many=True), **ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class KnowledgeDocDetailApi(APIView):
    @extend_schema(summary="Get a knowledge doc", responses={200: KnowledgeDocOutputSerializer, 404: None, **ERRORS})
    def get(self, request: Request, doc_id: str) -> Response:
        return Response(KnowledgeDocOutputSerializer(selectors.knowledge_doc_get(user=request.user, doc_id=doc_id)).data)
