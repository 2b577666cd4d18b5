"""OpenAI-compatible endpoints (/v1), so OpenAI's clients and tools work against this service.

Each completion is one ``generate`` job created by ``job_create`` (admission control, roles,
metrics, the admin) and run by a worker like any other; the view follows the job's stream
(``JobFollower``) and answers in OpenAI's shapes, errors included. The job's id is in the
``X-Job-Id`` header (and in the completion id), for GET /api/jobs/{id} and the admin.
"""

import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import selectors
from generation.apis.auth import BearerTokenAuthentication
from generation.apis.exceptions import api_exception_handler
from generation.apis.jobs import JobCreateThrottle, idempotency_key_get
from generation.apis.openai_serializers import (
    IGNORED_PARAMS,
    UNSUPPORTED_PARAMS,
    ChatCompletionInputSerializer,
    ChatCompletionSerializer,
    CompletionInputSerializer,
    CompletionSerializer,
    ErrorSerializer,
    ModelListSerializer,
    ModelSerializer,
)
from generation.apis.streaming import (
    AsyncJobFollower,
    JobFollower,
    StreamSlot,
    db_call_in_thread,
    event_deltas,
    streaming_response,
)
from generation.apis.throttling import UserThrottle
from generation.exceptions import Conflict, NotFound
from generation.kinds.generate import base_model_name, model_names
from generation.models import Candidate, Job, JobStatus
from generation.services.jobs import job_cancel, job_create

logger = logging.getLogger(__name__)

# Our finish reasons -> OpenAI's. A candidate cut short by the job's time limit or a cancel is
# incomplete text, like one cut by max_tokens: "length" tells clients so ("stop" would claim the
# model ended it).
FINISH_REASONS = {"stop": "stop", "length": "length", "timeout": "length", "cancelled": "length"}
ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
OWNED_BY = "genai-desk"
_SERVED_SINCE = int(time.time())


def finish_reason(candidate: Candidate, viewer=None) -> str:
    if selectors.candidate_withheld(candidate, viewer):
        return "content_filter"  # OpenAI's reason when its own filter withholds content
    return FINISH_REASONS.get(candidate.finish_reason, "stop")


def _model_shown(model: str | None) -> str:
    return base_model_name() if model in (None, "", "base") else model


def visible_text(candidate: Candidate, viewer) -> str:
    return "" if selectors.candidate_withheld(candidate, viewer) else candidate.text


def error_payload(*, message: str, status: int, code: str | None = None, param: str | None = None) -> dict:
    error_type = ERROR_TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def _first_error(errors, path: tuple = ()) -> tuple[tuple, str, str | None]:
    """The first leaf of a DRF error tree: (path, message, code)."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            return _first_error(value, path if key == "non_field_errors" else (*path, key))
    if isinstance(errors, list) and errors:
        if all(isinstance(item, str) for item in errors):
            return path, str(errors[0]), getattr(errors[0], "code", None)
        for index, item in enumerate(errors):
            if item:
                return _first_error(item, (*path, index))
    return path, str(errors), getattr(errors, "code", None)


def _param_name(path: tuple, aliases: dict[str, str]) -> str | None:
    """``("params", "messages", 1, "role")`` -> ``messages[1].role``, in the client's names."""
    if path[:1] == ("params",):  # job_create's errors nest the kind's fields under "params"
        path = path[1:]
    if not path:
        return None
    name = aliases.get(str(path[0]), str(path[0]))
    for part in path[1:]:
        name += f"[{part}]" if isinstance(part, int) or str(part).isdigit() else f".{part}"
    return name


def openai_exception_handler(exc, context):
    """The project's handler (status codes, Retry-After), with OpenAI's error body."""
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data if isinstance(response.data, dict) else {"detail": str(response.data)}
    param = None
    message = str(data.get("detail", ""))
    code = data.get("code")
    if data.get("errors"):
        path, message, leaf_code = _first_error(data["errors"])
        param = _param_name(path, getattr(context.get("view"), "param_aliases", {}))
        message = f"{param}: {message}" if param else message
        code = leaf_code or code
    response.data = error_payload(message=message, status=response.status_code, code=code, param=param)
    return response


class _AnyAcceptNegotiation(DefaultContentNegotiation):
    """OpenAI clients send ``Accept: application/json`` for streams too (and curl users may send
    ``text/event-stream`` for JSON): these views answer in their own format whatever Accept says."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _OpenAIApi(APIView):
    # Bearer first: it names the scheme in WWW-Authenticate, so anonymous requests get 401.
    authentication_classes = [BearerTokenAuthentication, TokenAuthentication, SessionAuthentication]
    throttle_classes = [UserThrottle, JobCreateThrottle]
    content_negotiation_class = _AnyAcceptNegotiation
    param_aliases: dict[str, str] = {}

    def get_exception_handler(self):
        return openai_exception_handler


IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Repeat a request safely: the same key answers from the same job (after a 504, to wait on); "
    "another body with it is 409.",
)
JOB_ID_HEADER = OpenApiParameter(
    "X-Job-Id",
    OpenApiTypes.UUID,
    OpenApiParameter.HEADER,
    response=[200, 409, 500, 504],
    description="The job behind the answer: GET /api/jobs/{id}, or the admin.",
)


def _errors(descriptions: dict[int, str]) -> dict:
    return {status: OpenApiResponse(ErrorSerializer, description=text) for status, text in descriptions.items()}


UNAUTHENTICATED = {401: "No or an unknown token."}
COMPLETION_ERRORS = _errors({
    400: "Invalid input; `error.param` names the parameter (in OpenAI's names) and the message its limit.",
    **UNAUTHENTICATED,
    403: "Your roles may not generate text.",
    409: "The job was cancelled (or the Idempotency-Key was used for another request).",
    413: "Body too large.",
    415: "Not JSON.",
    429: "Too many queued jobs or requests; see Retry-After.",
    500: "The job failed; `error.code` is its error code.",
    504: "The job did not finish within GENAI_STREAM_MAX_SECONDS; it goes on (see X-Job-Id).",
})
PARAMS_DESCRIPTION = (
    f"Accepted and ignored: {', '.join(f'`{p}`' for p in sorted(IGNORED_PARAMS))}. Not supported (400 unless "
    f"sent with the value that means unused): {', '.join(f'`{p}`' for p in UNSUPPORTED_PARAMS)}. Any other "
    "unknown parameter is a 400. "
)
STREAM_DESCRIPTION = (
    "With `stream: true` the answer is `text/event-stream`: `data: {chunk}` lines, then `data: [DONE]`. "
    "If the job fails, is cancelled or outlasts GENAI_STREAM_MAX_SECONDS, the last chunk before `[DONE]` is "
    "`{\"error\": {...}}`, as in the JSON errors. Keep-alive comment lines (`: keep-alive`) may come between chunks."
)


def _completion_schema(*, summary: str, what: str, request, response, examples=()):
    return extend_schema_view(
        post=extend_schema(
            tags=["openai"],
            summary=summary,
            description=f"A `generate` job for {what}. " + PARAMS_DESCRIPTION + STREAM_DESCRIPTION,
            request=request,
            parameters=[IDEMPOTENCY_HEADER, JOB_ID_HEADER],
            responses={(200, "application/json"): response, (200, "text/event-stream"): OpenApiTypes.STR,
                       **COMPLETION_ERRORS},
            examples=list(examples),
        )
    )


class _CompletionApi(_OpenAIApi):
    """One endpoint's wire format; the job handling is shared."""

    input_serializer_class: type
    id_prefix: str
    object_name: str
    chunk_object_name: str

    def generate_params(self, data: dict) -> dict:
        """The kind's params from the validated request; unset options keep the kind's defaults."""
        params = {
            name: data[name]
            for name in ("model", "temperature", "top_p", "top_k", "repetition_penalty", "stop", "seed", "n",
                         "response_format")
            if data.get(name) is not None
        }
        if data.get("max_tokens") is not None:
            params["max_new_tokens"] = data["max_tokens"]
        return params

    def text_fields(self, text: str, *, chunk: bool) -> dict:
        """How a choice carries its text, in the JSON answer or in a stream chunk."""
        raise NotImplementedError

    def choice(self, index: int, text: str, finish_reason: str | None, *, chunk: bool = False) -> dict:
        return {"index": index, **self.text_fields(text, chunk=chunk), "finish_reason": finish_reason, "logprobs": None}

    def opening_choices(self, n: int) -> list[dict]:
        """Choices sent before any text (one chunk each)."""
        return []

    def post(self, request: Request) -> StreamingHttpResponse | Response:
        serializer = self.input_serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # The kind's errors name its fields; name the client's (see openai_exception_handler).
        uses_new_name = data.get("max_completion_tokens") is not None
        self.param_aliases = {"max_new_tokens": "max_completion_tokens" if uses_new_name else "max_tokens"}
        # An open stream takes its slot before the job exists: over the limit, no job is created.
        slot = StreamSlot.acquire() if data["stream"] else None
        try:
            job, _ = job_create(
                owner=request.user,
                kind="generate",
                params=self.generate_params(data),
                idempotency_key=idempotency_key_get(request),
            )
        except BaseException:
            if slot is not None:
                slot.completed = True
                slot.release()
            raise
        if slot is not None:
            # A client that leaves before the end of its stream wants no more of the job.
            slot.on_abandon = lambda: _job_cancel_abandoned(job, request.user)
            include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
            chunks = _Chunks(self, job, include_usage, slot)
            response = streaming_response(
                request=request, sync_stream=chunks.sync_stream, async_stream=chunks.async_stream, slot=slot
            )
        else:
            response = self._answer(job)
        response["X-Job-Id"] = str(job.id)
        return response

    # --- the job's outcome --------------------------------------------------------------------

    def _head(self, job: Job, object_name: str) -> dict:
        return {
            "id": f"{self.id_prefix}{job.id.hex}",
            "object": object_name,
            "created": int(job.created_at.timestamp()),
            "model": _model_shown(job.params.get("model")),
        }

    @staticmethod
    def _usage(candidates: list[Candidate]) -> dict:
        prompt = max((c.prompt_tokens for c in candidates), default=0)  # one prompt for all choices
        completion = sum(c.completion_tokens for c in candidates)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @staticmethod
    def _job_error(job_id, job: Job | None) -> tuple[int, dict, dict]:
        """(status, error body, headers) for a job that did not succeed (None: still going).
        Clients should not repeat these by themselves (``x-should-retry``): the job already ran,
        and a repeat would run another one."""
        headers = {"x-should-retry": "false"}
        if job is None:
            message = (
                f"No result within {settings.GENAI_STREAM_MAX_SECONDS} s (GENAI_STREAM_MAX_SECONDS); "
                f"the job goes on: GET /api/jobs/{job_id}"
            )
            return 504, error_payload(message=message, status=504, code="timeout"), headers
        if job.status == JobStatus.CANCELLED:
            message = f"The job was cancelled. {job.error_message}".strip()
            return 409, error_payload(message=message, status=409, code="job_cancelled"), headers
        message = job.error_message or f"The job {job.status}."
        return 500, error_payload(message=message, status=500, code=job.error_code or "job_failed"), headers

    def _final_job(self, follower: JobFollower) -> Job | None:
        """The job with its candidates once the follower saw it final; None if it gave up."""
        if not follower.final:
            return None
        return selectors.job_get(user=self.request.user, job_id=str(follower.job_id))

    def _answer(self, job: Job) -> Response:
        follower = JobFollower(job.pk)
        for _ in follower:  # the text comes with the candidates; only the end matters here
            pass
        job = self._final_job(follower)
        if job is None or job.status != JobStatus.SUCCEEDED:
            status, body, headers = self._job_error(follower.job_id, job)
            return Response(body, status=status, headers=headers)
        candidates = list(job.candidates.all())
        return Response(
            {
                **self._head(job, self.object_name),
                "choices": [
                    self.choice(c.index, visible_text(c, self.request.user), finish_reason(c, self.request.user))
                    for c in candidates
                ],
                "usage": self._usage(candidates),
            }
        )

def _job_cancel_abandoned(job: Job, user) -> None:
    """Cancel a job whose stream's client went away (unless it already ended)."""
    try:
        job_cancel(job=job, user=user)
    except Conflict:
        return  # final already
    logger.info("stream client left; job cancelled", extra={"job_id": str(job.id)})


class _Chunks:
    """One completion's stream chunks, from a follower of either kind (the formatting does no
    I/O; the end reads the job's result)."""

    def __init__(self, view: "_CompletionApi", job: Job, include_usage: bool, slot: StreamSlot):
        self.view, self.job, self.include_usage, self.slot = view, job, include_usage, slot
        self.head = view._head(job, view.chunk_object_name)
        self.sent: dict[int, str] = defaultdict(str)
        self.attempt = None
        self.ended = False  # an error chunk ended the stream early

    def sync_stream(self) -> Iterator[str]:
        yield from self.opening()
        follower = JobFollower(self.job.pk)
        for event in follower:
            yield from self.on_event(event)
            if self.ended:
                break
        else:
            yield from self.on_end(follower)
        self.slot.completed = True

    async def async_stream(self) -> AsyncIterator[str]:
        for text in self.opening():
            yield text
        follower = AsyncJobFollower(self.job.pk)
        async for event in follower:
            for text in self.on_event(event):
                yield text
            if self.ended:
                break
        else:
            for text in await db_call_in_thread(self.on_end, follower):
                yield text
        self.slot.completed = True

    def chunk(self, choices: list[dict], **extra) -> str:
        body = {**self.head, "choices": choices, **({"usage": None} if self.include_usage else {}), **extra}
        return f"data: {json.dumps(body)}\n\n"

    def error(self, body: dict) -> list[str]:
        self.ended = True
        return [f"data: {json.dumps(body)}\n\n", "data: [DONE]\n\n"]

    def opening(self) -> list[str]:
        return [self.chunk([choice]) for choice in self.view.opening_choices(self.job.params.get("n", 1))]

    def on_event(self, event) -> list[str]:
        if event is None:
            return [": keep-alive\n\n"]
        if self.attempt is not None and event.attempt != self.attempt and any(self.sent.values()):
            # A worker was lost and the job started over; what was sent cannot be taken back.
            message = "The job restarted on another worker after this stream began; its text so far is void."
            return self.error(error_payload(message=message, status=500, code="job_restarted"))
        self.attempt = event.attempt
        out = []
        for index, text in event_deltas(event):
            if text:
                self.sent[index] += text
                out.append(self.chunk([self.view.choice(index, text, None, chunk=True)]))
        return out

    def on_end(self, follower) -> list[str]:
        view = self.view
        job = view._final_job(follower)
        if job is None or job.status != JobStatus.SUCCEEDED:
            return self.error(view._job_error(follower.job_id, job)[1])
        candidates = list(job.candidates.all())
        out = []
        for candidate in candidates:
            # Whatever the result has beyond the streamed text (a worker may hold text back) goes
            # with the last chunk, so the chunks always add up to the result.
            # A candidate the safety filter withheld ends with finish_reason "content_filter" (the
            # tokens already streamed cannot be taken back; clients must drop them, as with OpenAI).
            streamed = self.sent[candidate.index]
            text = visible_text(candidate, view.request.user)
            rest = ""
            if text.startswith(streamed):
                rest = text[len(streamed):]
            elif text:
                logger.warning("streamed text is not a prefix of the result", extra={"job_id": str(job.id)})
            reason = finish_reason(candidate, view.request.user)
            out.append(self.chunk([view.choice(candidate.index, rest, reason, chunk=True)]))
        if self.include_usage:
            out.append(self.chunk([], usage=view._usage(candidates)))
        out.append("data: [DONE]\n\n")
        return out



@_completion_schema(
    summary="Chat completion (OpenAI-compatible)",
    what="`messages`, answered as OpenAI's `chat.completion`",
    request=ChatCompletionInputSerializer,
    response=ChatCompletionSerializer,
    examples=[
        OpenApiExample(
            "stream chunk",
            response_only=True,
            media_type="text/event-stream",
            value='data: {"id": "chatcmpl-...", "object": "chat.completion.chunk", "created": 1700000000, '
            '"model": "smollm2", "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null, '
            '"logprobs": null}]}\n\n',
        )
    ],
)
class ChatCompletionApi(_CompletionApi):
    input_serializer_class = ChatCompletionInputSerializer
    id_prefix = "chatcmpl-"
    object_name = "chat.completion"
    chunk_object_name = "chat.completion.chunk"

    def generate_params(self, data: dict) -> dict:
        params = super().generate_params(data)
        if data.get("max_completion_tokens") is not None:
            params["max_new_tokens"] = data["max_completion_tokens"]
        params["messages"] = [
            {"role": "system" if m["role"] == "developer" else m["role"], "content": m["content"]}
            for m in data["messages"]
        ]
        return params

    def text_fields(self, text: str, *, chunk: bool) -> dict:
        if chunk:
            return {"delta": {"content": text} if text else {}}
        return {"message": {"role": "assistant", "content": text}}

    def opening_choices(self, n: int) -> list[dict]:
        # As OpenAI: each choice's first chunk names the role, before any text.
        return [{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None, "logprobs": None}
                for i in range(n)]


@_completion_schema(
    summary="Text completion (OpenAI-compatible)",
    what="a raw `prompt`, answered as OpenAI's `text_completion`",
    request=CompletionInputSerializer,
    response=CompletionSerializer,
)
class CompletionApi(_CompletionApi):
    input_serializer_class = CompletionInputSerializer
    id_prefix = "cmpl-"
    object_name = "text_completion"
    chunk_object_name = "text_completion"

    def generate_params(self, data: dict) -> dict:
        return {**super().generate_params(data), "prompt": data["prompt"]}

    def text_fields(self, text: str, *, chunk: bool) -> dict:
        return {"text": text}


class ModelNotFound(NotFound):
    code = "model_not_found"


def _model(name: str) -> dict:
    return {"id": name, "object": "model", "created": _SERVED_SINCE, "owned_by": OWNED_BY}


class ModelListApi(_OpenAIApi):
    @extend_schema(
        tags=["openai"],
        summary="Models a completion may name (OpenAI-compatible)",
        operation_id="v1_models_list",
        responses={200: ModelListSerializer, **_errors(UNAUTHENTICATED)},
    )
    def get(self, request: Request) -> Response:
        return Response({"object": "list", "data": [_model(name) for name in model_names()]})


class ModelDetailApi(_OpenAIApi):
    @extend_schema(
        tags=["openai"],
        summary="One model (OpenAI-compatible)",
        responses={200: ModelSerializer, **_errors({**UNAUTHENTICATED, 404: "No such model."})},
    )
    def get(self, request: Request, model_id: str) -> Response:
        if model_id not in model_names():
            raise ModelNotFound(f"The model {model_id!r} does not exist; GET /v1/models lists them.", field="model")
        return Response(_model(model_id))


class UnknownEndpointApi(_OpenAIApi):
    """Other OpenAI endpoints (embeddings, images, ...): a 404 an OpenAI client understands."""

    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(exclude=True)
    def _not_found(self, request: Request, *args, **kwargs) -> Response:
        raise NotFound(f"This service has no endpoint {request.method} {request.path}.")

    get = post = put = patch = delete = _not_found
