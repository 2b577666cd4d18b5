from django.urls import path

from review.apis import views

urlpatterns = [
    path("feedback/", views.FeedbackListCreateApi.as_view(), name="api-feedback"),
    path("candidates/<str:candidate_id>/send", views.CandidateSendApi.as_view(), name="api-candidate-send"),
    path("review/items/", views.ReviewItemListCreateApi.as_view(), name="api-review-items"),
    path("review/items/<str:item_id>", views.ReviewItemDetailApi.as_view(), name="api-review-item"),
    path("review/items/<str:item_id>/assign", views.ReviewItemAssignApi.as_view(), name="api-review-assign"),
    path("review/items/<str:item_id>/approve", views.ReviewItemApproveApi.as_view(), name="api-review-approve"),
    path("review/items/<str:item_id>/reject", views.ReviewItemRejectApi.as_view(), name="api-review-reject"),
    path("review/items/<str:item_id>/request-changes", views.ReviewItemRequestChangesApi.as_view(),
         name="api-review-request-changes"),
    path("review/items/<str:item_id>/resubmit", views.ReviewItemResubmitApi.as_view(), name="api-review-resubmit"),
    path("review/items/<str:item_id>/publish", views.ReviewItemPublishApi.as_view(), name="api-review-publish"),
    path("review/export", views.ApprovedExportApi.as_view(), name="api-review-export"),
    path("review/quality", views.QualityApi.as_view(), name="api-review-quality"),
]
