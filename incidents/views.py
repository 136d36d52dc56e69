from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def incident_list(request):
    return render(request, "incidents/incident_list.html", {})


@login_required
def incident_detail(request, external_id: str):
    return render(request, "incidents/incident_detail.html", {})


@login_required
def import_documents(request):
    return render(request, "incidents/import.html", {})
