"""Templates per kind: SMS texts are length-checked, push and webhook parts render from the context."""

import pytest

from notifications import kinds
from notifications.kinds import KINDS, SMS_MAX_CHARS, render_sms
from tests.notifications.test_email import CONTEXTS


@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_every_kinds_sms_fits_one_segment_and_push_has_a_title_and_body(kind):
    spec = KINDS[kind]
    context = spec.validate(CONTEXTS[kind])
    text = render_sms(spec, context)
    assert 0 < len(text) <= 160, text
    assert spec.render("push_title", context) and spec.render("push_body", context)


def test_a_long_sms_is_cut_at_a_word_with_an_ellipsis():
    spec = KINDS[kinds.REMINDER]
    text = render_sms(spec, spec.validate({"message": "word " * 200}))
    assert len(text) <= SMS_MAX_CHARS and text.endswith("word…")


def test_the_sms_text_is_one_line():
    spec = KINDS[kinds.REMINDER]
    assert render_sms(spec, spec.validate({"message": "line one\nline two"})) == "Kordant reminder: line one line two"
