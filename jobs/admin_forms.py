"""Forms for the operator console: a job type's payload form, made from its pydantic schema."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from jobs.errors import PayloadInvalid
from jobs.models import PeriodicJob
from jobs.registry import QUEUES, JobType, registry

ROOT_ERROR = "__root__"


class JSONValueField(forms.CharField):
    """A list or an object typed as JSON (what a plain HTML input cannot express)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def to_python(self, value):
        value = super().to_python(value)
        if value in self.empty_values:
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None


def _resolve(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if ref and ref.startswith("#/$defs/"):
        return {
            **root.get("$defs", {})[ref.removeprefix("#/$defs/")],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return schema


def field_label(name: str, title: str | None) -> str:
    """The schema's own title, or the name in words: pydantic's made-up title reads "Subscription Id"."""
    if title and title != name.replace("_", " ").title():
        return title
    words = name.replace("_", " ").capitalize().split(" ")
    return " ".join("ID" if word.lower() == "id" else word for word in words)


def _field_for(name: str, schema: dict, root: dict, required: bool) -> forms.Field:
    schema = _resolve(schema, root)
    # Optional[X] is anyOf [X, null]: the field is X, and may be left empty.
    options = [_resolve(option, root) for option in schema.get("anyOf", [])]
    non_null = [option for option in options if option.get("type") != "null"]
    if options and len(non_null) == 1:
        required = required and len(non_null) == len(options)
        schema = {**non_null[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
    common = {
        "required": required,
        "label": field_label(name, schema.get("title")),
        "help_text": schema.get("description", ""),
        "initial": schema.get("default"),
    }
    kind = schema.get("type")
    if "enum" in schema:
        choices = [(value, value) for value in schema["enum"]]
        return forms.TypedChoiceField(choices=([("", "---------")] if not required else []) + choices, **common)
    if kind == "string":
        if schema.get("format") == "date-time":
            return forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), **common)
        if schema.get("format") == "date":
            return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
        return forms.CharField(max_length=schema.get("maxLength"), min_length=schema.get("minLength"), **common)
    if kind == "integer":
        return forms.IntegerField(min_value=schema.get("minimum"), max_value=schema.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=schema.get("minimum"), max_value=schema.get("maximum"), **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if common["initial"] is not None:
        common["initial"] = json.dumps(common["initial"])
    return JSONValueField(**common)


def payload_form_class(job_type: JobType) -> type[forms.Form]:
    """A Django form with one field per property of the job type's payload schema."""
    schema = job_type.json_schema()
    required = set(schema.get("required", []))
    fields = {
        name: _field_for(name, prop, schema, name in required) for name, prop in schema.get("properties", {}).items()
    }
    attributes = {**fields, "required_css_class": "required"}  # bold labels, as the admin marks required fields
    return type(f"{job_type.name.replace('.', '_')}_payload_form", (forms.Form,), attributes)


def payload_from(form: forms.Form) -> dict:
    """The cleaned form as a JSON-shaped payload; fields left empty are left out (their defaults apply)."""
    payload = {}
    for name, value in form.cleaned_data.items():
        if value is None or value == "":
            continue
        payload[name] = value.isoformat() if isinstance(value, datetime | date) else value
    return payload


def add_payload_errors(form: forms.Form, errors: dict[str, list[str]]) -> None:
    """PayloadInvalid's {"field.path": [messages]} shown next to the fields they are about, in words.

    A check across fields (pydantic's "__root__": "Value error, period_end is before period_start")
    goes to the field it names first (its subject), with field names written as the form labels them;
    naming none, it goes above the form.
    """
    for path, messages in errors.items():
        field = path.split(".")[0]
        for message in messages:
            message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
            if field in form.fields:
                form.add_error(field, message)
                continue
            positions = {name: re.search(rf"\b{re.escape(name)}\b", message) for name in form.fields}
            named = sorted((name for name, at in positions.items() if at), key=lambda name: positions[name].start())
            for name in sorted(named, key=len, reverse=True):
                message = re.sub(rf"\b{re.escape(name)}\b", form.fields[name].label.lower(), message)
            message = message[:1].upper() + message[1:]
            if named:
                form.add_error(named[0], message)  # the sentence's subject
            else:
                form.add_error(None, message if path == ROOT_ERROR else f"{path}: {message}")


class JobTypeChoiceForm(forms.Form):
    job_type = forms.ChoiceField(label="Job type")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["job_type"].choices = [
            (job_type.name, f"{job_type.name} — {job_type.description}" if job_type.description else job_type.name)
            for job_type in registry.all()
        ]


class EnqueueOptionsForm(forms.Form):
    priority = forms.ChoiceField(required=False, help_text="Which queue; empty means the job type's own.")
    at = forms.DateTimeField(
        required=False,
        label="Run at (UTC)",
        help_text="Leave empty to run now.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, job_type: JobType, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["priority"].choices = [("", f"the job type's own ({job_type.queue})")] + [(q, q) for q in QUEUES]


class SchedulerConfigForm(forms.ModelForm):
    """The tier table's row: the job type picked from those that declare a scheduled payload."""

    job_type = forms.ChoiceField()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = registry.schedulable_names()
        current = self.instance.job_type if self.instance.pk else None
        if current and current not in names:
            names = [current, *names]  # keep a row for a type whose app is not installed editable
        self.fields["job_type"].choices = [(name, name) for name in names]


def payload_initial(form_class: type[forms.Form], payload: dict) -> dict:
    """A saved payload as the payload form's initial values: lists and objects typed back as JSON."""
    return {
        name: json.dumps(value) if isinstance(form_class.base_fields[name], JSONValueField) else value
        for name, value in (payload or {}).items()
        if name in form_class.base_fields
    }


PAYLOAD_HAS_ERRORS = "The payload has errors: see its fields below."


class OptionalJSONField(forms.JSONField):
    """JSON that may be left empty: an empty box, not the word "null", when there is none."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class PeriodicJobForm(forms.ModelForm):
    """A periodic job, its payload edited as the form its job type's schema makes (as on the enqueue page).

    The payload form follows the job type: the one chosen on the add page's first step, the
    saved one, or the one just chosen in the list. A form posted for another type than the one
    now chosen is not saved: it comes back with the new type's payload fields to fill in (no
    JavaScript). The hidden `payload_for` says which type the posted payload fields were for.
    """

    class Meta:
        model = PeriodicJob
        # Everything but the payload, which its own form edits.
        fields = (
            "name", "job_type", "owner", "enabled", "description", "frequency", "cron_expression", "timezone",
            "priority", "max_attempts", "retry_delays", "overlap", "catch_up",
        )  # fmt: skip
        field_classes = {"retry_delays": OptionalJSONField}
        widgets = {"retry_delays": forms.Textarea(attrs={"rows": 1, "cols": 40})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "job_type" in self.fields:
            names = registry.names()
            current = self.instance.job_type if self.instance.pk else None
            if current and current not in names:
                names = [current, *names]  # a row whose type's app is not installed stays editable
            self.fields["job_type"] = forms.ChoiceField(
                label="Job type",
                choices=[(name, name) for name in names],
                help_text="What runs. Choosing another type shows its payload fields when you save.",
            )
        self.payload_job_type = self._chosen_job_type()
        self.payload_form = self._payload_form()

    def _chosen_job_type(self) -> str:
        if "job_type" not in self.fields:
            return self.instance.job_type  # read-only (a built-in job)
        if self.is_bound:
            return self.data.get(self.add_prefix("job_type"), "")
        return self.initial.get("job_type") or self.instance.job_type

    def _posted_for_this_type(self) -> bool:
        return self.data.get("payload_for") == self.payload_job_type

    def _payload_form(self) -> forms.Form | None:
        if self.payload_job_type not in registry:
            return None  # the job type's own field says what is wrong
        form_class = payload_form_class(registry.get(self.payload_job_type))
        if self.is_bound and self._posted_for_this_type():
            return form_class(self.data, prefix="payload")
        same_type = self.instance.pk and self.instance.job_type == self.payload_job_type
        initial = payload_initial(form_class, self.instance.payload) if same_type else None
        return form_class(initial=initial, prefix="payload")

    def is_valid(self) -> bool:
        payload_valid = self.payload_form is None or not self.payload_form.is_bound or self.payload_form.is_valid()
        return super().is_valid() and payload_valid

    def clean(self):
        cleaned = super().clean()
        if self.payload_form is None:
            return cleaned
        if not self._posted_for_this_type():
            message = f"The payload fields below are now {self.payload_job_type}'s: fill them in and save again."
            self.add_error("job_type" if "job_type" in self.fields else None, message)
            return cleaned
        if not self.payload_form.is_valid():
            self.add_error(None, PAYLOAD_HAS_ERRORS)
            return cleaned
        payload = payload_from(self.payload_form)
        try:
            registry.get(self.payload_job_type).validate(payload)
        except PayloadInvalid as exc:
            add_payload_errors(self.payload_form, exc.errors)
            self.add_error(None, PAYLOAD_HAS_ERRORS)
            return cleaned
        self.instance.payload = payload
        return cleaned

    def _update_errors(self, errors):
        """The model's errors at the fields they name. Those about a field that already shows
        one of the form's errors repeat it ("Unknown job type ''" after "Select a valid choice")
        and are left out; the payload's go to the payload form; a name already taken is said
        at the name (a conditional unique constraint reports it above the form)."""
        if hasattr(errors, "error_dict"):
            kept: dict[str, list] = {}
            for field, messages in errors.error_dict.items():
                if field in self.fields and field in self._errors:
                    continue
                if field == "payload":
                    if self.payload_form is not None and not self.payload_form.errors and self.payload_form.is_bound:
                        for message in messages:
                            self.payload_form.add_error(None, message)
                    if PAYLOAD_HAS_ERRORS not in self.non_field_errors():
                        kept.setdefault(NON_FIELD_ERRORS, []).append(PAYLOAD_HAS_ERRORS)
                    continue
                if field == NON_FIELD_ERRORS and "name" in self.fields:
                    taken = [m for m in messages if _is_name_taken(m)]
                    if taken:
                        kept.setdefault("name", []).append(
                            "A periodic job with this name already exists (names are unique per owner)."
                        )
                        messages = [m for m in messages if not _is_name_taken(m)]
                if messages:
                    kept.setdefault(field, []).extend(messages)
            if not kept:
                return
            errors = forms.ValidationError(kept)
        super()._update_errors(errors)


def _is_name_taken(error: forms.ValidationError) -> bool:
    return any("periodicjob_unique" in message for message in error.messages) or error.code in (
        "unique",
        "unique_together",
    )


class SchedulingSwitchForm(forms.Form):
    """Pause all scheduling (saying why: every console page shows it) or resume it."""

    operation = forms.ChoiceField(choices=[("pause", "pause"), ("resume", "resume")], widget=forms.HiddenInput)
    reason = forms.CharField(
        required=False,
        max_length=300,
        help_text="Shown on every console page while scheduling is paused, with who paused it and when.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("operation") == "pause" and not cleaned.get("reason", "").strip():
            self.add_error("reason", "Say why scheduling is paused: everyone sees it on every console page.")
        return cleaned
