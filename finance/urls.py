from django.urls import path

from finance import views

app_name = "finance"
urlpatterns = [
    path("provider/<slug:provider>/", views.provider_webhook, name="provider-webhook"),
]
