"""Job endpoints: thin views that validate, call a service or selector, and render."""

import json
from collections.abc import AsyncIterator, Iterator

from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import selectors
from generation.apis.filters import JobFilter
from generation.apis.serializers import IDEMPOTENCY_KEY_MAX, JobCreateInputSerializer, JobOutputSerializer
from generation.apis.streaming import (
    AsyncJobFollower,
    JobFollower,
    StreamSlot,
    db_call_in_thread,
    event_deltas,
    streaming_response,
)
from generation.apis.throttling import UserThrottle
from generation.exceptions import InvalidInput
from generation.models import Job
from generation.services.jobs import job_cancel, job_create

ERROR_RESPONSES = {
    400: OpenApiResponse(description="Invalid input; `errors` names each field and its limit."),
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Your roles do not allow this."),
}
IDEMPOTENCY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="Repeat a request safely: the same key returns the same job (200); another body with it is 409.",
)


def idempotency_key_get(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` header, checked against its length limit."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (0 < len(key) <= IDEMPOTENCY_KEY_MAX):
        raise InvalidInput({"Idempotency-Key": [f"Must be 1 to {IDEMPOTENCY_KEY_MAX} characters."]})
    return key


class JobCreateThrottle(UserThrottle):
    """Per-user rate of job creation (GENAI_THROTTLE_JOB_CREATE); listing is not counted."""

    scope = "job_create"

    def allow_request(self, request, view) -> bool:
        return request.method != "POST" or super().allow_request(request, view)


class JobListCreateApi(generics.ListAPIView):
    serializer_class = JobOutputSerializer
    filterset_class = JobFilter
    throttle_classes = [UserThrottle, JobCreateThrottle]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Job.objects.none()
        return selectors.job_list(user=self.request.user)

    @extend_schema(summary="List your jobs (reviewers and admins: all jobs)", responses=JobOutputSerializer(many=True))
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a job",
        request=JobCreateInputSerializer,
        parameters=[IDEMPOTENCY_HEADER],
        responses={
            201: JobOutputSerializer,
            200: OpenApiResponse(JobOutputSerializer, description="Replayed by Idempotency-Key."),
            409: OpenApiResponse(description="Idempotency-Key reused with another request."),
            413: OpenApiResponse(description="Body too large."),
            415: OpenApiResponse(description="Not JSON."),
            429: OpenApiResponse(description="Too many queued jobs or requests; see Retry-After."),
            **ERROR_RESPONSES,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = JobCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job, created = job_create(
            owner=request.user, idempotency_key=idempotency_key_get(request), **serializer.validated_data
        )
        return Response(
            JobOutputSerializer(job, context={"request": request}).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers={"Location": f"/api/jobs/{job.id}"},
        )


class JobDetailApi(APIView):
    @extend_schema(summary="Get a job with its results", responses={200: JobOutputSerializer, 404: None})
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        return Response(JobOutputSerializer(job, context={"request": request}).data)


class JobMetricPointSerializer(serializers.Serializer):
    step = serializers.IntegerField()
    split = serializers.CharField()
    values = serializers.DictField(child=serializers.FloatField())
    created_at = serializers.DateTimeField()


class JobMetricsApi(APIView):
    @extend_schema(
        summary="A training job's curves: one point per logged step",
        responses={200: JobMetricPointSerializer(many=True), 404: None},
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(user=request.user, job_id=job_id)
        points = selectors.job_metric_points(job_id=job.pk)
        return Response(JobMetricPointSerializer(points, many=True).data)


class JobCancelApi(APIView):
    @extend_schema(
        summary="Cancel a queued or running job",
        request=None,
        responses={200: JobOutputSerializer, 404: None, 409: OpenApiResponse(description="The job is already final.")},
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = job_cancel(job=selectors.job_get(user=request.user, job_id=job_id), user=request.user)
        return Response(JobOutputSerializer(job, context={"request": request}).data)


class EventStreamRenderer(BaseRenderer):
    media_type = "text/event-stream"
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return f"event: error\ndata: {json.dumps(data)}\n\n".encode()


def _sse(event: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


class JobStreamApi(APIView):
    renderer_classes = [EventStreamRenderer, JSONRenderer]

    @extend_schema(
        summary="Stream a job's tokens (Server-Sent Events)",
        description=(
            "Events: `token` `{candidate, text, attempt}` as text is generated; `restart` `{attempt}` when a "
            "retried attempt starts over; then one `result` with the job (as GET /api/jobs/{id}). Works after "
            "the job finished too (replays its text). Resume with the `Last-Event-ID` header."
        ),
        responses={(200, "text/event-stream"): OpenApiTypes.STR, 404: None},
    )
    def get(self, request: Request, job_id: str) -> StreamingHttpResponse:
        job = selectors.job_get(user=request.user, job_id=job_id)
        last_id = request.headers.get("Last-Event-ID", "0")
        after = int(last_id) if last_id.isdigit() else 0
        events = _JobEvents(job.pk, request.user)
        return streaming_response(
            request=request,
            sync_stream=lambda: events.sync_stream(after),
            async_stream=lambda: events.async_stream(after),
            slot=StreamSlot.acquire(),  # viewers come back (Last-Event-ID): leaving does not cancel the job
        )


class _JobEvents:
    """A job's SSE events, from a follower of either kind (the formatting does no I/O)."""

    def __init__(self, job_id, user):
        self.job_id, self.user = job_id, user
        self.attempt = None

    def sync_stream(self, after: int) -> Iterator[str]:
        yield "retry: 1000\n\n"
        follower = JobFollower(self.job_id, after_id=after)
        for event in follower:
            yield from self.on_event(event)
        yield from self.on_end(follower)

    async def async_stream(self, after: int) -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        follower = AsyncJobFollower(self.job_id, after_id=after)
        async for event in follower:
            for text in self.on_event(event):
                yield text
        for text in await db_call_in_thread(self.on_end, follower):
            yield text

    def on_event(self, event) -> list[str]:
        if event is None:
            return [": keep-alive\n\n"]
        out = []
        if self.attempt is not None and event.attempt != self.attempt:
            out.append(_sse("restart", {"attempt": event.attempt}, event.id))
        self.attempt = event.attempt
        for index, text in event_deltas(event):
            out.append(_sse("token", {"candidate": index, "text": text, "attempt": event.attempt}, event.id))
        return out

    def on_end(self, follower) -> list[str]:
        if follower.final:
            job = selectors.job_get(user=self.user, job_id=str(self.job_id))
            return [_sse("result", JobOutputSerializer(job, context={"viewer": self.user}).data)]
        if follower.gone:
            return [_sse("error", {"code": "not_found", "detail": "The job was deleted."})]
        return [_sse("timeout", {"detail": f"Stream closed after {settings.GENAI_STREAM_MAX_SECONDS} s; reconnect."})]
