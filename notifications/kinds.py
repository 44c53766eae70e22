"""Notification kinds: each a stable name, a small context schema and its templates.

Callers pass `notify(user, kind, context)`; the context is validated against the kind's
schema (extra keys are allowed and dropped, so callers can add detail) and stored on the
notification. Templates are Django templates rendered from that context at send time:
email subject, text and HTML body, SMS text, push title and body. The webhook event is
the validated context itself, under the kind's name (see `webhook_event`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from django.template import Context, Engine
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.registry import field_errors
from notifications.errors import ContextInvalid, UnknownKind
from notifications.models import Channel

DARKWATCH_EXPOSURE = "darkwatch.exposure"
HOMETITLE_CHANGE = "hometitle.change"
REPORTS_READY = "reports.ready"
REMOVEBROKERS_CONFIRMED = "removebrokers.confirmed"
REMOVEBROKERS_NEEDS_ACTION = "removebrokers.needs_action"
REMINDER = "reminder"
JOBS_FAILED = "jobs.failed"
JOBS_MONITOR = "jobs.monitor"
WEBHOOKS_DISABLED = "webhooks.disabled"

# Two GSM-7 segments. A longer text (a long reminder) is cut at a word with an ellipsis,
# well inside Twilio's own limit; every built-in kind renders inside one segment.
SMS_MAX_CHARS = 320

Severity = Literal["critical", "high", "medium", "low"]


class KindContext(BaseModel):
    """Base of the context schemas: extra keys are ignored, values are immutable."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class DarkwatchExposure(KindContext):
    subscription_id: int
    new_alerts: int = Field(ge=1)
    highest_severity: Severity
    breaches: list[str] = Field(max_length=10)


class RecordedDocument(KindContext):
    property: str
    document_type: str
    document_number: str
    recorded_date: str


class HometitleChange(KindContext):
    subscription_id: int
    changes: int = Field(ge=1)
    highest_severity: Severity
    documents: list[RecordedDocument]


class ReportsReady(KindContext):
    subscription_id: int
    report_id: int
    period_start: str
    period_end: str
    download_url: str  # signed, opens this report only, without a login (reports/links.py)
    download_expires_on: str = ""  # the link's last day (UTC); absent on notices written before links expired


class RemovebrokersConfirmed(KindContext):
    subscription_id: int
    broker: str


class RemovebrokersNeedsAction(KindContext):
    subscription_id: int
    broker: str
    instructions: str


class Reminder(KindContext):
    message: str = Field(min_length=1)
    subject: str = "Reminder from Kordant"


class JobsFailed(KindContext):
    job_run_id: str
    job_type: str
    error: str


class JobsMonitor(KindContext):
    check: str
    summary: str


class WebhooksDisabled(KindContext):
    endpoint_id: int
    url: str
    failures: int
    last_error: str


class JobEvent(KindContext):
    """A job run's lifecycle event (notifications/events.py)."""

    job_run_id: str
    job_type: str
    status: str
    attempt: int
    max_attempts: int
    subscription_id: int | None
    finished_at: str | None
    next_attempt_at: str | None = None
    error_type: str = ""
    error: str = ""  # staff-owned endpoints only: an error message may name our internals


class ResourceEvent(KindContext):
    """A customer's resource was created, updated or deleted (notifications/events.py)."""

    event_id: str
    subscription_id: int
    resource: str
    action: Literal["created", "updated", "deleted"]
    resource_id: int
    occurred_at: str
    object: dict[str, Any]


ALL_CHANNELS = frozenset(Channel.values)
EMAIL_ONLY = frozenset({Channel.EMAIL})
WEBHOOK_ONLY = frozenset({Channel.WEBHOOK})

JOB_EVENTS = ("job.completed", "job.failed", "job.retrying", "job.cancelled")
# Resource names as in their events (`alert.created`); each is rendered by its API serializer.
RESOURCES = ("alert", "title_change", "removal_request", "report", "schedule")
RESOURCE_ACTIONS = ("created", "updated", "deleted")
RESOURCE_EVENTS = tuple(f"{resource}.{action}" for resource in RESOURCES for action in RESOURCE_ACTIONS)


@dataclass(frozen=True)
class Kind:
    name: str
    schema: type[KindContext]
    subject: str
    text: str
    html: str
    sms: str
    push_title: str
    push_body: str
    channels: frozenset[str] = ALL_CHANNELS

    def validate(self, context: Any) -> dict[str, Any]:
        """The context as stored: validated, extras dropped, JSON-shaped; ContextInvalid otherwise."""
        if not isinstance(context, dict):
            raise ContextInvalid(self.name, {"__root__": [f"must be a dict, not {type(context).__name__}"]})
        try:
            return self.schema.model_validate(context).model_dump(mode="json")
        except ValidationError as exc:
            raise ContextInvalid(self.name, field_errors(exc)) from None

    @cached_property
    def _compiled(self) -> dict[str, Any]:
        return {
            name: (_HTML if name == "html" else _TEXT).from_string(getattr(self, name))
            for name in ("subject", "text", "html", "sms", "push_title", "push_body")
        }

    def render(self, part: str, context: dict[str, Any]) -> str:
        """One rendered template of this kind; text parts are not HTML-escaped."""
        template = self._compiled[part]
        return template.render(Context(context, autoescape=template.engine.autoescape)).strip()


# Text parts must not be HTML-escaped ("O'Brien" stays O'Brien in an SMS); the HTML part is.
_TEXT = Engine(autoescape=False)
_HTML = Engine(autoescape=True)


def render_email(kind: Kind, context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text body, HTML body) of an email of this kind."""
    subject = " ".join(kind.render("subject", context).split())  # a subject is one line
    body_html = kind.render("html", context)
    # body_html was rendered with autoescaping on, so the layout may include it as it is.
    html = render_to_string("notifications/email.html", {"subject": subject, "body_html": mark_safe(body_html)})
    return subject, kind.render("text", context), html


def render_sms(kind: Kind, context: dict[str, Any]) -> str:
    """The SMS text, cut at a word to SMS_MAX_CHARS with an ellipsis if longer."""
    text = " ".join(kind.render("sms", context).split())
    if len(text) <= SMS_MAX_CHARS:
        return text
    cut = text[: SMS_MAX_CHARS - 1].rsplit(" ", 1)[0]
    return cut + "…"


def webhook_event(kind: Kind, notification) -> dict[str, Any]:
    """The JSON event a webhook endpoint receives for this notification."""
    return {
        "id": f"ntf_{notification.pk}",
        "kind": kind.name,
        "created_at": notification.created_at.isoformat(),
        "data": notification.context,
    }


_SEVERITY_WORD = "{{ highest_severity|upper }}"

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in [
        Kind(
            DARKWATCH_EXPOSURE,
            DarkwatchExposure,
            subject=(
                f"[{_SEVERITY_WORD}] {{{{ new_alerts }}}} new dark-web exposure{{{{ new_alerts|pluralize }}}} found"
            ),
            text=(
                "DarkWatch found {{ new_alerts }} new exposure{{ new_alerts|pluralize }} of your personal data"
                " (highest severity: {{ highest_severity }}).\n\n"
                "{% if breaches %}Found in:\n{% for b in breaches %}- {{ b }}\n{% endfor %}\n{% endif %}"
                "Sign in to Kordant to see what was exposed and what to do next."
            ),
            html=(
                "<p>DarkWatch found <strong>{{ new_alerts }} new exposure{{ new_alerts|pluralize }}</strong>"
                " of your personal data (highest severity: <strong>{{ highest_severity }}</strong>).</p>"
                "{% if breaches %}<p>Found in:</p><ul>{% for b in breaches %}<li>{{ b }}</li>{% endfor %}</ul>"
                "{% endif %}<p>Sign in to Kordant to see what was exposed and what to do next.</p>"
            ),
            sms=(
                "Kordant: {{ new_alerts }} new dark-web exposure{{ new_alerts|pluralize }}"
                " ({{ highest_severity }}). Open the app for details."
            ),
            push_title="{{ new_alerts }} new dark-web exposure{{ new_alerts|pluralize }}",
            push_body="Highest severity: {{ highest_severity }}. Tap to review.",
        ),
        Kind(
            HOMETITLE_CHANGE,
            HometitleChange,
            subject=f"[{_SEVERITY_WORD}] {{{{ changes }}}} change{{{{ changes|pluralize }}}} to your property records",
            text=(
                "HomeTitle saw {{ changes }} new recorded document{{ changes|pluralize }} on your watched"
                " propert{{ documents|length|pluralize:'y,ies' }} (highest severity: {{ highest_severity }}).\n\n"
                "{% for d in documents %}- {{ d.property }}: {{ d.document_type }} {{ d.document_number }},"
                " recorded {{ d.recorded_date }}\n{% endfor %}\n"
                "If you did not expect these, contact your county recorder and Kordant support."
            ),
            html=(
                "<p>HomeTitle saw <strong>{{ changes }} new recorded document{{ changes|pluralize }}</strong>"
                " (highest severity: <strong>{{ highest_severity }}</strong>).</p><table>"
                "<tr><th>Property</th><th>Document</th><th>Number</th><th>Recorded</th></tr>"
                "{% for d in documents %}<tr><td>{{ d.property }}</td><td>{{ d.document_type }}</td>"
                "<td>{{ d.document_number }}</td><td>{{ d.recorded_date }}</td></tr>{% endfor %}</table>"
                "<p>If you did not expect these, contact your county recorder and Kordant support.</p>"
            ),
            sms=(
                "Kordant: {{ changes }} new document{{ changes|pluralize }} recorded on your property"
                " ({{ highest_severity }}). Open the app to check."
            ),
            push_title="{{ changes }} change{{ changes|pluralize }} to your property records",
            push_body="Highest severity: {{ highest_severity }}. Tap to review.",
        ),
        Kind(
            REPORTS_READY,
            ReportsReady,
            subject="Your Kordant report for {{ period_start }} to {{ period_end }} is ready",
            text=(
                "Your Kordant report for {{ period_start }} to {{ period_end }} is ready.\n\n"
                "Download it: {{ download_url }}\n\n"
                "The link is for you alone{% if download_expires_on %} and works until {{ download_expires_on }}"
                "{% endif %}: do not forward it."
            ),
            html=(
                "<p>Your Kordant report for {{ period_start }} to {{ period_end }} is ready.</p>"
                '<p><a href="{{ download_url }}">Download the report</a></p>'
                "<p>The link is for you alone{% if download_expires_on %} and works until {{ download_expires_on }}"
                "{% endif %}: do not forward it.</p>"
            ),
            sms="Kordant: your report for {{ period_start }} to {{ period_end }} is ready in the app.",
            push_title="Your report is ready",
            push_body="{{ period_start }} to {{ period_end }}. Tap to open.",
        ),
        Kind(
            REMOVEBROKERS_CONFIRMED,
            RemovebrokersConfirmed,
            subject="{{ broker }} confirmed your removal",
            text="{{ broker }} confirmed that your data has been removed. Nothing more to do.",
            html="<p><strong>{{ broker }}</strong> confirmed that your data has been removed. Nothing more to do.</p>",
            sms="Kordant: {{ broker }} confirmed your data removal.",
            push_title="Removal confirmed",
            push_body="{{ broker }} removed your data.",
        ),
        Kind(
            REMOVEBROKERS_NEEDS_ACTION,
            RemovebrokersNeedsAction,
            subject="{{ broker }} needs your action to remove your data",
            text="{{ broker }} needs you to act before it removes your data:\n\n{{ instructions }}",
            html=(
                "<p><strong>{{ broker }}</strong> needs you to act before it removes your data:</p>"
                "<p>{{ instructions|linebreaksbr }}</p>"
            ),
            sms="Kordant: {{ broker }} needs your action to remove your data. Check your email or the app.",
            push_title="Action needed: {{ broker }}",
            push_body="{{ broker }} needs your action to remove your data.",
        ),
        Kind(
            REMINDER,
            Reminder,
            subject="{{ subject }}",
            text="{{ message }}",
            html="<p>{{ message|linebreaksbr }}</p>",
            sms="Kordant reminder: {{ message }}",
            push_title="{{ subject }}",
            push_body="{{ message }}",
        ),
        Kind(
            JOBS_FAILED,
            JobsFailed,
            subject="[Kordant jobs] {{ job_type }} failed",
            text="Job run {{ job_run_id }} ({{ job_type }}) failed for good:\n\n{{ error }}",
            html="<p>Job run <code>{{ job_run_id }}</code> ({{ job_type }}) failed for good:</p><pre>{{ error }}</pre>",
            sms="Kordant jobs: {{ job_type }} failed ({{ job_run_id }}).",
            push_title="{{ job_type }} failed",
            push_body="{{ error|truncatechars:120 }}",
            channels=EMAIL_ONLY,
        ),
        Kind(
            JOBS_MONITOR,
            JobsMonitor,
            subject="[Kordant jobs] alert: {{ summary }}",
            text="The job monitor found a problem ({{ check }}):\n\n{{ summary }}\n\nSee the admin's jobs dashboard.",
            html="<p>The job monitor found a problem (<code>{{ check }}</code>):</p><p>{{ summary }}</p>",
            sms="Kordant jobs alert: {{ summary|truncatechars:120 }}",
            push_title="Jobs alert: {{ check }}",
            push_body="{{ summary|truncatechars:120 }}",
            channels=EMAIL_ONLY,
        ),
        Kind(
            WEBHOOKS_DISABLED,
            WebhooksDisabled,
            subject="Kordant stopped sending to your webhook {{ url }}",
            text=(
                "Your webhook endpoint {{ url }} failed {{ failures }} deliveries in a row, so Kordant stopped"
                " sending to it.\n\nLast error: {{ last_error }}\n\n"
                "Fix the endpoint, then ask Kordant support to re-enable it."
            ),
            html=(
                "<p>Your webhook endpoint <code>{{ url }}</code> failed {{ failures }} deliveries in a row,"
                " so Kordant stopped sending to it.</p><p>Last error: {{ last_error }}</p>"
                "<p>Fix the endpoint, then ask Kordant support to re-enable it.</p>"
            ),
            sms="Kordant: your webhook {{ url }} was disabled after {{ failures }} failures.",
            push_title="Webhook disabled",
            push_body="{{ url }} failed {{ failures }} times in a row.",
            # Never by webhook: the endpoint being reported is the one that does not answer.
            channels=EMAIL_ONLY,
        ),
    ]
}


def _webhook_event_kind(name: str, schema: type[KindContext]) -> Kind:
    # Webhook-only: the templates are never rendered, the JSON event is the message.
    return Kind(
        name, schema, subject=name, text="", html="", sms="", push_title="", push_body="", channels=WEBHOOK_ONLY
    )


KINDS.update({name: _webhook_event_kind(name, JobEvent) for name in JOB_EVENTS})
KINDS.update({name: _webhook_event_kind(name, ResourceEvent) for name in RESOURCE_EVENTS})
EVENT_KINDS = frozenset(JOB_EVENTS + RESOURCE_EVENTS)


def kind_get(name: str) -> Kind:
    """The kind registered under `name`, or UnknownKind."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise UnknownKind(f"Unknown notification kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
