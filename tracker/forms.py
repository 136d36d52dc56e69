"""Forms of the admin (item form, bulk actions) and of the web pages."""

from django import forms

from .models import ActionItem, Person, Priority, Status, validate_deadline
from .services import status_choices_from


class ActionItemAdminForm(forms.ModelForm):
    """The admin's item form: it offers only the statuses the item may move to."""

    class Meta:
        model = ActionItem
        fields = (
            "incident",
            "title",
            "description",
            "owner",
            "priority",
            "type",
            "status",
            "deadline",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        deadline = self.fields.get("deadline")
        if deadline is not None:
            deadline.validators.append(validate_deadline)
        status = self.fields.get("status")
        if status is not None and self.instance.pk is not None:
            # The services refuse other transitions; offering them here would turn
            # a person's choice into a server error instead of a form error.
            current = self.instance.status
            allowed = status_choices_from(current)
            status.choices = [(value, label) for value, label in Status.choices if value in allowed]


# Emails of up to 320 characters pass validation; a person's column holds fewer.
EMAIL_MAX_LENGTH = Person._meta.get_field("email").max_length


class ReassignForm(forms.Form):
    owner_email = forms.EmailField(
        max_length=EMAIL_MAX_LENGTH,
        label="New owner's email",
        help_text="A person with this email is created if there is none yet.",
    )


class MoveDeadlineForm(forms.Form):
    new_deadline = forms.DateField(
        required=False,
        label="New deadline",
        help_text="YYYY-MM-DD",
        widget=forms.DateInput(),
        validators=[validate_deadline],
    )
    shift_days = forms.IntegerField(
        required=False,
        label="Or shift by days",
        help_text="Negative to bring deadlines forward. Items without a deadline are skipped.",
        min_value=-3650,
        max_value=3650,
    )

    def clean(self):
        cleaned = super().clean()
        new_deadline = cleaned.get("new_deadline")
        shift_days = cleaned.get("shift_days")
        if self.errors:
            return cleaned
        if (new_deadline is None) == (shift_days is None):
            raise forms.ValidationError(
                "Give a new deadline or a number of days to shift by (one of the two)."
            )
        if shift_days == 0:
            raise forms.ValidationError("Shifting by 0 days changes nothing.")
        return cleaned


# --- Web pages ------------------------------------------------------------------

# The orders the items page offers; any order the API accepts works in the URL too.
ITEM_ORDERINGS = [
    ("deadline", "Deadline, soonest first"),
    ("-deadline", "Deadline, latest first"),
    ("priority", "Priority, highest first"),
    ("-priority", "Priority, lowest first"),
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-updated_at", "Recently updated"),
]


class ItemFilterForm(forms.Form):
    """The base of the items page's filter form: the API's filters, with widgets and
    labels for people."""

    LABELS = {
        "q": "Search",
        "status": "Status",
        "priority": "Priority",
        "owner": "Owner email",
        "type": "Type",
        "incident": "Incident id",
        "overdue": "Overdue",
        "due_soon": "Due soon",
        "due_within_days": "Due within (days)",
        "due_before": "Due on or before",
        "due_after": "Due on or after",
        "ordering": "Order by",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in self.LABELS.items():
            if name in self.fields:
                self.fields[name].label = label
                self.fields[name].help_text = ""
        for name in ("status", "priority"):
            if name in self.fields:
                self.fields[name].widget = forms.CheckboxSelectMultiple(
                    choices=self.fields[name].choices
                )
        if "overdue" in self.fields:
            self.fields["overdue"].widget = forms.Select(
                choices=[("", "Any"), ("true", "Overdue only"), ("false", "Not overdue")]
            )
        if "due_soon" in self.fields:
            self.fields["due_soon"].widget = forms.Select(
                choices=[("", "Any"), ("true", "Due soon only"), ("false", "Not due soon")]
            )
        for name in ("due_before", "due_after"):
            if name in self.fields:
                self.fields[name].widget = forms.DateInput(attrs={"type": "date"})
        if "ordering" in self.fields:
            self.fields["ordering"].widget = forms.Select(choices=ITEM_ORDERINGS)
        if "q" in self.fields:
            self.fields["q"].widget = forms.TextInput(attrs={"type": "search"})
        if "owner" in self.fields:
            self.fields["owner"].widget = forms.TextInput(attrs={"type": "email"})


class ItemStatusForm(forms.Form):
    """A new status for an item. Any status is accepted here and the services judge
    the transition, so that a refused one gets their message; the menu offers only
    the statuses the item may move to."""

    status = forms.ChoiceField(choices=Status.choices, label="Status")

    def __init__(self, *args, item: ActionItem, **kwargs):
        kwargs.setdefault("auto_id", f"item{item.pk}-%s")
        kwargs.setdefault("initial", {"status": item.status})
        super().__init__(*args, **kwargs)
        allowed = status_choices_from(item.status)
        self.fields["status"].widget.choices = [
            (value, label) for value, label in Status.choices if value in allowed
        ]


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Comment", max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, item: ActionItem, **kwargs):
        kwargs.setdefault("auto_id", f"item{item.pk}-%s")
        super().__init__(*args, **kwargs)


class ItemEditForm(forms.Form):
    """What a manager edits on the item page. `version` is the item's version when the
    page was loaded, so that saving over someone else's change is refused."""

    title = forms.CharField(max_length=500)
    priority = forms.ChoiceField(choices=Priority.choices)
    deadline = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_deadline],
    )
    owner_email = forms.EmailField(
        required=False,
        max_length=EMAIL_MAX_LENGTH,
        label="Owner email",
        help_text="Empty to leave the item unassigned.",
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args, item: ActionItem, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "title": item.title,
                "priority": item.priority,
                "deadline": item.deadline,
                "owner_email": item.owner.email if item.owner else "",
                "version": item.version,
            },
        )
        super().__init__(*args, **kwargs)


class TicketLinkForm(forms.Form):
    """A manager attaches the item to a ticket that already exists."""

    reference = forms.CharField(
        label="Link an existing ticket",
        max_length=500,
        help_text="Its key (e.g. PROJ-12, #12) or its URL.",
    )
