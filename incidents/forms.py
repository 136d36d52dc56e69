"""Forms of the incidents: the list's filters, the two steps of the import page and the
admin's upload."""

from collections.abc import Iterable

from django import forms

from .models import Severity


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


class IncidentFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=200,
        widget=forms.SearchInput(attrs={"placeholder": "ID, title, service or commander"}),
    )
    severity = forms.ChoiceField(required=False, choices=[("", "Any severity"), *Severity.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status")])

    def __init__(self, *args, statuses: Iterable[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        # Statuses come from the documents, so the choices are the ones in use.
        self.fields["status"].choices = [("", "Any status"), *((s, s) for s in statuses)]


class ImportUploadForm(forms.Form):
    # Empty files are accepted here so that the import service rejects them with
    # the same message as the command and the API.
    documents = MultipleFileField(
        label="Incident documents",
        allow_empty_file=True,
        help_text="One or more JSON postmortem documents. Nothing is written until you confirm.",
        widget=MultipleFileInput(attrs={"accept": "application/json,.json"}),
    )


class ImportConfirmForm(forms.Form):
    # Names the preview being confirmed, so a preview made later in another tab
    # is never imported from this one.
    preview = forms.CharField(widget=forms.HiddenInput, max_length=100)


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
