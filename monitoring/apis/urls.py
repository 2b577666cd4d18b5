from django.urls import path

from monitoring.apis import views

urlpatterns = [
    path("news/", views.NewsListCreateApi.as_view(), name="api-news-list"),
    path("news/<int:item_id>", views.NewsDetailApi.as_view(), name="api-news-detail"),
    path("scores/", views.ScoreListApi.as_view(), name="api-score-list"),
    path("scores/series", views.ScoreSeriesApi.as_view(), name="api-score-series"),
    path("watchlist/", views.WatchListApi.as_view(), name="api-watchlist"),
    path("watchlist/<int:entity_id>", views.WatchedEntityDetailApi.as_view(), name="api-watchlist-detail"),
    path("alert-rules/", views.AlertRuleListApi.as_view(), name="api-alert-rule-list"),
    path("alert-rules/<int:rule_id>", views.AlertRuleDetailApi.as_view(), name="api-alert-rule-detail"),
    path("alerts/", views.AlertListApi.as_view(), name="api-alert-list"),
    path("alerts/<int:alert_id>", views.AlertDetailApi.as_view(), name="api-alert-detail"),
    path("alerts/<int:alert_id>/acknowledge", views.AlertAcknowledgeApi.as_view(), name="api-alert-acknowledge"),
    path("silences/", views.SilenceListApi.as_view(), name="api-silence-list"),
    path("silences/<int:silence_id>", views.SilenceDetailApi.as_view(), name="api-silence-detail"),
]
