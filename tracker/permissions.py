"""Who may do what.

Managers (superusers, and members of the TRACKER_MANAGERS_GROUP group; staff
status alone is not enough) may do everything. The owner
of an item (their user email matches the item owner's, whatever the case) may
change its status and comment on it. Any other signed-in user may read.
"""

from django.conf import settings
from rest_framework import permissions

from .models import ActionItem

OWNER_EDITABLE_FIELDS = frozenset({"status"})


def is_manager(user) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    # Staff status opens the admin, not the managers' powers: the admin enforces
    # its own model permissions, and pages and API follow the managers group.
    if user.is_superuser:
        return True
    cached = getattr(user, "_is_tracker_manager", None)
    if cached is None:
        cached = user.groups.filter(name=settings.TRACKER_MANAGERS_GROUP).exists()
        user._is_tracker_manager = cached
    return cached


def is_owner(user, item: ActionItem) -> bool:
    email = (getattr(user, "email", "") or "").strip().lower()
    return bool(email and item.owner_id and item.owner.email.lower() == email)


class IsManagerOrReadOnly(permissions.BasePermission):
    message = "Only managers may change this."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        return is_manager(request.user)


class ActionItemPermission(permissions.BasePermission):
    """Managers: everything. Owners: PATCH of the status of their own items. Others: read."""

    message = "Only managers, or the item's owner for its status, may change this item."

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS or is_manager(request.user):
            return True
        return request.method == "PATCH"

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS or is_manager(request.user):
            return True
        if request.method != "PATCH" or not is_owner(request.user, obj):
            return False
        fields = set(request.data) if isinstance(request.data, dict) else set()
        extra = fields - OWNER_EDITABLE_FIELDS
        if extra:
            self.message = (
                "As the item's owner you may change only its status; "
                f"not {', '.join(sorted(extra))}."
            )
            return False
        return True


class CanComment(permissions.BasePermission):
    message = "Only managers and the item's owner may comment on it."

    def has_object_permission(self, request, view, obj):
        if request.method in permissions.SAFE_METHODS:
            return True
        return is_manager(request.user) or is_owner(request.user, obj)
