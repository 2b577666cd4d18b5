from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import roles
from generation.apis.serializers import JobKindOutputSerializer
from generation.kinds import kinds_all

_LIMITS = ("min_value", "max_value", "min_length", "max_length")


def _field_describe(field: serializers.Field) -> dict:
    described = {"type": type(field).__name__.removesuffix("Field"), "required": field.required}
    if field.default is not serializers.empty and not callable(field.default):
        described["default"] = field.default
    for limit in _LIMITS:
        value = getattr(field, limit, None)
        if value is not None:
            described[limit] = value
    if isinstance(field, serializers.ChoiceField):
        described["choices"] = list(field.choices)
    if field.help_text:
        described["help"] = str(field.help_text)
    return described


class KindListApi(APIView):
    @extend_schema(summary="Job kinds, their parameters and whether you may create them",
                   responses=JobKindOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        mine = roles.user_roles(request.user)
        return Response([
            {
                "name": kind.name,
                "description": kind.description,
                "queue": kind.queue,
                "roles": sorted(kind.roles),
                "allowed": bool(mine & kind.roles),
                "params": {name: _field_describe(f) for name, f in kind.params_serializer().fields.items()},
            }
            for kind in kinds_all()
        ])
