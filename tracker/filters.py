import django_filters
from django.db.models import Q

from . import deadlines, selectors
from .models import ActionItem, Person, Priority, Status


class CommaMultipleChoiceField(django_filters.fields.MultipleChoiceField):
    def to_python(self, value):
        values = super().to_python(value)
        return [part.strip() for v in values for part in v.split(",") if part.strip()]


class CommaMultipleChoiceFilter(django_filters.MultipleChoiceFilter):
    """Accepts `?status=open&status=blocked` and `?status=open,blocked`."""

    field_class = CommaMultipleChoiceField

    def __init__(self, *args, **kwargs):
        # Used on the item's own columns, where no join can repeat a row; django-filter's
        # default DISTINCT over every selected column makes PostgreSQL sort all the
        # matching rows (and count them through a subquery) for each page.
        kwargs.setdefault("distinct", False)
        super().__init__(*args, **kwargs)


class ActionItemFilter(django_filters.FilterSet):
    status = CommaMultipleChoiceFilter(
        choices=Status.choices, help_text="Several: status=open,blocked"
    )
    priority = CommaMultipleChoiceFilter(
        choices=Priority.choices, help_text="Several: priority=P0,P1"
    )
    owner = django_filters.CharFilter(
        field_name="owner__email", lookup_expr="iexact", help_text="Owner email, any case"
    )
    type = django_filters.CharFilter(field_name="type")
    incident = django_filters.CharFilter(
        field_name="incident__external_id", help_text="Incident external id"
    )
    overdue = django_filters.BooleanFilter(
        method="filter_overdue",
        help_text="Open and due before the owner's today (their time zone, else TIME_ZONE)",
    )
    due_soon = django_filters.BooleanFilter(
        method="filter_due_soon",
        help_text="Open and due within TRACKER_DUE_SOON_DAYS days from the owner's today",
    )
    due_before = django_filters.DateFilter(
        field_name="deadline", lookup_expr="lte", help_text="Deadline on or before this date"
    )
    due_after = django_filters.DateFilter(
        field_name="deadline", lookup_expr="gte", help_text="Deadline on or after this date"
    )
    due_within_days = django_filters.NumberFilter(
        method="filter_due_within_days",
        min_value=0,
        max_value=3650,
        help_text="Open items due from the owner's today to today + N days",
    )
    removed_from_source = django_filters.BooleanFilter()
    q = django_filters.CharFilter(
        method="filter_q", help_text="Search title, description, incident id, owner"
    )

    class Meta:
        model = ActionItem
        fields = []

    def filter_overdue(self, queryset, name, value):
        if value:
            return selectors.action_items_overdue(queryset=queryset)
        return selectors.action_items_not_overdue(queryset=queryset)

    def filter_due_within_days(self, queryset, name, value):
        return selectors.action_items_due_within(days=int(value), queryset=queryset)

    def filter_due_soon(self, queryset, name, value):
        if value:
            return selectors.action_items_due_soon(queryset=queryset)
        return queryset.exclude(deadlines.due_soon_q())

    def filter_q(self, queryset, name, value):
        return queryset.filter(
            Q(title__icontains=value)
            | Q(description__icontains=value)
            | Q(incident__external_id__icontains=value)
            | Q(owner__email__icontains=value)
        )


class PersonFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_q", help_text="Search email and name")

    class Meta:
        model = Person
        fields = []

    def filter_q(self, queryset, name, value):
        return queryset.filter(Q(email__icontains=value) | Q(name__icontains=value))
