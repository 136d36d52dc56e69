from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Incident follow-up tracker"
admin.site.site_title = "Follow-up tracker"

urlpatterns = [
    # Until the web UI lands, the admin is the product's front page.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
