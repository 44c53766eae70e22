import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def hash_authtoken_keys(apps, schema_editor):
    """Keys DRF's authtoken stored in clear become digests here, and the clear keys are deleted.

    The authtoken app is no longer installed, so its table is read with SQL, if this database
    has it. Clients keep working with the keys they hold.
    """
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    APIToken = apps.get_model("api", "APIToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
        APIToken.objects.bulk_create(
            [
                APIToken(user_id=user_id, digest=hashlib.sha256(key.encode()).hexdigest(), prefix=key[:6], created=created)
                for key, user_id, created in rows
            ]
        )
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):
    # Reversible only as far as it can be: unapplying drops the digests, and a digest cannot be
    # turned back into the key it came from, so users log in again for new tokens.

    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='APIToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.CharField(editable=False, max_length=64, unique=True)),
                ('prefix', models.CharField(editable=False, help_text="The key's first characters, to tell keys apart", max_length=8)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'API token',
                'ordering': ['-created'],
            },
        ),
        migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop),
    ]
