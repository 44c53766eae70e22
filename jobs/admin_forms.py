"""Forms for the operator console: a job type's payload form, made from its pydantic schema."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

from django import forms

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
