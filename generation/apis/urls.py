from django.urls import path

from generation.apis import auth, company, jobs, kinds, knowledge, model_versions
from generation.apis import copy as copy_apis

urlpatterns = [
    path("jobs/", jobs.JobListCreateApi.as_view(), name="api-job-list"),
    path("jobs/<str:job_id>", jobs.JobDetailApi.as_view(), name="api-job-detail"),
    path("jobs/<str:job_id>/cancel", jobs.JobCancelApi.as_view(), name="api-job-cancel"),
    path("jobs/<str:job_id>/stream", jobs.JobStreamApi.as_view(), name="api-job-stream"),
    path("jobs/<str:job_id>/metrics", jobs.JobMetricsApi.as_view(), name="api-job-metrics"),
    path("models/", model_versions.ModelVersionListApi.as_view(), name="api-model-version-list"),
    path("models/<str:version_id>", model_versions.ModelVersionDetailApi.as_view(), name="api-model-version-detail"),
    path(
        "models/<str:version_id>/promote",
        model_versions.ModelVersionPromoteApi.as_view(),
        name="api-model-version-promote",
    ),
    path("kinds/", kinds.KindListApi.as_view(), name="api-kind-list"),
    path("auth/token/", auth.TokenApi.as_view(), name="api-token"),
    path("auth/me/", auth.MeApi.as_view(), name="api-me"),
    path("knowledge/import", knowledge.KnowledgeImportApi.as_view(), name="api-knowledge-import"),
    path("knowledge/docs/", knowledge.KnowledgeDocListApi.as_view(), name="api-knowledge-doc-list"),
    path("knowledge/docs/<str:doc_id>", knowledge.KnowledgeDocDetailApi.as_view(), name="api-knowledge-doc-detail"),
    path("company-profile", company.CompanyProfileApi.as_view(), name="api-company-profile"),
    path("copy/brand-examples/", copy_apis.BrandExampleListCreateApi.as_view(), name="api-brand-example-list"),
    path(
        "copy/brand-examples/<str:example_id>", copy_apis.BrandExampleDetailApi.as_view(), name="api-brand-example-detail"
    ),
]
