"""Brand-voice examples: marketers store example descriptions per brand (and collection); the
``copy`` kind shows the most similar ones to the model as style examples."""

import django_filters
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.kinds.copy import AttributesField
from generation.models import BrandExample
from generation.services.copy import (
    brand_example_create,
    brand_example_delete,
    brand_example_get,
    brand_example_list,
    brand_example_update,
)
from generation.services.knowledge import embedding_model_name

ERRORS = {
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Your roles do not allow this (write: marketer, admin; read: also reviewer)."),
}


class BrandExampleInputSerializer(serializers.Serializer):
    brand = serializers.CharField(max_length=100)
    collection = serializers.CharField(max_length=100, required=False, default="", allow_blank=True)
    text = serializers.CharField(max_length=settings.GENAI_COPY_MAX_EXAMPLE_CHARS, help_text="The example description.")
    attributes = AttributesField(
        required=False, help_text="The product facts the text describes (optional; shown with it to the model)."
    )


class BrandExampleUpdateSerializer(serializers.Serializer):
    brand = serializers.CharField(max_length=100, required=False)
    collection = serializers.CharField(max_length=100, required=False, allow_blank=True)
    text = serializers.CharField(max_length=settings.GENAI_COPY_MAX_EXAMPLE_CHARS, required=False)
    attributes = AttributesField(required=False)
    active = serializers.BooleanField(required=False)


class BrandExampleOutputSerializer(serializers.ModelSerializer):
    embedding_status = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = BrandExample
        fields = [
            "id", "brand", "collection", "text", "attributes", "active", "embedding_status", "embedding_model",
            "embedded_at", "created_by", "created_at", "updated_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["current", "stale", "missing"]))
    def get_embedding_status(self, example: BrandExample) -> str:
        if not example.embedded_hash:
            return "missing"
        current = example.embedded_hash == example.content_hash and example.embedding_model == embedding_model_name()
        return "current" if current else "stale"


class BrandExampleFilter(django_filters.FilterSet):
    brand = django_filters.CharFilter(field_name="brand", lookup_expr="iexact", max_length=100)
    collection = django_filters.CharFilter(field_name="collection", lookup_expr="iexact", max_length=100)
    active = django_filters.BooleanFilter()

    class Meta:
        model = BrandExample
        fields = ["brand", "collection", "active"]


class BrandExampleListCreateApi(generics.ListAPIView):
    serializer_class = BrandExampleOutputSerializer
    filterset_class = BrandExampleFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return BrandExample.objects.none()
        return brand_example_list(user=self.request.user)

    @extend_schema(summary="List brand-voice examples, newest first", responses={200: BrandExampleOutputSerializer(many=True), **ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Store a brand-voice example",
        description="Its embedding is computed by a `brand_example_embed` job queued after the write.",
        request=BrandExampleInputSerializer,
        responses={201: BrandExampleOutputSerializer, 400: OpenApiResponse(description="Invalid input."),
                   409: OpenApiResponse(description="The brand and collection already have this text."), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = BrandExampleInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        example = brand_example_create(user=request.user, **serializer.validated_data)
        return Response(BrandExampleOutputSerializer(example).data, status=status.HTTP_201_CREATED)


class BrandExampleDetailApi(APIView):
    @extend_schema(summary="Get a brand-voice example", responses={200: BrandExampleOutputSerializer, 404: None, **ERRORS})
    def get(self, request: Request, example_id: str) -> Response:
        return Response(BrandExampleOutputSerializer(brand_example_get(user=request.user, example_id=example_id)).data)

    @extend_schema(
        summary="Change a brand-voice example",
        request=BrandExampleUpdateSerializer,
        responses={200: BrandExampleOutputSerializer, 400: None, 404: None, 409: None, **ERRORS},
    )
    def patch(self, request: Request, example_id: str) -> Response:
        serializer = BrandExampleUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        example = brand_example_update(user=request.user, example_id=example_id, **serializer.validated_data)
        return Response(BrandExampleOutputSerializer(example).data)

    @extend_schema(summary="Delete a brand-voice example", responses={204: None, 404: None, **ERRORS})
    def delete(self, request: Request, example_id: str) -> Response:
        brand_example_delete(user=request.user, example_id=example_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
