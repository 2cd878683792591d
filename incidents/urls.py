from django.urls import path

from incidents import views

app_name = "incidents"

urlpatterns = [
    path("ack/<str:token>/", views.acknowledge, name="acknowledge"),
    path("pagerduty/webhook/", views.pagerduty_webhook, name="pagerduty_webhook"),
]
