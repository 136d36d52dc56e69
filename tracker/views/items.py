from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def item_list(request):
    return render(request, "tracker/item_list.html", {})


@login_required
def my_items(request):
    return render(request, "tracker/item_list.html", {})


@login_required
def item_detail(request, pk: int):
    return render(request, "tracker/item_detail.html", {})
