import datetime

import django_filters
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from config.api import Pagination, PayloadTooLarge
from tracker.models import ActionItem
from tracker.permissions import IsManagerOrReadOnly

from .importing import import_document
from .models import Incident, Severity
from .selectors import incidents_with_item_counts
from .serializers import ImportSummarySerializer, IncidentDetailSerializer, IncidentListSerializer
from .uploads import is_too_large, read_document


class UtcIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 date-time, normalised to UTC.

    PostgreSQL rejects UTC offsets beyond ±15:59 that ISO 8601 allows, and a
    value near year 1 or 9999 can leave the representable range once shifted;
    both are the client's mistake and get a 400, not a database error.
    """

    default_error_messages = {"out_of_range": "Enter a date-time between years 1 and 9999 (UTC)."}

    def to_python(self, value):
        try:
            parsed = super().to_python(value)
            return parsed.astimezone(datetime.UTC) if parsed is not None else None
        except OverflowError:
            raise ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField


class IncidentFilter(django_filters.FilterSet):
    # distinct=False: DISTINCT over every column would make PostgreSQL sort the whole list.
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, distinct=False)
    status = django_filters.CharFilter()
    service = django_filters.CharFilter()
    declared_after = UtcIsoDateTimeFilter(field_name="declared_at", lookup_expr="gte")
    declared_before = UtcIsoDateTimeFilter(field_name="declared_at", lookup_expr="lt")
    q = django_filters.CharFilter(method="filter_q", help_text="Search id and title")

    class Meta:
        model = Incident
        fields = []

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(external_id__icontains=value) | Q(title__icontains=value))


class RawBodyParser(JSONParser):
    """Hands the import service the body's bytes untouched: it parses and keeps them itself."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = read_document(stream) if stream is not None else b""
        if is_too_large(raw):
            raise _document_too_large()
        return raw


def _document_too_large() -> PayloadTooLarge:
    # The API answers 413 before importing, where the other edges let the import refuse it.
    return PayloadTooLarge(
        f"The document is larger than {settings.TRACKER_IMPORT_MAX_BYTES:,} bytes."
    )


@extend_schema_view(
    list=extend_schema(summary="List incidents with their action item counts"),
    retrieve=extend_schema(summary="An incident with its timeline and action items"),
)
class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    lookup_field = "external_id"
    lookup_value_regex = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
    filterset_class = IncidentFilter
    filter_backends = [*viewsets.GenericViewSet.filter_backends, OrderingFilter]
    ordering_fields = ["declared_at", "resolved_at", "severity", "external_id", "updated_at"]
    ordering = ["-declared_at", "id"]
    pagination_class = Pagination
    permission_classes = [IsAuthenticated, IsManagerOrReadOnly]

    def get_queryset(self):
        queryset = incidents_with_item_counts()
        if self.action == "retrieve":
            queryset = queryset.select_related("current_document").prefetch_related(
                "events",
                "communications",
                "participants",
                Prefetch(
                    "action_items",
                    queryset=ActionItem.objects.select_related("incident", "owner").order_by(
                        "deadline", "id"
                    ),
                ),
            )
        return queryset

    def get_serializer_class(self):
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentListSerializer

    @extend_schema(
        summary="Import an incident document (managers)",
        description=(
            "The same import as `manage.py import_incidents`: a JSON body, or a multipart "
            "`file`. 201 when the incident was created, 200 when updated or unchanged, "
            "400 with the errors when rejected (nothing is written)."
        ),
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="Report, write nothing")
        ],
        request={
            "application/json": OpenApiTypes.OBJECT,
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
        },
        responses={
            201: ImportSummarySerializer,
            200: ImportSummarySerializer,
            # A rejected document gets its summary, which also has the error format's
            # fields; a request without a document gets the error format alone.
            400: OpenApiResponse(
                response={
                    "anyOf": [
                        {"$ref": "#/components/schemas/ImportSummary"},
                        {"$ref": "#/components/schemas/Error"},
                    ]
                },
                description="Rejected; nothing was written",
            ),
        },
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[RawBodyParser, MultiPartParser],
        pagination_class=None,
        filter_backends=[],
    )
    def import_(self, request):
        if request.content_type.startswith("multipart/"):
            upload = request.FILES.get("file")
            if upload is None:
                return Response(
                    {
                        "status": 400,
                        "errors": [
                            {
                                "path": "file",
                                "code": "required",
                                "message": "upload the document as `file`",
                            }
                        ],
                    },
                    status=status.HTTP_400_BAD_REQUEST,
                )
            raw, name = read_document(upload), upload.name
            if is_too_large(raw):
                raise _document_too_large()
        else:
            # An empty body never reaches the parser: DRF gives an empty dict instead.
            raw, name = (request.data if isinstance(request.data, bytes) else b""), "-"
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        summary = import_document(
            raw=raw, source="api", path=name, user=request.user, dry_run=dry_run
        )
        if not summary.ok:
            code = status.HTTP_400_BAD_REQUEST
        elif summary.result == "created" and not dry_run:
            code = status.HTTP_201_CREATED
        else:
            code = status.HTTP_200_OK
        body = summary.as_dict()
        if not summary.ok:
            # The command's summary, in the API's one error shape as well.
            body["status"] = code
            body["errors"] = [{**error, "code": "invalid"} for error in body["errors"]]
        return Response(body, status=code)
