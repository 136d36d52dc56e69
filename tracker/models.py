"""Action items and the people who own them.

Nothing outside `tracker.services` saves an ActionItem: every change goes through
one service so that it is validated and written to the item's history. The one
exception is bookkeeping no person makes: the reminder sweep
(`tracker.reminders.sweeping`) moves `next_reminder_on` with a plain UPDATE.
"""

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.text import slugify


def validate_time_zone(value: str) -> None:
    if value and value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone.")


# The deadlines the tracker supports, refused outside this range at every edge that
# takes one (API, item page, admin, imports). Wide enough for any real deadline, and a
# year short of the end of Python's calendar, so that every date computed from a
# deadline (the calendar feed's end date, reminder stages, a shift in the admin) exists.
DEADLINE_MIN = dt.date(1900, 1, 1)
DEADLINE_MAX = dt.date(9998, 12, 31)


def validate_deadline(value: dt.date | None) -> None:
    """Refuse a deadline outside DEADLINE_MIN..DEADLINE_MAX (None is no deadline)."""
    if value is not None and not DEADLINE_MIN <= value <= DEADLINE_MAX:
        raise ValidationError(
            f"{value.isoformat()} is outside the supported deadlines, "
            f"{DEADLINE_MIN.isoformat()} to {DEADLINE_MAX.isoformat()}.",
            code="out_of_range",
        )


def deadline_shifted(deadline: dt.date, days: int) -> dt.date | None:
    """`deadline` moved by `days`, or None when that leaves the supported deadlines."""
    try:
        moved = deadline + dt.timedelta(days=days)
    except OverflowError:
        return None
    return moved if DEADLINE_MIN <= moved <= DEADLINE_MAX else None


class Person(models.Model):
    """Someone who owns action items, identified by email whatever its case."""

    email = models.EmailField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="IANA name; empty = TIME_ZONE",
    )
    manager_email = models.EmailField(blank=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="person",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The secret in the URL of the person's calendar feed (tracker.calendar): made
    # on first use, replaced on reset. Unique, so a lookup finds one person or none.
    calendar_token = models.CharField(
        max_length=64, unique=True, null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["email"]
        verbose_name_plural = "people"
        constraints = [
            models.UniqueConstraint(Lower("email"), name="person_unique_email_ci"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


class Priority(models.TextChoices):
    P0 = "P0", "P0 (critical)"
    P1 = "P1", "P1 (high)"
    P2 = "P2", "P2 (medium)"
    P3 = "P3", "P3 (low)"
    P4 = "P4", "P4 (backlog)"


class Status(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    BLOCKED = "blocked", "Blocked"
    DONE = "done", "Done"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS, Status.BLOCKED)
CLOSED_STATUSES = (Status.DONE, Status.CANCELLED)

# The item types the tracker knows. Others are kept (as their slug): documents vary,
# and the import only warns about a type it does not know.
KNOWN_ITEM_TYPES = frozenset(
    {
        "prevention",
        "detection",
        "mitigation",
        "process",
        "documentation",
        "repair",
        "investigation",
        "monitoring",
        "communication",
        "testing",
        "other",
    }
)


def normalise_type(value: str | None) -> str:
    """A type as it is stored: a slug of at most 64 characters, with underscores."""
    return slugify(value or "").replace("-", "_")[:64]


class ActionItem(models.Model):
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="action_items",
    )
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_items"
    )
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P2)
    # A slug (normalise_type); the known types are KNOWN_ITEM_TYPES, others are kept.
    type = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    deadline = models.DateField(null=True, blank=True)
    deadline_derived = models.BooleanField(
        default=False, help_text="The document gave no deadline; it was derived from the priority."
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Bumped by every change; the API's ETag, so a stale If-Match gets 412.
    version = models.PositiveIntegerField(default=1)
    # No reminders until this date has passed (the owner snoozed the item).
    snoozed_until = models.DateField(null=True, blank=True)
    # The date the item's next reminder stage is reached (maintained by the
    # services, see tracker.reminders.policy): the sweep reads only items due today, so
    # its cost follows the number of due items, not the size of the table.
    next_reminder_on = models.DateField(null=True, blank=True, editable=False)

    # Where the item came from: its identity within the incident's document
    # ("id:<id>" or "title:<normalised title>"), the revision it was last
    # taken from, and the values that revision gave (to tell a change in the
    # document from a change made in the tracker).
    source_key = models.CharField(max_length=600, blank=True)
    source_document = models.ForeignKey(
        "incidents.IncidentDocument",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_items",
    )
    source_values = models.JSONField(default=dict, blank=True)
    removed_from_source = models.BooleanField(default=False)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["deadline", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "source_key"],
                condition=~models.Q(source_key=""),
                name="action_item_unique_source_key",
            ),
            models.CheckConstraint(
                condition=models.Q(status="done", completed_at__isnull=False)
                | (~models.Q(status="done") & models.Q(completed_at__isnull=True))
                | models.Q(status="cancelled"),
                name="action_item_completed_at_matches_status",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "deadline"], name="action_item_status_deadline"),
            models.Index(fields=["owner", "status"], name="action_item_owner_status"),
            models.Index(fields=["priority", "status"], name="action_item_priority_status"),
            models.Index(fields=["incident", "status"], name="action_item_incident_status"),
            models.Index(
                fields=["next_reminder_on"],
                condition=models.Q(next_reminder_on__isnull=False),
                name="action_item_next_reminder",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class ChangeSource(models.TextChoices):
    IMPORT = "import", "Import"
    ADMIN = "admin", "Admin"
    API = "api", "API"
    WEB = "web", "Web UI"
    REMINDER = "reminder", "Reminder"
    TICKET = "ticket", "Ticket sync"
    SYSTEM = "system", "System"


class ActionItemChange(models.Model):
    """One field of one item changed, by whom, through which path."""

    item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="changes")
    at = models.DateTimeField(db_index=True)
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=300, blank=True)
    # "created" for the creation of the item, else the changed field's name.
    field = models.CharField(max_length=64)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["item", "at", "id"]
        indexes = [models.Index(fields=["item", "at"], name="change_item_at")]

    def __str__(self) -> str:
        return f"{self.item_id} {self.field}: {self.old_value!r} -> {self.new_value!r}"


class Comment(models.Model):
    item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_label = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=16, choices=ChangeSource.choices)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "created_at", "id"]
        indexes = [models.Index(fields=["item", "created_at"], name="comment_item_created")]

    def __str__(self) -> str:
        return f"{self.author_label}: {self.body[:60]}"


class ApiToken(models.Model):
    """A credential for integrations. Only a hash of the secret is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    # The first characters of the token, to tell tokens apart in lists; not secret enough to use.
    prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ReminderStage(models.TextChoices):
    DUE_SOON = "due_soon", "Due soon"
    DUE_TODAY = "due_today", "Due today"
    OVERDUE = "overdue", "Overdue"
    ESCALATION = "escalation", "Escalation"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped (no longer due)"


class Delivery(models.Model):
    """An email to send once: claimed by a conditional update, retried with backoff."""

    state = models.CharField(
        max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Notification(Delivery):
    """One reminder of one item to one recipient at one stage of one deadline.

    The unique constraint is what makes a duplicate impossible: two sweeps that
    race insert one row between them, and a row is claimed for sending by a
    conditional update, so only one process sends it.
    """

    item = models.ForeignKey(ActionItem, on_delete=models.CASCADE, related_name="notifications")
    recipient = models.EmailField()
    kind = models.CharField(max_length=16, choices=ReminderStage.choices)
    # The stage and its day relative to the deadline: "due_soon-7", "due_today",
    # "overdue+8", "escalation+3". Each repeat of a stage is a stage of its own.
    stage = models.CharField(max_length=32)
    deadline = models.DateField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "stage", "deadline", "recipient"], name="notification_once"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notification_state_next"),
            models.Index(fields=["claim_token"], name="notification_claim"),
            # Delivery claims one recipient's rows at a time.
            models.Index(fields=["recipient", "state"], name="notification_recipient_state"),
        ]

    def __str__(self) -> str:
        return f"{self.stage} of item {self.item_id} to {self.recipient} ({self.state})"


class ManagerDigest(Delivery):
    """The weekly digest to one manager: once per recipient and week."""

    recipient = models.EmailField()
    period_start = models.DateField(help_text="Monday of the week the digest covers")

    class Meta:
        ordering = ["-period_start", "recipient"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "period_start"], name="manager_digest_once"
            ),
        ]

    def __str__(self) -> str:
        return f"digest {self.period_start} to {self.recipient} ({self.state})"


class TicketSyncState(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCED = "synced", "Synced"
    FAILING = "failing", "Failing"


class TicketLink(models.Model):
    """An item's ticket in the ticket system, and how far the two agree.

    `pushed_values` is what the ticket is known to say, in the tracker's
    vocabulary (see tracker.ticketing.base.SYNCED_FIELDS): the last values
    pushed or read back. A push sends what differs from it; a pull applies only
    what differs from it, so the tracker's own pushes never come back as changes.
    """

    item = models.OneToOneField(ActionItem, on_delete=models.CASCADE, related_name="ticket_link")
    system = models.CharField(max_length=16)
    # Empty until the ticket exists (or is found by its marker).
    key = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=500, blank=True)
    state = models.CharField(
        max_length=8, choices=TicketSyncState.choices, default=TicketSyncState.PENDING
    )
    pushed_values = models.JSONField(default=dict, blank=True)
    # The item version the ticket reflects.
    synced_version = models.PositiveIntegerField(default=0)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # When a pending or failing link is pushed next; null for a permanent failure
    # (it waits for a change to the item, or a resync from the admin).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A pusher's claim: nobody else pushes this item until it passes.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["system", "key"], condition=~models.Q(key=""), name="ticket_link_unique_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=~models.Q(state="synced"),
                name="ticket_link_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.key or '(not created yet)'}"


class TicketPoll(models.Model):
    """Where each ticket system's poll got to."""

    system = models.CharField(max_length=16, unique=True)
    # The start of the last poll that succeeded; the next one reads from it (minus an overlap).
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.system


class ReminderSweep(models.Model):
    """The last reminder sweep that finished: one row, written at the end of each
    sweep (tracker.reminders.sweeping), so the metrics can tell when beat has stopped."""

    last_success_at = models.DateTimeField()
    items_seen = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"reminder sweep finished at {self.last_success_at:%Y-%m-%d %H:%M:%S}"


class TicketWebhookDelivery(models.Model):
    """An inbound webhook delivery, kept so a redelivery is recognised and dropped:
    by its delivery id, and by its body (the id is outside the signature, so a
    replay may carry a new one; see tracker.ticketing.inbound)."""

    system = models.CharField(max_length=16)
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # sha256 of the raw body; blank for deliveries recorded before it was kept.
    body_sha256 = models.CharField(max_length=64, blank=True, default="")
    keys = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["system", "delivery_id"], name="ticket_webhook_delivery_unique"
            ),
            models.UniqueConstraint(
                fields=["system", "body_sha256"],
                condition=~models.Q(body_sha256=""),
                name="ticket_webhook_delivery_unique_body",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system} {self.delivery_id}"
