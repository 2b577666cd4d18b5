"""Monitoring REST endpoints (analyst and admin roles): news, scores, watch list, alert rules,
alerts (with acknowledge) and silences. Thin: validate, call a service or selector, render."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import roles
from generation.apis.parsers import BoundedJSONParser, RequestTooLarge
from generation.exceptions import InvalidInput
from monitoring import selectors
from monitoring.apis import serializers as s
from monitoring.services import alerts as alert_services
from monitoring.services import news as news_services
from monitoring.services import rules as rule_services

ERRORS = {
    401: OpenApiResponse(description="Not authenticated."),
    403: OpenApiResponse(description="Needs the analyst or admin role."),
}


class IsAnalyst(BasePermission):
    message = "Monitoring needs the analyst or admin role."

    def has_permission(self, request, view) -> bool:
        return roles.user_has_role(request.user, roles.ANALYST, roles.ADMIN)


class MonitoringApi(APIView):
    permission_classes = [IsAuthenticated, IsAnalyst]


class MonitoringListApi(generics.ListAPIView):
    permission_classes = [IsAuthenticated, IsAnalyst]


class NewsJSONParser(BoundedJSONParser):
    limit_setting = "GENAI_NEWS_MAX_UPLOAD_BYTES"
    max_keys_setting = None  # a file of items: GENAI_NEWS_MAX_UPLOAD_BYTES bounds it


def _validated_items(rows: list, *, default_source: str | None = None) -> list[dict]:
    """Validate every row; errors name the row and the field: {"items": {"3": {"published_at": [...]}}}."""
    limit = settings.GENAI_NEWS_MAX_BULK
    if len(rows) > limit:
        raise InvalidInput({"items": [f"At most {limit} items per request (GENAI_NEWS_MAX_BULK); got {len(rows)}."]})
    if not rows:
        raise InvalidInput({"items": ["No items."]})
    items, errors = [], {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors[str(index)] = {"non_field_errors": ["Expected an object."]}
            continue
        if default_source and not row.get("source"):
            row = {**row, "source": default_source}
        serializer = s.NewsItemInputSerializer(data=row)
        if serializer.is_valid():
            items.append(dict(serializer.validated_data))
        else:
            errors[str(index)] = serializer.errors
    if errors:
        raise InvalidInput({"items": errors})
    return items


class NewsListCreateApi(MonitoringListApi):
    serializer_class = s.NewsItemOutputSerializer
    parser_classes = [NewsJSONParser, MultiPartParser]

    def get_queryset(self):
        params = self.request.query_params
        since, until = _date_param(params, "since"), _date_param(params, "until")
        return selectors.news_list(
            entity=params.get("entity", ""), source=params.get("source", ""), label=params.get("label", ""), since=since, until=until
        )

    @extend_schema(
        summary="List news items, newest first",
        parameters=[OpenApiParameter(n, str, required=False) for n in ("entity", "source", "label", "since", "until")],
        responses={200: s.NewsItemOutputSerializer(many=True), 400: None, **ERRORS},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Ingest news: one item, a JSON array, or a CSV/JSON file (multipart `file`)",
        description=(
            f"At most GENAI_NEWS_MAX_BULK ({settings.GENAI_NEWS_MAX_BULK}) items per request. Items with a url or text "
            "already stored (or repeated in the request) are skipped and counted. If any item is invalid nothing is "
            "stored and `errors.items` names each bad item's index and field. New items are scored by a "
            "`sentiment_score` job queued after the request commits; the alert rules are evaluated when it ends."
        ),
        request={"application/json": s.NewsItemInputSerializer, "multipart/form-data": s.NewsUploadSerializer},
        responses={201: s.IngestReportSerializer, 400: OpenApiResponse(description="Invalid items."), 413: None, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        limit = settings.GENAI_NEWS_MAX_UPLOAD_BYTES
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"Upload exceeds {limit} bytes (GENAI_NEWS_MAX_UPLOAD_BYTES).")
        if request.content_type.startswith("multipart/"):
            upload = s.NewsUploadSerializer(data=request.data)
            upload.is_valid(raise_exception=True)
            file = upload.validated_data["file"]
            if file.size > limit:
                raise RequestTooLarge(f"Upload exceeds {limit} bytes (GENAI_NEWS_MAX_UPLOAD_BYTES).")
            rows = news_services.news_rows_from_file(
                data=file.read(), name=file.name or "upload.csv", max_rows=settings.GENAI_NEWS_MAX_BULK
            )
            items = _validated_items(rows, default_source=upload.validated_data.get("source") or "upload")
        elif isinstance(request.data, list):
            items = _validated_items(request.data)
        else:
            serializer = s.NewsItemInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            items = [dict(serializer.validated_data)]
        report = news_services.news_ingest(items=items, user=request.user)
        return Response(s.IngestReportSerializer(report.as_dict()).data, status=status.HTTP_201_CREATED)


def _date_param(params, name: str):
    from django.utils.dateparse import parse_date, parse_datetime

    raw = params.get(name)
    if not raw:
        return None
    try:
        value = parse_datetime(raw)
        if value is None and (day := parse_date(raw)) is not None:
            from datetime import datetime, time

            value = datetime.combine(day, time())
    except ValueError:
        value = None
    if value is None:
        raise InvalidInput({name: [f"Not a date: {raw!r}; use ISO 8601, e.g. 2026-11-30T09:00:00Z."]})
    if value.tzinfo is None:
        from datetime import UTC

        value = value.replace(tzinfo=UTC)
    return value


class NewsDetailApi(MonitoringApi):
    @extend_schema(summary="Get a news item", responses={200: s.NewsItemOutputSerializer, 404: None, **ERRORS})
    def get(self, request: Request, item_id: int) -> Response:
        return Response(s.NewsItemOutputSerializer(selectors.news_get(item_id=item_id)).data)


class ScoreListApi(MonitoringListApi):
    serializer_class = s.ScoreOutputSerializer

    def get_queryset(self):
        params = self.request.query_params
        item = params.get("item")
        if item is not None and not item.isdigit():
            raise InvalidInput({"item": ["An item id."]})
        return selectors.score_list(
            entity=params.get("entity", ""), model_version=params.get("model_version", ""), item_id=int(item) if item else None
        )

    @extend_schema(
        summary="List sentiment scores (every model version's), newest first",
        parameters=[OpenApiParameter(n, str, required=False) for n in ("entity", "model_version", "item")],
        responses={200: s.ScoreOutputSerializer(many=True), **ERRORS},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class ScoreSeriesApi(MonitoringApi):
    @extend_schema(
        summary="Sentiment over time per entity (count, negatives, mean score per hour or day)",
        parameters=[
            OpenApiParameter("entity", str, required=False, many=True),
            OpenApiParameter("since", str, required=False, description="Default: 7 days ago."),
            OpenApiParameter("until", str, required=False),
            OpenApiParameter("bucket", str, required=False, enum=["hour", "day"]),
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Entity -> its points, oldest first: {at, count, negative, mean_score}.",
            ),
            400: None,
            **ERRORS,
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        bucket = params.get("bucket", "hour")
        if bucket not in ("hour", "day"):
            raise InvalidInput({"bucket": ["hour or day."]})
        since = _date_param(params, "since") or selectors.default_series_since()
        until = _date_param(params, "until")
        series = selectors.sentiment_series(entities=params.getlist("entity"), since=since, until=until, bucket=bucket)
        return Response({k: s.SeriesPointSerializer(v, many=True).data for k, v in series.items()})


class WatchListApi(MonitoringListApi):
    serializer_class = s.WatchedEntitySerializer

    def get_queryset(self):
        return selectors.watched_entity_list()

    @extend_schema(summary="The watch list", responses={200: s.WatchedEntitySerializer(many=True), **ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Watch an entity", request=s.WatchedEntitySerializer,
                   responses={201: s.WatchedEntitySerializer, 400: None, 409: None, **ERRORS})
    def post(self, request: Request) -> Response:
        serializer = s.WatchedEntitySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        entity = rule_services.watched_entity_save(data=dict(serializer.validated_data))
        return Response(s.WatchedEntitySerializer(entity).data, status=status.HTTP_201_CREATED)


class WatchedEntityDetailApi(MonitoringApi):
    @extend_schema(summary="Get a watched entity", responses={200: s.WatchedEntitySerializer, 404: None, **ERRORS})
    def get(self, request: Request, entity_id: int) -> Response:
        return Response(s.WatchedEntitySerializer(selectors.watched_entity_get(entity_id=entity_id)).data)

    @extend_schema(summary="Change a watched entity", request=s.WatchedEntitySerializer,
                   responses={200: s.WatchedEntitySerializer, 400: None, 404: None, 409: None, **ERRORS})
    def patch(self, request: Request, entity_id: int) -> Response:
        entity = selectors.watched_entity_get(entity_id=entity_id)
        serializer = s.WatchedEntitySerializer(entity, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        entity = rule_services.watched_entity_save(entity=entity, data=dict(serializer.validated_data))
        return Response(s.WatchedEntitySerializer(entity).data)

    @extend_schema(summary="Stop watching an entity", responses={204: None, 404: None, **ERRORS})
    def delete(self, request: Request, entity_id: int) -> Response:
        selectors.watched_entity_get(entity_id=entity_id).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertRuleListApi(MonitoringListApi):
    serializer_class = s.AlertRuleSerializer

    def get_queryset(self):
        return selectors.alert_rule_list()

    @extend_schema(summary="List alert rules", responses={200: s.AlertRuleSerializer(many=True), **ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create an alert rule", request=s.AlertRuleSerializer,
                   responses={201: s.AlertRuleSerializer, 400: None, 409: None, **ERRORS})
    def post(self, request: Request) -> Response:
        serializer = s.AlertRuleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = rule_services.alert_rule_create(user=request.user, data=dict(serializer.validated_data))
        return Response(s.AlertRuleSerializer(rule).data, status=status.HTTP_201_CREATED)


class AlertRuleDetailApi(MonitoringApi):
    @extend_schema(summary="Get an alert rule", responses={200: s.AlertRuleSerializer, 404: None, **ERRORS})
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(s.AlertRuleSerializer(selectors.alert_rule_get(rule_id=rule_id)).data)

    @extend_schema(summary="Change an alert rule", request=s.AlertRuleSerializer,
                   responses={200: s.AlertRuleSerializer, 400: None, 404: None, 409: None, **ERRORS})
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = selectors.alert_rule_get(rule_id=rule_id)
        serializer = s.AlertRuleSerializer(rule, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = rule_services.alert_rule_update(rule=rule, data=dict(serializer.validated_data))
        return Response(s.AlertRuleSerializer(rule).data)

    @extend_schema(summary="Delete an alert rule (and its alerts)", responses={204: None, 404: None, **ERRORS})
    def delete(self, request: Request, rule_id: int) -> Response:
        rule_services.alert_rule_delete(rule=selectors.alert_rule_get(rule_id=rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertListApi(MonitoringListApi):
    serializer_class = s.AlertOutputSerializer

    def get_queryset(self):
        params = self.request.query_params
        rule = params.get("rule")
        if rule is not None and not rule.isdigit():
            raise InvalidInput({"rule": ["A rule id."]})
        bad = [v for v in params.get("status", "").split(",") if v and v not in ("pending", "firing", "resolved")]
        if bad:
            raise InvalidInput({"status": [f"pending, firing or resolved (comma-separated), not {bad[0]!r}."]})
        return selectors.alert_list(status=params.get("status", ""), entity=params.get("entity", ""), rule_id=int(rule) if rule else None)

    @extend_schema(
        summary="List alerts, newest first",
        parameters=[OpenApiParameter(n, str, required=False) for n in ("status", "entity", "rule")],
        responses={200: s.AlertOutputSerializer(many=True), 400: None, **ERRORS},
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class AlertDetailApi(MonitoringApi):
    @extend_schema(summary="Get an alert with its transitions and deliveries",
                   responses={200: s.AlertDetailSerializer, 404: None, **ERRORS})
    def get(self, request: Request, alert_id: int) -> Response:
        return Response(s.AlertDetailSerializer(selectors.alert_get(alert_id=alert_id)).data)


class AlertAcknowledgeApi(MonitoringApi):
    @extend_schema(summary="Acknowledge an alert", request=None,
                   responses={200: s.AlertOutputSerializer, 404: None, 409: OpenApiResponse(description="Resolved already."), **ERRORS})
    def post(self, request: Request, alert_id: int) -> Response:
        alert = alert_services.alert_acknowledge(alert=selectors.alert_get(alert_id=alert_id), user=request.user)
        return Response(s.AlertOutputSerializer(alert).data)


class SilenceListApi(MonitoringListApi):
    serializer_class = s.SilenceSerializer

    def get_queryset(self):
        return selectors.silence_list(active_only=self.request.query_params.get("active") in ("1", "true"))

    @extend_schema(summary="List silences", parameters=[OpenApiParameter("active", bool, required=False)],
                   responses={200: s.SilenceSerializer(many=True), **ERRORS})
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Silence matching alerts for a time range, once or every day or week",
        description=(
            "Mutes the notifications of the alerts matching every given matcher (rule, entity, severity) from "
            "starts_at to ends_at; with recurrence daily or weekly the same wall-clock window (in `timezone`) "
            "repeats until repeat_until. The caller is recorded as its author; a comment is required. A window lasts "
            f"at most GENAI_SILENCE_MAX_HOURS ({settings.GENAI_SILENCE_MAX_HOURS}), a recurring silence repeats for at "
            f"most GENAI_SILENCE_MAX_RECURRING_DAYS ({settings.GENAI_SILENCE_MAX_RECURRING_DAYS})."
        ),
        request=s.SilenceSerializer,
        responses={201: s.SilenceSerializer, 400: None, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        serializer = s.SilenceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        silence = rule_services.silence_create(user=request.user, data=dict(serializer.validated_data))
        return Response(s.SilenceSerializer(silence).data, status=status.HTTP_201_CREATED)


class SilenceDetailApi(MonitoringApi):
    @extend_schema(summary="Get a silence", responses={200: s.SilenceSerializer, 404: None, **ERRORS})
    def get(self, request: Request, silence_id: int) -> Response:
        return Response(s.SilenceSerializer(selectors.silence_get(silence_id=silence_id)).data)

    @extend_schema(summary="Expire a silence now (a recurring one stops repeating)",
                   responses={200: s.SilenceSerializer, 404: None, **ERRORS})
    def delete(self, request: Request, silence_id: int) -> Response:
        silence = rule_services.silence_expire(silence=selectors.silence_get(silence_id=silence_id))
        return Response(s.SilenceSerializer(silence).data)
