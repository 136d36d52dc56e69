"""Incidents as their postmortem documents describe them.

Columns hold what is filtered or shown; the rest of each section is kept as
JSON, and every imported revision of the document is kept verbatim.
"""

from django.conf import settings
from django.db import models


class Severity(models.TextChoices):
    SEV1 = "SEV1", "SEV1"
    SEV2 = "SEV2", "SEV2"
    SEV3 = "SEV3", "SEV3"
    SEV4 = "SEV4", "SEV4"
    SEV5 = "SEV5", "SEV5"


class Incident(models.Model):
    external_id = models.CharField(max_length=64, unique=True)
    title = models.CharField(max_length=500)
    severity = models.CharField(max_length=4, choices=Severity.choices, db_index=True)
    status = models.CharField(max_length=64, db_index=True)
    declared_at = models.DateTimeField(db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    commander = models.CharField(max_length=200, blank=True)
    service = models.CharField(max_length=200, blank=True, db_index=True)
    affected_services = models.JSONField(default=list, blank=True)

    impact = models.JSONField(default=dict, blank=True)
    signals = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    resolution = models.JSONField(default=dict, blank=True)
    root_cause = models.TextField(blank=True)
    # context.on_call.escalation_manager, lowercased: reminders escalate to it.
    escalation_manager_email = models.EmailField(blank=True)
    # Keys of the `incident` object and top-level sections this version does not know.
    extra = models.JSONField(default=dict, blank=True)

    current_document = models.ForeignKey(
        "IncidentDocument", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-declared_at"]

    def __str__(self) -> str:
        return f"{self.external_id}: {self.title}"


class IncidentDocument(models.Model):
    """One revision of an incident document, byte for byte as it was imported."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="documents")
    sha256 = models.CharField(max_length=64)
    content = models.BinaryField()
    size = models.PositiveIntegerField()
    first_imported_at = models.DateTimeField()

    class Meta:
        ordering = ["-first_imported_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "sha256"], name="document_unique_revision"),
        ]

    def __str__(self) -> str:
        return f"{self.incident.external_id} @ {self.sha256[:12]}"

    @property
    def text(self) -> str:
        return bytes(self.content).decode("utf-8-sig", errors="replace")


class ImportResult(models.TextChoices):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"


class DocumentImport(models.Model):
    """Each time a document was imported: when, from where, by whom, with what result."""

    document = models.ForeignKey(IncidentDocument, on_delete=models.CASCADE, related_name="imports")
    imported_at = models.DateTimeField()
    source = models.CharField(max_length=500, help_text="command:PATH, admin, api, ...")
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    result = models.CharField(max_length=16, choices=ImportResult.choices)
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-imported_at", "-id"]

    def __str__(self) -> str:
        return f"{self.document} {self.result} at {self.imported_at:%Y-%m-%d %H:%M}"


class TimelineEvent(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    position = models.PositiveIntegerField()
    timestamp = models.DateTimeField()
    type = models.CharField(max_length=64, blank=True)
    actor = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["incident", "position"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "position"], name="event_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.timestamp:%H:%M} {self.type}: {self.description[:60]}"


class Communication(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="communications")
    position = models.PositiveIntegerField()
    timestamp = models.DateTimeField(null=True, blank=True)
    channel = models.CharField(max_length=200, blank=True)
    audience = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["incident", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "position"], name="communication_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} ({self.audience}): {self.message[:60]}"


class Participant(models.Model):
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="participants")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    role = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["incident", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "position"], name="participant_unique_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.role})" if self.role else self.name
