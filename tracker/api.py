from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.filters import OrderingFilter
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from config.api import Pagination, PreconditionFailed

from . import selectors, services
from .filters import ActionItemFilter, PersonFilter
from .models import ActionItem, ChangeSource
from .permissions import ActionItemPermission, CanComment
from .serializers import (
    ActionItemChangeSerializer,
    ActionItemSerializer,
    CommentSerializer,
    PersonSerializer,
)

IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The ETag from a previous read; a stale one gets 412 and changes nothing.",
)


def api_actor(request) -> services.Actor:
    return services.Actor(source=ChangeSource.API, user=request.user)


def etag(item: ActionItem) -> str:
    return f'"{item.pk}.{item.version}"'


def _fields_for_service(validated: dict) -> dict:
    """Serializer output to service keyword arguments (the owner is given by email)."""
    fields = dict(validated)
    if "owner" in fields:
        owner = fields.pop("owner")
        email = owner.get("email") if owner else None
        fields["owner"] = services.person_get_or_create(email=email) if email else None
    return fields


@extend_schema_view(
    list=extend_schema(summary="List action items"),
    retrieve=extend_schema(summary="An action item (with its ETag)"),
    create=extend_schema(summary="Create an action item (managers)"),
    partial_update=extend_schema(
        summary="Change an action item (managers; owners: status only)", parameters=[IF_MATCH]
    ),
    destroy=extend_schema(
        summary="Refused: action items are cancelled, never deleted",
        description="Always 405 for managers (others get 403): set the status to cancelled.",
        responses={405: OpenApiTypes.OBJECT},
    ),
)
class ActionItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ActionItemSerializer
    permission_classes = [IsAuthenticated, ActionItemPermission]
    filterset_class = ActionItemFilter
    filter_backends = [*viewsets.GenericViewSet.filter_backends, OrderingFilter]
    ordering_fields = ["deadline", "priority", "created_at", "updated_at", "id"]
    ordering = ["deadline", "id"]
    pagination_class = Pagination
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    # The columns a page of items shows. Loading every column of 100 items and of their
    # incidents (JSON documents included) was a large share of each list request
    # (bench/api_bench.py).
    list_columns = (
        "id",
        "incident__external_id",
        "title",
        "description",
        "owner__email",
        "owner__name",
        "owner__time_zone",
        "priority",
        "type",
        "status",
        "deadline",
        "deadline_derived",
        "completed_at",
        "created_at",
        "updated_at",
        "removed_from_source",
        "version",
        "ticket_link__system",
        "ticket_link__key",
        "ticket_link__url",
        "ticket_link__state",
        "ticket_link__last_error",
        "ticket_link__next_attempt_at",
        "ticket_link__last_synced_at",
    )

    def get_queryset(self):
        queryset = ActionItem.objects.select_related("incident", "owner", "ticket_link")
        return queryset.only(*self.list_columns) if self.action == "list" else queryset

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        # A stable order whatever the client asked for, so pages never overlap.
        return (
            queryset.order_by(*queryset.query.order_by, "id")
            if queryset.query.order_by
            else queryset
        )

    def retrieve(self, request, *args, **kwargs):
        item = self.get_object()
        return Response(self.get_serializer(item).data, headers={"ETag": etag(item)})

    def perform_create(self, serializer):
        serializer.instance = services.action_item_create(
            actor=api_actor(self.request), **_fields_for_service(serializer.validated_data)
        )

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        response["ETag"] = f'"{response.data["id"]}.{response.data["version"]}"'
        return response

    def update(self, request, *args, **kwargs):
        partial = kwargs.pop("partial", False)
        with transaction.atomic():
            item = get_object_or_404(
                self.get_queryset().select_for_update(of=("self",)), pk=kwargs["pk"]
            )
            self.check_object_permissions(request, item)
            if_match = request.headers.get("If-Match")
            if if_match and if_match.strip() not in ("*", etag(item)):
                raise PreconditionFailed()
            serializer = self.get_serializer(item, data=request.data, partial=partial)
            serializer.is_valid(raise_exception=True)
            services.action_item_update(
                item=item,
                actor=api_actor(request),
                **_fields_for_service(serializer.validated_data),
            )
        item = self.get_queryset().get(pk=item.pk)
        return Response(self.get_serializer(item).data, headers={"ETag": etag(item)})

    def destroy(self, request, *args, **kwargs):
        # Items are cancelled, never deleted (here as in the admin): their history
        # is the audit trail, and the README promises it for every change.
        item = self.get_object()
        raise MethodNotAllowed(
            "DELETE",
            detail=(
                f"Action item {item.pk} cannot be deleted: action items keep their history. "
                'Set its status to "cancelled" instead (PATCH {"status": "cancelled"}).'
            ),
        )

    @extend_schema(
        summary="Every change to the item", responses=ActionItemChangeSerializer(many=True)
    )
    @action(detail=True, methods=["get"], pagination_class=Pagination)
    def history(self, request, pk=None):
        item = self.get_object()
        page = self.paginate_queryset(item.changes.order_by("at", "id"))
        return self.get_paginated_response(ActionItemChangeSerializer(page, many=True).data)

    @extend_schema(
        summary="Comments on the item (managers and the owner may add)",
        request=CommentSerializer,
        responses={200: CommentSerializer(many=True), 201: CommentSerializer},
    )
    @action(
        detail=True,
        methods=["get", "post"],
        permission_classes=[IsAuthenticated, CanComment],
        filterset_class=None,
        pagination_class=Pagination,
    )
    def comments(self, request, pk=None):
        item = self.get_object()
        if request.method == "POST":
            serializer = CommentSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            comment = services.comment_add(
                item=item, actor=api_actor(request), body=serializer.validated_data["body"]
            )
            return Response(CommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        page = self.paginate_queryset(item.comments.order_by("created_at", "id"))
        return self.get_paginated_response(CommentSerializer(page, many=True).data)

    def get_object(self):
        # Sub-resources use the item's own permissions, not the filters of the list.
        item = get_object_or_404(self.get_queryset(), pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, item)
        return item


@extend_schema_view(
    list=extend_schema(summary="List people with their open and overdue counts"),
    retrieve=extend_schema(summary="A person"),
)
class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = PersonSerializer
    filterset_class = PersonFilter
    pagination_class = Pagination
    filter_backends = [*viewsets.GenericViewSet.filter_backends, OrderingFilter]
    ordering_fields = ["email", "name"]
    ordering = ["email"]

    def get_queryset(self):
        return selectors.people_with_open_item_counts(overdue=True)
