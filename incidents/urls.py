from django.urls import path

from .views import import_documents, incident_detail, incident_list

urlpatterns = [
    path("incidents/", incident_list, name="incident-list"),
    path("incidents/<str:external_id>/", incident_detail, name="incident-detail"),
    path("import/", import_documents, name="import"),
]
