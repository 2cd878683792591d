"""The admin's forms for the override workflow; the services check it all again."""

from typing import cast

from django import forms

from overrides.actions import action_choices
from overrides.models import OverrideRequest


class TargetActionForm(forms.Form):
    """Step one of a new request: which operation, and which fix."""

    target_kind = forms.ChoiceField(
        label="Target", choices=OverrideRequest.TargetKind.choices
    )
    target_id = forms.IntegerField(label="Target id", min_value=1)
    action = forms.ChoiceField(choices=[])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["action"]).choices = action_choices()


class SubmitForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What is stuck, what the provider or bank says, why a retry "
        "cannot help. The approver and the auditors read this.",
    )
    ticket_reference = forms.CharField(
        max_length=100, help_text="The external ticket, e.g. OPS-1234."
    )
    # The target version the preview on the page was made for.
    seen_target_version = forms.IntegerField(widget=forms.HiddenInput)


class ApproveForm(forms.Form):
    """What the approver reviewed; the approval is bound to exactly this."""

    content_hash = forms.CharField(max_length=64, widget=forms.HiddenInput)
    target_version = forms.IntegerField(widget=forms.HiddenInput)


class CloseForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Told to the other person and kept in the audit log.",
    )
