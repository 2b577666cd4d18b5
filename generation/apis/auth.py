"""API tokens: exchange a username and password for a token, revoke it, and see who you are."""

from django.contrib.auth import authenticate
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import roles
from generation.apis.serializers import TokenCreateInputSerializer, TokenOutputSerializer
from generation.apis.throttling import AnonThrottle
from generation.exceptions import DomainError
from generation.services.users import token_issue, token_revoke


class BearerTokenAuthentication(TokenAuthentication):
    """The same API tokens, sent as ``Authorization: Bearer <token>`` (what OpenAI clients send)."""

    keyword = "Bearer"


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")


class TokenThrottle(AnonThrottle):
    scope = "token"


class BadCredentials(DomainError):
    status_code = 400
    code = "bad_credentials"


class TokenApi(APIView):
    def get_permissions(self):
        return [AllowAny()] if self.request.method == "POST" else super().get_permissions()

    def get_throttles(self):
        return [TokenThrottle()] if self.request.method == "POST" else super().get_throttles()

    @extend_schema(
        summary="Get an API token",
        request=TokenCreateInputSerializer,
        responses={200: TokenOutputSerializer, 400: OpenApiResponse(description="Wrong username or password.")},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        serializer = TokenCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request, **serializer.validated_data)
        if user is None:
            raise BadCredentials("Wrong username or password.", field="password")
        return Response(_token_payload(user, token_issue(user=user)))

    @extend_schema(summary="Revoke your API token", request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        token_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(summary="Who am I", responses=TokenOutputSerializer)
    def get(self, request: Request) -> Response:
        return Response({"token": "", "username": request.user.get_username(), "roles": sorted(roles.user_roles(request.user))})


def _token_payload(user, key: str) -> dict:
    return {"token": key, "username": user.get_username(), "roles": sorted(roles.user_roles(user))}
