from rest_framework import serializers

from tracker.serializers import ActionItemSerializer

from .models import Communication, Incident, Participant, TimelineEvent


class IncidentListSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="external_id", read_only=True)
    items_open = serializers.IntegerField(read_only=True)
    items_total = serializers.IntegerField(read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "title",
            "severity",
            "status",
            "declared_at",
            "resolved_at",
            "commander",
            "service",
            "affected_services",
            "items_open",
            "items_total",
        ]
        read_only_fields = fields


class TimelineEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TimelineEvent
        fields = ["timestamp", "type", "actor", "description", "metadata"]


class CommunicationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Communication
        fields = ["timestamp", "channel", "audience", "message"]


class ParticipantSerializer(serializers.ModelSerializer):
    # Not an EmailField: the schema would promise an email, and documents may give none.
    email = serializers.CharField(read_only=True, help_text="Empty when the document gives none")

    class Meta:
        model = Participant
        fields = ["name", "role", "email"]


class IncidentDetailSerializer(IncidentListSerializer):
    timeline = TimelineEventSerializer(source="events", many=True, read_only=True)
    communications = CommunicationSerializer(many=True, read_only=True)
    participants = ParticipantSerializer(many=True, read_only=True)
    action_items = ActionItemSerializer(many=True, read_only=True)
    document_sha256 = serializers.CharField(
        source="current_document.sha256", read_only=True, default=None
    )

    class Meta(IncidentListSerializer.Meta):
        fields = [
            *IncidentListSerializer.Meta.fields,
            "impact",
            "signals",
            "context",
            "resolution",
            "root_cause",
            "timeline",
            "communications",
            "participants",
            "action_items",
            "document_sha256",
            "updated_at",
        ]
        read_only_fields = fields


class ImportProblemSerializer(serializers.Serializer):
    path = serializers.CharField()
    message = serializers.CharField()


class ImportSummarySerializer(serializers.Serializer):
    """The same summary as `import_incidents --json`, for one document."""

    path = serializers.CharField()
    incident = serializers.CharField(allow_null=True)
    result = serializers.ChoiceField(choices=["created", "updated", "unchanged", "rejected"])
    items_created = serializers.IntegerField()
    items_updated = serializers.IntegerField()
    items_unchanged = serializers.IntegerField()
    items_removed_from_source = serializers.IntegerField()
    errors = ImportProblemSerializer(many=True)
    warnings = ImportProblemSerializer(many=True)
