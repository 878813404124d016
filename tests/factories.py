from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from webapp.access.models import AccessRequest, Gate, GateField, GateLevel, Grant, LicenceVersion
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


class GateFactory(DjangoModelFactory):
    class Meta:
        model = Gate
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"gate-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.replace("-", " ").title())
    description = "Researchers at an institution may apply."


class GateLevelFactory(DjangoModelFactory):
    class Meta:
        model = GateLevel

    gate = factory.SubFactory(GateFactory)
    level = "chat"
    description = "Chat with the model in the browser."


class GateFieldFactory(DjangoModelFactory):
    class Meta:
        model = GateField

    gate = factory.SubFactory(GateFactory)
    name = factory.Sequence(lambda n: f"field-{n}")
    label = "Affiliation"


class LicenceVersionFactory(DjangoModelFactory):
    class Meta:
        model = LicenceVersion

    gate = factory.SubFactory(GateFactory)
    version = 1
    title = "Research licence"
    text = "Use it for **research** only."


def gate_factory(*, levels=("chat", "api", "weights"), auto=(), licence=True, **fields) -> Gate:
    """A gate offering ``levels`` (those in ``auto`` approved at once), with a licence."""
    gate = GateFactory(**fields)
    for level in levels:
        GateLevelFactory(gate=gate, level=level, auto_approve=level in auto)
    if licence:
        LicenceVersionFactory(gate=gate)
    return gate


class AccessRequestFactory(DjangoModelFactory):
    class Meta:
        model = AccessRequest

    gate = factory.SubFactory(GateFactory)
    user = factory.SubFactory(UserFactory)
    levels = factory.LazyFunction(lambda: ["chat"])
    answers = factory.LazyFunction(dict)
    licence_version = factory.LazyAttribute(lambda o: o.gate.licences.order_by("-version").first())


class GrantFactory(DjangoModelFactory):
    class Meta:
        model = Grant

    gate = factory.SubFactory(GateFactory)
    user = factory.SubFactory(UserFactory)
    levels = factory.LazyFunction(lambda: ["chat"])
    licence_version = factory.LazyAttribute(lambda o: o.gate.licences.order_by("-version").first())
