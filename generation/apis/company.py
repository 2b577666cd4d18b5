"""The company profile: the business's own details (name, website, support phone and e-mail,
hours, live chat, returns address, any other placeholder) that fill ``{{Placeholders}}`` in
every reply draft. Any role reads it; reviewers and admins change it."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation.models import CompanyProfile
from generation.selectors import company_profile_get
from generation.services.company import company_profile_update

ERRORS = {
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Your roles do not allow this (change: reviewer, admin; read: any role)."),
}


def _names(field: str) -> str:
    return ", ".join("`{{" + name + "}}`" for name in CompanyProfile.PLACEHOLDERS[field])


class CompanyProfileInputSerializer(serializers.ModelSerializer):
    extra = serializers.DictField(
        child=serializers.CharField(max_length=settings.GENAI_REPLY_MAX_CONTEXT_VALUE_CHARS),
        required=False,
        help_text='Any other placeholder, by name: {"Refund Policy": "https://shop.example/refunds"}; replaces the '
        f"whole map; at most {settings.GENAI_COMPANY_PROFILE_MAX_EXTRA} names (GENAI_COMPANY_PROFILE_MAX_EXTRA). "
        "Wins over a field for the same name.",
    )

    class Meta:
        model = CompanyProfile
        fields = [*CompanyProfile.PLACEHOLDERS, "extra"]
        extra_kwargs = {
            name: {"required": False, "allow_blank": True, "help_text": f"Fills {_names(name)}."}
            for name in CompanyProfile.PLACEHOLDERS
        }


class CompanyProfileOutputSerializer(serializers.ModelSerializer):
    updated_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    placeholders = serializers.SerializerMethodField(
        help_text="What drafts get: each placeholder name the profile fills, with its value."
    )

    class Meta:
        model = CompanyProfile
        fields = [*CompanyProfile.PLACEHOLDERS, "extra", "placeholders", "updated_by", "updated_at"]

    def get_placeholders(self, profile: CompanyProfile) -> dict[str, str]:
        return profile.placeholder_values()


class CompanyProfileApi(APIView):
    @extend_schema(
        summary="Get the company profile",
        description="The values that fill `{{Placeholders}}` in every reply draft; a job's own `context` wins over them.",
        responses={200: CompanyProfileOutputSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        return Response(CompanyProfileOutputSerializer(company_profile_get(user=request.user)).data)

    @extend_schema(
        summary="Change the company profile",
        description="Only the fields sent change; a blank text clears a field. Drafts made afterwards use the new values.",
        request=CompanyProfileInputSerializer,
        responses={200: CompanyProfileOutputSerializer, 400: OpenApiResponse(description="Invalid input."), **ERRORS},
    )
    def patch(self, request: Request) -> Response:
        serializer = CompanyProfileInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        profile = company_profile_update(user=request.user, **serializer.validated_data)
        return Response(CompanyProfileOutputSerializer(profile).data)
