from django.conf import settings
from rest_framework.exceptions import APIException
from rest_framework.parsers import JSONParser


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"


class BoundedJSONParser(JSONParser):
    """JSON parser that refuses bodies over GENAI_MAX_REQUEST_BYTES (or another ``limit_setting``)
    before reading them all (DRF reads the raw stream, which bypasses Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE)."""

    limit_setting = "GENAI_MAX_REQUEST_BYTES"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = getattr(settings, self.limit_setting)
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        too_large = RequestTooLarge(f"Request body exceeds {limit} bytes ({self.limit_setting}).")
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise too_large
        import io

        return super().parse(io.BytesIO(body), media_type, parser_context)
