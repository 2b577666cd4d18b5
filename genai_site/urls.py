from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from generation.apis import health

handler500 = "generation.apis.exceptions.server_error"  # JSON under /api/ and /v1/; 503 when the database is away

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("generation.apis.urls")),
    path("api/", include("review.apis.urls")),  # feedback, review queue, quality
    path("api/", include("monitoring.apis.urls")),  # news, sentiment, alert rules, alerts, silences
    path("monitoring/", include("monitoring.urls")),  # the sentiment dashboard
    path("v1/", include("generation.apis.openai_urls")),  # OpenAI-compatible
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("", include("web.urls")),  # the pages: agent, marketing, review, staff, log-in
    path("", include("generation.urls")),
]
