from django.urls import path

from .views.calendar import calendar_feed
from .views.dashboard import dashboard
from .views.email_links import email_action
from .views.items import item_detail, item_list, my_items

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("items/", item_list, name="item-list"),
    path("items/mine/", my_items, name="my-items"),
    path("items/<int:pk>/", item_detail, name="item-detail"),
    path("calendar/<str:token>.ics", calendar_feed, name="calendar-feed"),
    path("r/<str:token>/", email_action, name="email-action"),
]
