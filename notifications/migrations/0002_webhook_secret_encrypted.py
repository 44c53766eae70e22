"""Webhook endpoint secrets encrypted at rest (scanners.fields, the identifier keys).

Reversible: unapplying decrypts the secrets and restores the varchar column.
"""

from django.db import migrations, models

import notifications.models
import scanners.fields
from scanners.darkwatch import identifiers


def _rewrite(apps, change):
    WebhookEndpoint = apps.get_model("notifications", "WebhookEndpoint")
    rows = list(WebhookEndpoint.objects.only("pk", "secret"))
    for row in rows:
        row.secret = change(row.secret)
    WebhookEndpoint.objects.bulk_update(rows, ["secret"], batch_size=1000)


def encrypt_secrets(apps, schema_editor):
    _rewrite(apps, identifiers.encrypt)


def decrypt_secrets(apps, schema_editor):
    _rewrite(apps, identifiers.decrypt)


class Migration(migrations.Migration):
    dependencies = [("notifications", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=models.TextField(default=notifications.models.new_webhook_secret),
        ),
        migrations.RunPython(encrypt_secrets, decrypt_secrets),
        migrations.AlterField(
            model_name="webhookendpoint",
            name="secret",
            field=scanners.fields.EncryptedTextField(default=notifications.models.new_webhook_secret),
        ),
    ]
