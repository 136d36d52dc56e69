"""Forms of the admin: the item form, the document upload and the bulk actions' pages."""

from django import forms

from .models import ActionItem, Status
from .services import status_choices_from


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that accepts several files and cleans to a list of them.

    The pattern from Django's "Uploading multiple files" documentation, plus the
    "required" check that pattern loses when no file at all is sent.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data] if data else []
        if not files and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        single_file_clean = super().clean
        return [single_file_clean(f, initial) for f in files]


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
        status = self.fields.get("status")
        if status is not None and self.instance.pk is not None:
            # The services refuse other transitions; offering them here would turn
            # a person's choice into a server error instead of a form error.
            current = self.instance.status
            allowed = status_choices_from(current)
            status.choices = [(value, label) for value, label in Status.choices if value in allowed]


class ImportDocumentsForm(forms.Form):
    # Empty files are accepted here so that the import service rejects them with
    # the same message as the command and the API.
    documents = MultipleFileField(
        label="Incident documents",
        allow_empty_file=True,
        help_text="One or more JSON postmortem documents.",
        widget=MultipleFileInput(attrs={"accept": "application/json,.json"}),
    )
    dry_run = forms.BooleanField(
        required=False,
        label="Dry run",
        help_text="Show what would change, write nothing.",
    )


class ReassignForm(forms.Form):
    owner_email = forms.EmailField(
        label="New owner's email",
        help_text="A person with this email is created if there is none yet.",
    )


class MoveDeadlineForm(forms.Form):
    new_deadline = forms.DateField(
        required=False, label="New deadline", help_text="YYYY-MM-DD", widget=forms.DateInput()
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
