from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0003_fair_queue"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="token_details",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
