import datetime as dt

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from . import deadlines
from .models import (
    ActionItem,
    ActionItemChange,
    Comment,
    Person,
    Priority,
    Status,
    normalise_type,
    validate_deadline,
)

TICKET_KEYS = (
    "system",
    "key",
    "url",
    "sync_state",
    "last_error",
    "next_attempt_at",
    "last_synced_at",
)
TicketSchema = inline_serializer(
    name="TicketLink",
    fields={
        "system": serializers.CharField(allow_null=True),
        "key": serializers.CharField(allow_null=True),
        "url": serializers.URLField(allow_null=True),
        "sync_state": serializers.ChoiceField(
            choices=["pending", "synced", "failing"], allow_null=True
        ),
        "last_error": serializers.CharField(allow_null=True),
        "next_attempt_at": serializers.DateTimeField(allow_null=True),
        "last_synced_at": serializers.DateTimeField(allow_null=True),
    },
)


class ActionItemSerializer(serializers.ModelSerializer):
    incident = serializers.SlugRelatedField(
        slug_field="external_id",
        # The incident model through the field: tracker does not import incidents.
        queryset=ActionItem._meta.get_field("incident").related_model.objects.all(),
        allow_null=True,
        required=False,
        help_text="The incident's external id, e.g. INC-2024-0142",
    )
    owner = serializers.EmailField(
        source="owner.email",
        # Emails of up to 320 characters pass validation; the column holds fewer.
        max_length=Person._meta.get_field("email").max_length,
        allow_null=True,
        required=False,
        help_text="Owner email; null = unassigned",
    )
    owner_name = serializers.CharField(source="owner.name", read_only=True, default="")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    deadline = serializers.DateField(
        allow_null=True, required=False, validators=[validate_deadline]
    )
    is_overdue = serializers.SerializerMethodField()
    days_until_due = serializers.SerializerMethodField()
    ticket = serializers.SerializerMethodField()

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "incident",
            "title",
            "description",
            "owner",
            "owner_name",
            "priority",
            "type",
            "status",
            "deadline",
            "deadline_derived",
            "completed_at",
            "created_at",
            "updated_at",
            "is_overdue",
            "days_until_due",
            "removed_from_source",
            "version",
            "ticket",
        ]
        read_only_fields = [
            "id",
            "deadline_derived",
            "completed_at",
            "created_at",
            "updated_at",
            "removed_from_source",
            "version",
        ]
        extra_kwargs = {"description": {"required": False}, "type": {"required": False}}

    def to_representation(self, item: ActionItem) -> dict:
        """The declared fields, built directly.

        A list page of 100 rows is the API's hottest path and DRF spends about
        45 µs a row going field by field (bench/api_bench.py). Same keys and
        formats as the declared fields: tests compare the two.
        """
        owner = item.owner if item.owner_id else None
        deadline = item.deadline
        timestamp = self._timestamp
        return {
            "id": item.pk,
            "incident": item.incident.external_id if item.incident_id else None,
            "title": item.title,
            "description": item.description,
            "owner": owner.email if owner else None,
            "owner_name": owner.name if owner else "",
            "priority": item.priority,
            "type": item.type,
            "status": item.status,
            "deadline": deadline.isoformat() if deadline else None,
            "deadline_derived": item.deadline_derived,
            "completed_at": timestamp(item.completed_at) if item.completed_at else None,
            "created_at": timestamp(item.created_at),
            "updated_at": timestamp(item.updated_at),
            "is_overdue": self.get_is_overdue(item),
            "days_until_due": self.get_days_until_due(item),
            "removed_from_source": item.removed_from_source,
            "version": item.version,
            "ticket": self.get_ticket(item),
        }

    def _timestamp(self, value: dt.datetime) -> str:
        # DRF's DateTimeField, less its per-call lookup of the current time zone
        # (a thread-local read that cost more than the formatting itself).
        tz = self.__dict__.get("_current_tz")
        if tz is None:
            tz = self.__dict__["_current_tz"] = timezone.get_current_timezone()
        text = value.astimezone(tz).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_is_overdue(self, item: ActionItem) -> bool:
        return deadlines.is_overdue(item, today=self._today(item))

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_days_until_due(self, item: ActionItem) -> int | None:
        return deadlines.days_until_due(item, today=self._today(item))

    def _today(self, item: ActionItem) -> dt.date:
        # Asked twice a row, and a page's owners share a few time zones: look each one up
        # once per response, not twice per row (see bench/api_bench.py).
        today_by_zone = self.__dict__.setdefault("_today_by_zone", {})
        zone = item.owner.time_zone if item.owner_id else ""
        if zone not in today_by_zone:
            today_by_zone[zone] = deadlines.item_owner_today(item)
        return today_by_zone[zone]

    @extend_schema_field(TicketSchema)
    def get_ticket(self, item: ActionItem) -> dict:
        try:
            link = item.ticket_link
        except ObjectDoesNotExist:
            link = None
        if link is None:
            return dict.fromkeys(TICKET_KEYS)
        return {
            "system": link.system,
            "key": link.key or None,
            "url": link.url or None,
            "sync_state": link.state,
            "last_error": link.last_error or None,
            "next_attempt_at": self._timestamp(link.next_attempt_at)
            if link.next_attempt_at
            else None,
            "last_synced_at": self._timestamp(link.last_synced_at) if link.last_synced_at else None,
        }

    def validate_title(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("must not be empty")
        return value.strip()

    def validate_type(self, value: str) -> str:
        return normalise_type(value)


class ActionItemChangeSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    old_value = serializers.JSONField()
    new_value = serializers.JSONField()

    class Meta:
        model = ActionItemChange
        fields = ["id", "at", "source", "actor", "field", "old_value", "new_value", "note"]


class CommentSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_label", read_only=True)

    class Meta:
        model = Comment
        fields = ["id", "author", "source", "body", "created_at"]
        read_only_fields = ["id", "author", "source", "created_at"]


class PersonSerializer(serializers.ModelSerializer):
    # Not an EmailField: the schema would promise an email, and it is often empty.
    manager_email = serializers.CharField(read_only=True, help_text="Empty when unknown")
    open_items = serializers.IntegerField(read_only=True)
    overdue_items = serializers.IntegerField(read_only=True)

    class Meta:
        model = Person
        fields = [
            "id",
            "email",
            "name",
            "time_zone",
            "manager_email",
            "open_items",
            "overdue_items",
        ]
        read_only_fields = fields
