from django.urls import path

from monitoring import views

urlpatterns = [
    path("", views.dashboard, name="monitoring-dashboard"),
    path("alerts/<int:alert_id>/acknowledge", views.alert_acknowledge_view, name="monitoring-alert-acknowledge"),
]
