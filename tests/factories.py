from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from webapp.accounts.models import User
from webapp.catalog.models import AccessPolicy, LanguageModel, ModelEndpoint
from webapp.chat.models import Conversation, Message, Role
from webapp.generations.models import Generation, Origin, Status

PASSWORD = "correct horse battery"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    password = factory.django.Password(PASSWORD)


class LanguageModelFactory(DjangoModelFactory):
    class Meta:
        model = LanguageModel
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"model-{n}")
    display_name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    description = "A **test** model."
    backend = "openai"
    access_policy = AccessPolicy.REGISTERED
    default_params = factory.LazyFunction(lambda: {"max_new_tokens": 64, "temperature": 0.7})


class ModelEndpointFactory(DjangoModelFactory):
    class Meta:
        model = ModelEndpoint

    model = factory.SubFactory(LanguageModelFactory)
    url = "http://127.0.0.1:9/"


class ConversationFactory(DjangoModelFactory):
    class Meta:
        model = Conversation

    user = factory.SubFactory(UserFactory)
    model = factory.SubFactory(LanguageModelFactory)
    title = "A conversation"


class MessageFactory(DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Role.USER
    content = "Hello"


class GenerationFactory(DjangoModelFactory):
    class Meta:
        model = Generation

    user = factory.SubFactory(UserFactory)
    language_model = factory.SubFactory(LanguageModelFactory)
    origin = Origin.CHAT
    messages = factory.LazyFunction(lambda: [{"role": "user", "content": "Hello"}])
    channel_group = factory.LazyAttribute(lambda o: f"generation.{o.id}")
    status = Status.DONE


def reply_factory(*, conversation: Conversation, parent: Message | None, **generation) -> Message:
    """An assistant message of ``conversation`` with its generation (``generation``: its fields)."""
    made = GenerationFactory(
        user=conversation.user,
        language_model=conversation.model,
        channel_group=conversation.group,
        **generation,
    )
    return MessageFactory(
        conversation=conversation, parent=parent, role=Role.ASSISTANT, content="", generation=made
    )
