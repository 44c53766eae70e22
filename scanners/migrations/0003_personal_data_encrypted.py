"""Personal data encrypted at rest: a removal request's person and a property's owner names.

The columns become text, the existing rows are encrypted with the identifier keys, and then
the fields read as plaintext through scanners.fields. Reversible: unapplying decrypts the
rows (with the keys configured at the time) and restores the JSON and varchar columns.
"""

import django.core.validators
from django.db import migrations, models

import scanners.fields
from scanners.darkwatch import identifiers

FIELDS = (("Property", "owner_names"), ("RemovalRequest", "person"))
CHUNK = 1000


def _rewrite(apps, change):
    for model_name, field in FIELDS:
        model = apps.get_model("scanners", model_name)
        rows = []
        for row in model.objects.only("pk", field).iterator(chunk_size=CHUNK):
            setattr(row, field, change(getattr(row, field)))
            rows.append(row)
            if len(rows) == CHUNK:
                model.objects.bulk_update(rows, [field])
                rows = []
        model.objects.bulk_update(rows, [field])


def encrypt_rows(apps, schema_editor):
    # Here the columns are plain text: a person is its JSON text, encrypted as it is.
    _rewrite(apps, identifiers.encrypt)


def decrypt_rows(apps, schema_editor):
    _rewrite(apps, identifiers.decrypt)


class Migration(migrations.Migration):
    dependencies = [("scanners", "0002_voiceprint_removebrokers")]

    operations = [
        migrations.AlterField(model_name="property", name="owner_names", field=models.TextField(max_length=300)),
        migrations.AlterField(model_name="removalrequest", name="person", field=models.TextField(default="{}")),
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.AlterField(
            model_name="property",
            name="owner_names",
            field=scanners.fields.EncryptedTextField(
                help_text="Owners on title, separated by ';' — a deed to anyone else is critical",
                max_length=300,
                validators=[django.core.validators.MaxLengthValidator(300)],
            ),
        ),
        migrations.AlterField(
            model_name="removalrequest",
            name="person",
            field=scanners.fields.EncryptedJSONField(default=dict, help_text="The fields sent to the broker"),
        ),
    ]
