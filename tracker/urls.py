from django.urls import path

from .views.calendar import calendar_feed, calendar_page, calendar_reset
from .views.dashboard import dashboard
from .views.email_links import email_action
from .views.items import (
    item_comment,
    item_detail,
    item_edit,
    item_list,
    item_status,
    item_ticket,
    my_items,
)

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("items/", item_list, name="item-list"),
    path("items/mine/", my_items, name="my-items"),
    path("items/<int:pk>/", item_detail, name="item-detail"),
    path("items/<int:pk>/status/", item_status, name="item-status"),
    path("items/<int:pk>/comments/", item_comment, name="item-comment"),
    path("items/<int:pk>/edit/", item_edit, name="item-edit"),
    path("items/<int:pk>/ticket/", item_ticket, name="item-ticket"),
    path("calendar/", calendar_page, name="calendar"),
    path("calendar/reset/", calendar_reset, name="calendar-reset"),
    path("calendar/<str:token>.ics", calendar_feed, name="calendar-feed"),
    path("r/<str:token>/", email_action, name="email-action"),
]
