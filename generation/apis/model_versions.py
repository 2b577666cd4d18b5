"""Trained model versions: list, read, promote (reviewer/admin). Training jobs create them."""

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import roles, selectors
from generation.exceptions import Forbidden, InvalidInput, NotFound
from generation.models import ModelFamily, ModelVersion
from generation.services.model_versions import model_version_promote

READ_ROLES = roles.ROLES  # any role may see which models exist and how they measured


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    training_job = serializers.UUIDField(source="training_job_id", read_only=True, allow_null=True)
    promoted_by = serializers.CharField(source="promoted_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "label",
            "family",
            "name",
            "version",
            "purpose",
            "status",
            "is_default",
            "base_model",
            "config",
            "metrics",
            "training_job",
            "promoted_by",
            "promoted_at",
            "created_at",
        ]
        read_only_fields = fields  # output only: no DB-dependent integer ranges in the schema


def _read_check(user) -> None:
    if not roles.user_has_role(user, *READ_ROLES):
        raise Forbidden("Reading model versions needs a role.")


def _version_get(version_id: str) -> ModelVersion:
    version = ModelVersion.objects.filter(pk=int(version_id)).first() if str(version_id).isdigit() else None
    if version is None:
        raise NotFound(f"No model version with id {version_id!r}.", field="id")
    return version


class ModelVersionListApi(generics.ListAPIView):
    serializer_class = ModelVersionOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ModelVersion.objects.none()
        _read_check(self.request.user)
        family = self.request.query_params.get("family")
        if family and family not in ModelFamily.values:
            raise InvalidInput({"family": [f"Must be one of {', '.join(ModelFamily.values)}."]})
        return selectors.model_version_list(family=family, purpose=self.request.query_params.get("purpose"))

    @extend_schema(
        summary="List trained model versions",
        parameters=[
            OpenApiParameter("family", str, enum=ModelFamily.values),
            OpenApiParameter("purpose", str, description="The job kind a version serves."),
        ],
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class ModelVersionDetailApi(APIView):
    @extend_schema(summary="Get a model version with its metrics", responses={200: ModelVersionOutputSerializer})
    def get(self, request: Request, version_id: str) -> Response:
        _read_check(request.user)
        return Response(ModelVersionOutputSerializer(_version_get(version_id)).data)


class ModelVersionPromoteApi(APIView):
    @extend_schema(
        summary="Promote a version to the default of its family and purpose (reviewer/admin)",
        request=None,
        responses={
            200: ModelVersionOutputSerializer,
            403: OpenApiResponse(description="Needs the reviewer or admin role."),
            409: OpenApiResponse(description="The version is not ready."),
        },
    )
    def post(self, request: Request, version_id: str) -> Response:
        version = model_version_promote(version=_version_get(version_id), user=request.user)
        return Response(ModelVersionOutputSerializer(version).data)
