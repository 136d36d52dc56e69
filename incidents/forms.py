"""Forms of the incident pages: the list's filters and the two steps of the import page."""

from collections.abc import Iterable

from django import forms

from tracker.forms import MultipleFileField, MultipleFileInput

from .models import Severity


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
