from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from config.password_reset import PasswordResetView
from incidents.api import IncidentViewSet
from tracker.api import ActionItemViewSet, PersonViewSet
from tracker.views.webhooks import ticket_webhook

admin.site.site_header = "Incident follow-up tracker"
admin.site.site_title = "Follow-up tracker"

# Unknown /api/ paths answer in the API's error format; other paths get the normal page.
handler404 = "config.api.not_found"
handler500 = "config.api.server_error"

router = DefaultRouter()
router.include_root_view = False
router.register("incidents", IncidentViewSet, basename="incident")
router.register("action-items", ActionItemViewSet, basename="action-item")
router.register("people", PersonViewSet, basename="person")

# /healthz, /readyz and /metrics are answered before URL routing, host validation and
# the https redirect, by config.health.OpsEndpointsMiddleware.
urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/webhooks/<str:system>/", ticket_webhook, name="ticket-webhook"),
    path("api/v1/", include(router.urls)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"
    ),
    # Django's, throttled per address and per client (before the include, which has its own).
    path("accounts/password_reset/", PasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("incidents.urls")),
    path("", include("tracker.urls")),
]
