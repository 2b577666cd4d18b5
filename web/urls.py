from django.contrib.auth import views as auth_views
from django.urls import path

from web.views import agent, common, company, marketing, reviewing, staff

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("start/", common.start, name="web-start"),
    path("agent/", agent.agent_page, name="web-agent"),
    path("agent/jobs/<str:job_id>/drafts", agent.agent_job_drafts, name="web-agent-drafts"),
    path("agent/candidates/<str:candidate_id>/send", agent.candidate_send_view, name="web-candidate-send"),
    path("agent/candidates/<str:candidate_id>/discard", agent.candidate_discard_view, name="web-candidate-discard"),
    path("agent/candidates/<str:candidate_id>/rate", agent.candidate_rate_view, name="web-candidate-rate"),
    path("agent/candidates/<str:candidate_id>/report", agent.candidate_report_view, name="web-candidate-report"),
    path("marketing/", marketing.marketing_page, name="web-marketing"),
    path("marketing/create", marketing.marketing_create, name="web-marketing-create"),
    path("marketing/upload", marketing.marketing_upload, name="web-marketing-upload"),
    path("marketing/batches/<str:batch_id>/", marketing.batch_page, name="web-batch"),
    path("marketing/candidates/<str:candidate_id>/submit", marketing.copy_submit, name="web-copy-submit"),
    path("marketing/candidates/<str:candidate_id>/variants", marketing.copy_variants, name="web-copy-variants"),
    path("marketing/variants/<str:job_id>", marketing.variants_partial, name="web-variants"),
    path("review/", reviewing.queue_page, name="web-review-queue"),
    path("review/flagged/", reviewing.flagged_page, name="web-review-flagged"),
    path("review/items/<str:item_id>/", reviewing.item_page, name="web-review-item"),
    path("review/items/<str:item_id>/<str:action>", reviewing.item_action, name="web-review-action"),
    path("quality/", reviewing.quality_page, name="web-quality"),
    path("company/", company.company_profile_page, name="web-company-profile"),
    path("staff/jobs/", staff.jobs_page, name="web-staff-jobs"),
    path("staff/models/", staff.models_page, name="web-staff-models"),
    path("staff/models/<int:version_id>/promote", staff.model_promote, name="web-staff-promote"),
    path("staff/training/", staff.training_page, name="web-staff-training"),
]
