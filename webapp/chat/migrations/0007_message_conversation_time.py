from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_stored_search_vectors"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                fields=["conversation", "created_at"], name="chat_message_conv_time"
            ),
        ),
    ]
