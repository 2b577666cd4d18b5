"""Feedback, review queue and quality endpoints: thin views over review.services/selectors."""

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generation import roles
from generation.exceptions import Forbidden, InvalidInput
from review import selectors
from review.apis.serializers import (
    CandidateSendInputSerializer,
    CandidateSendOutputSerializer,
    FeedbackInputSerializer,
    FeedbackOutputSerializer,
    QualityRowSerializer,
    ReviewAssignInputSerializer,
    ReviewDecisionInputSerializer,
    ReviewItemOutputSerializer,
    ReviewResubmitInputSerializer,
    ReviewSubmitInputSerializer,
)
from review.models import Feedback, ReviewItem, ReviewStatus
from review.services import reviews
from review.services.feedback import candidate_send, feedback_submit

ERRORS = {
    400: OpenApiResponse(description="Invalid input; `errors` names each field."),
    403: OpenApiResponse(description="Your roles do not allow this."),
    404: OpenApiResponse(description="Not found, or not yours to see."),
}


class FeedbackListCreateApi(generics.ListAPIView):
    serializer_class = FeedbackOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Feedback.objects.none()
        rows = selectors.feedback_list(user=self.request.user)
        if candidate := self.request.query_params.get("candidate"):
            rows = rows.filter(candidate_id=candidate) if candidate.isdigit() else rows.none()
        if kind := self.request.query_params.get("kind"):
            rows = rows.filter(candidate__job__kind=kind)
        return rows

    @extend_schema(
        summary="List feedback (yours; reviewers and admins: all)",
        parameters=[OpenApiParameter("candidate", int), OpenApiParameter("kind", str)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Rate, report, edit or decide a candidate (creates or updates your feedback on it)",
        request=FeedbackInputSerializer,
        responses={200: FeedbackOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        candidate = selectors.candidate_get(user=request.user, candidate_id=fields.pop("candidate"))
        feedback = feedback_submit(candidate=candidate, user=request.user, **fields)
        return Response(FeedbackOutputSerializer(feedback).data)


class CandidateSendApi(APIView):
    @extend_schema(
        summary="Send a draft (as is or edited); needs approval first where review is required",
        request=CandidateSendInputSerializer,
        responses={200: CandidateSendOutputSerializer, **ERRORS},
    )
    def post(self, request: Request, candidate_id: str) -> Response:
        data = CandidateSendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        candidate = selectors.candidate_get(user=request.user, candidate_id=candidate_id)
        feedback, item = candidate_send(candidate=candidate, user=request.user, text=data.validated_data.get("text"))
        return Response(CandidateSendOutputSerializer({"feedback": feedback, "review_item": item}).data)


class ReviewItemListCreateApi(generics.ListAPIView):
    serializer_class = ReviewItemOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ReviewItem.objects.none()
        params = self.request.query_params
        status_ = params.get("status")
        if status_ and status_ not in ReviewStatus.values:
            raise InvalidInput({"status": [f"One of: {', '.join(ReviewStatus.values)}."]})
        flagged = params.get("flagged")
        return selectors.review_item_list(
            user=self.request.user, status=status_, kind=params.get("kind"), assigned=params.get("assigned"),
            flagged=None if flagged in (None, "") else flagged.lower() in ("1", "true", "yes"),
        ).prefetch_related("events__actor")

    @extend_schema(
        summary="The review queue (reviewers and admins: all items; others: what they submitted)",
        parameters=[OpenApiParameter("status", str, enum=ReviewStatus.values), OpenApiParameter("kind", str),
                    OpenApiParameter("assigned", str, description="`me`, `none` or a username"),
                    OpenApiParameter("flagged", bool)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Submit a candidate for review",
        request=ReviewSubmitInputSerializer,
        responses={201: ReviewItemOutputSerializer, 409: OpenApiResponse(description="Already reviewed."), **ERRORS},
    )
    def post(self, request: Request) -> Response:
        data = ReviewSubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        candidate = selectors.candidate_get(user=request.user, candidate_id=data.validated_data["candidate"])
        item = reviews.review_item_submit(candidate=candidate, user=request.user, text=data.validated_data.get("text"))
        return Response(ReviewItemOutputSerializer(item).data, status=status.HTTP_201_CREATED)


class ReviewItemDetailApi(APIView):
    @extend_schema(summary="A review item with its audit log", responses={200: ReviewItemOutputSerializer, 404: None})
    def get(self, request: Request, item_id: str) -> Response:
        return Response(ReviewItemOutputSerializer(selectors.review_item_get(user=request.user, item_id=item_id)).data)


def _decision(action):
    class DecisionApi(APIView):
        @extend_schema(
            summary=f"{action.replace('_', ' ').capitalize()} a pending review item (reviewers and admins)",
            request=ReviewDecisionInputSerializer,
            responses={200: ReviewItemOutputSerializer, 409: OpenApiResponse(description="Not pending."), **ERRORS},
            operation_id=f"review_items_{action}",
        )
        def post(self, request: Request, item_id: str) -> Response:
            data = ReviewDecisionInputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            item = selectors.review_item_get(user=request.user, item_id=item_id)
            service = getattr(reviews, f"review_item_{action}")
            item = service(item=item, user=request.user, reason=data.validated_data["reason"])
            return Response(ReviewItemOutputSerializer(selectors.review_item_get(user=request.user, item_id=item.pk)).data)

    DecisionApi.__name__ = f"ReviewItem{action.title().replace('_', '')}Api"
    return DecisionApi


ReviewItemApproveApi = _decision("approve")
ReviewItemRejectApi = _decision("reject")
ReviewItemRequestChangesApi = _decision("request_changes")


class ReviewItemAssignApi(APIView):
    @extend_schema(summary="Assign a pending item to a reviewer (reviewers take items; admins assign anyone)",
                   request=ReviewAssignInputSerializer, responses={200: ReviewItemOutputSerializer, **ERRORS})
    def post(self, request: Request, item_id: str) -> Response:
        data = ReviewAssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = selectors.review_item_get(user=request.user, item_id=item_id)
        username = data.validated_data["assignee"]
        assignee = None
        if username:
            assignee = get_user_model().objects.filter(username=username).first()
            if assignee is None:
                raise InvalidInput({"assignee": [f"No user named {username!r}."]})
        item = reviews.review_item_assign(item=item, user=request.user, assignee=assignee)
        return Response(ReviewItemOutputSerializer(selectors.review_item_get(user=request.user, item_id=item.pk)).data)


class ReviewItemResubmitApi(APIView):
    @extend_schema(summary="Resubmit an item after changes were requested (the submitter)",
                   request=ReviewResubmitInputSerializer, responses={200: ReviewItemOutputSerializer, **ERRORS})
    def post(self, request: Request, item_id: str) -> Response:
        data = ReviewResubmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = selectors.review_item_get(user=request.user, item_id=item_id)
        item = reviews.review_item_resubmit(item=item, user=request.user, text=data.validated_data["text"])
        return Response(ReviewItemOutputSerializer(selectors.review_item_get(user=request.user, item_id=item.pk)).data)


class ReviewItemPublishApi(APIView):
    @extend_schema(summary="Publish approved content (anything not approved: 409)", request=None,
                   responses={200: ReviewItemOutputSerializer, 409: OpenApiResponse(description="Not approved."), **ERRORS})
    def post(self, request: Request, item_id: str) -> Response:
        item = selectors.review_item_get(user=request.user, item_id=item_id)
        item = reviews.review_item_publish(item=item, user=request.user)
        return Response(ReviewItemOutputSerializer(selectors.review_item_get(user=request.user, item_id=item.pk)).data)


class ApprovedExportApi(generics.ListAPIView):
    """Approved content only: what may be exported to the shop or CMS."""

    serializer_class = ReviewItemOutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ReviewItem.objects.none()
        return selectors.review_item_list(
            user=self.request.user, status=ReviewStatus.APPROVED, kind=self.request.query_params.get("kind")
        ).prefetch_related("events__actor")

    @extend_schema(summary="Export approved content (never pending, rejected or changes-requested items)",
                   parameters=[OpenApiParameter("kind", str)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class QualityApi(APIView):
    @extend_schema(summary="Quality per model version and job kind: acceptance, edit distance, ratings",
                   parameters=[OpenApiParameter("kind", str)], responses={200: QualityRowSerializer(many=True)})
    def get(self, request: Request) -> Response:
        if not roles.user_has_role(request.user, roles.REVIEWER, roles.ADMIN, roles.ANALYST):
            raise Forbidden("Quality metrics are for reviewers, analysts and admins.")
        rows = selectors.quality_by_model(kind=request.query_params.get("kind") or None)
        return Response(QualityRowSerializer([r.as_dict() for r in rows], many=True).data)
