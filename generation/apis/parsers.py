import io

from django.conf import settings
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import JSONParser

from generation.jsonchecks import errors_at, json_problem


class RequestTooLarge(APIException):
    status_code = 413
    default_code = "request_too_large"


class BoundedJSONParser(JSONParser):
    """JSON parser that refuses bodies over GENAI_MAX_REQUEST_BYTES (or another ``limit_setting``)
    before reading them all (DRF reads the raw stream, which bypasses Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE), and documents PostgreSQL could not store or that are built to
    be expensive: a 400 naming the path for NUL characters and unpaired surrogates anywhere (keys
    included), nesting deeper than GENAI_JSON_MAX_DEPTH and more than GENAI_JSON_MAX_KEYS keys.
    (5,000 levels of nesting made the decoder raise RecursionError, a 500.)"""

    limit_setting = "GENAI_MAX_REQUEST_BYTES"
    max_keys_setting: str | None = "GENAI_JSON_MAX_KEYS"  # None: the byte limit bounds the keys (uploads)

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
        max_depth = settings.GENAI_JSON_MAX_DEPTH
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            data = None
            problem = ((), f"Nested deeper than {max_depth} levels (GENAI_JSON_MAX_DEPTH).")
        else:
            max_keys = getattr(settings, self.max_keys_setting) if self.max_keys_setting else None
            problem = json_problem(data, max_depth=max_depth, max_keys=max_keys)
        if problem is not None:
            path, message = problem
            raise ValidationError(errors_at(path, message) if path else {"non_field_errors": [message]})
        return data
