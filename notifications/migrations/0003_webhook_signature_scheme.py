"""WebhookEndpoint.signature_scheme: existing endpoints keep today's signature (`legacy`), new ones get `standard`.

The column is added with `legacy` as the default so every existing row gets it (their receivers
verify Kordant-Signature and must not break), then the default becomes `standard` for new rows.
"""

from django.db import migrations, models


def _field(default):
    return models.CharField(
        max_length=32,
        choices=[
            ("standard", "Standard Webhooks, HMAC-SHA256 (v1, whsec_ secret)"),
            ("standard-ed25519", "Standard Webhooks, ed25519 (v1a, project key)"),
            ("rsa-sha256", "RSA-SHA256 in X-Webhook-Signature (project key)"),
            ("legacy", "Legacy Kordant-Signature (t=, v1=)"),
        ],
        default=default,
        help_text="How deliveries are signed; the receiver must verify this scheme. See the README.",
    )


class Migration(migrations.Migration):
    dependencies = [("notifications", "0002_webhook_secret_encrypted")]

    operations = [
        migrations.AddField(model_name="webhookendpoint", name="signature_scheme", field=_field("legacy")),
        migrations.AlterField(model_name="webhookendpoint", name="signature_scheme", field=_field("standard")),
    ]
