from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("webhooks/", include("finance.urls")),
    path("security/", include("security.urls")),
    path("incidents/", include("incidents.urls")),
]

if settings.SANDBOX_PROVIDER_ENABLED:
    urlpatterns.append(path("sandbox/", include("sandbox.urls")))
