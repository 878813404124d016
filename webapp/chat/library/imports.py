"""Import a Gatehouse export or a ChatGPT ``conversations.json``: all of it, or nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.catalog.models import LanguageModel
from webapp.catalog.policy import model_can_use
from webapp.chat.configure import params_clean, system_prompt_clean
from webapp.chat.models import Conversation, Message, Role
from webapp.core.errors import ValidationFailed
from webapp.generations.imported import ImportedReply, generations_import, imported_stats_read

from . import chatgpt
from .export import FORMAT
from .tree import (
    Node,
    Tree,
    content_check,
    messages_insert,
    time_read,
    title_read,
    tree_order,
)

MAX_MESSAGES = 200_000
_MB = 1024 * 1024
_ROLES = {Role.USER, Role.ASSISTANT, Role.SYSTEM}


@dataclass(frozen=True)
class Summary:
    source: str  # "gatehouse" or "chatgpt"
    conversations: int
    messages: int
    branches: int  # messages with more than one child: forks kept as branches
    models: dict[str, int]  # model display name -> conversations


def import_size_check(size: int | None) -> None:
    """Refuse an import by its size alone, before anything reads it."""
    limit = settings.CHAT_IMPORT_MAX_BYTES
    if size is None:
        raise ValidationFailed("Choose a file to import.")
    if size > limit:
        raise ValidationFailed(
            f"The file is too large ({size // _MB} MB; at most {limit // _MB} MB)."
        )


def conversations_import(*, user: Any, data: bytes, default_model: LanguageModel) -> Summary:
    """Parse ``data`` and create every conversation in it in one transaction."""
    import_size_check(len(data))
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ValidationFailed("The file is not JSON (a Gatehouse or ChatGPT export).") from exc
    source, trees = _trees(parsed)
    if not trees:
        raise ValidationFailed("The file holds no conversations.")
    total = sum(len(t.nodes) for t in trees)
    if total > MAX_MESSAGES:
        raise ValidationFailed(f"The file holds {total} messages; at most {MAX_MESSAGES}.")
    models = _models(user, trees, default_model)
    for i, tree in enumerate(trees):
        tree.params = _params(tree.params, models[tree.model_slug], f"Conversation {i + 1}")
    with transaction.atomic():
        for tree in trees:
            _write(user, tree, models[tree.model_slug], models)
    return Summary(
        source=source,
        conversations=len(trees),
        messages=total,
        branches=sum(_forks(t) for t in trees),
        models=dict(Counter(models[t.model_slug].display_name for t in trees)),
    )


def _trees(parsed: Any) -> tuple[str, list[Tree]]:
    if isinstance(parsed, dict) and parsed.get("format") == FORMAT:
        return "gatehouse", _gatehouse(parsed)
    if isinstance(parsed, list) and all(isinstance(c, dict) and "mapping" in c for c in parsed):
        return "chatgpt", [
            chatgpt.tree(c, where=f"Conversation {i + 1}") for i, c in enumerate(parsed)
        ]
    raise ValidationFailed("This is neither a Gatehouse export nor a ChatGPT conversations.json.")


def _gatehouse(parsed: dict[str, Any]) -> list[Tree]:
    conversations = parsed.get("conversations")
    if not isinstance(conversations, list):
        raise ValidationFailed("The export has no list of conversations.")
    return [_gatehouse_tree(c, f"Conversation {i + 1}") for i, c in enumerate(conversations)]


def _gatehouse_tree(item: Any, where: str) -> Tree:
    if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
        raise ValidationFailed(f"{where}: not a conversation with messages.")
    nodes = []
    for raw in item["messages"]:
        if not isinstance(raw, dict):
            raise ValidationFailed(f"{where}: a message is not an object.")
        node = Node(
            key=_text(raw.get("id"), where, "id"),
            parent=None if raw.get("parent") is None else _text(raw["parent"], where, "parent"),
            role=_role(raw.get("role"), where),
            content=_content(raw.get("content"), where),
            created_at=time_read(raw.get("created_at")),
        )
        if node.role == Role.ASSISTANT and raw.get("generation") is not None:
            node.reply = imported_stats_read(raw["generation"], where=where)
            slug = raw["generation"].get("model")
            node.reply_model = slug if isinstance(slug, str) else None
        nodes.append(node)
    return Tree(
        title=title_read(item.get("title")),
        model_slug=item.get("model") if isinstance(item.get("model"), str) else None,
        created_at=time_read(item.get("created_at")),
        nodes=tree_order(nodes, where=where),
        **_settings(item, {n.key for n in nodes}, where),
    )


def _settings(item: dict[str, Any], keys: set[str], where: str) -> dict[str, Any]:
    """Read the conversation's system prompt, parameters (checked once its model is known),
    branch last viewed and pin; an export made before they were exported has none."""
    prompt, params = item.get("system_prompt"), item.get("params")
    leaf, pinned = item.get("current_leaf"), item.get("pinned", False)
    try:
        prompt = system_prompt_clean("" if prompt is None else prompt)
    except ValidationFailed as exc:
        raise _within(where, exc) from exc
    if params is not None and not isinstance(params, dict):
        raise ValidationFailed(f"{where}: its parameters are not an object.")
    if leaf is not None and (not isinstance(leaf, str | int) or str(leaf) not in keys):
        raise ValidationFailed(
            f"{where}: its current message {str(leaf)[:40]!r} is not one of its messages."
        )
    if not isinstance(pinned, bool):
        raise ValidationFailed(f"{where}: pinned is neither true nor false.")
    return {
        "system_prompt": prompt,
        "params": params or {},
        "current_leaf": None if leaf is None else str(leaf),
        "pinned": pinned,
    }


def _within(where: str, exc: ValidationFailed) -> ValidationFailed:
    return ValidationFailed(f"{where}: {exc.detail[:1].lower()}{exc.detail[1:]}")


def _params(params: dict[str, Any], model: LanguageModel, where: str) -> dict[str, Any]:
    if not params:
        return {}
    try:
        return params_clean(model=model, params=params)
    except ValidationFailed as exc:
        raise _within(where, exc) from exc


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValidationFailed(f"{where}: a message has no valid {name}.")
    return str(value)


def _role(value: Any, where: str) -> str:
    if value not in _ROLES:
        raise ValidationFailed(
            f"{where}: {str(value)[:20]!r} is not a role (user, assistant, system)."
        )
    return str(value)


def _content(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{where}: a message's content is not text.")
    return content_check(value, where=where)


def _models(
    user: Any, trees: list[Tree], default: LanguageModel
) -> dict[str | None, LanguageModel]:
    """Map each named model to itself where the user may chat with it, else to ``default``."""
    slugs = {t.model_slug for t in trees if t.model_slug}
    slugs |= {n.reply_model for t in trees for n in t.nodes if n.reply_model}
    found = {m.slug: m for m in LanguageModel.objects.filter(slug__in=slugs)}
    usable = {s: m for s, m in found.items() if model_can_use(user=user, model=m, action="chat")}
    return {None: default, **{s: usable.get(s, default) for s in slugs}}


def _write(user: Any, tree: Tree, model: LanguageModel, models: dict[Any, LanguageModel]) -> None:
    conversation = Conversation.objects.create(
        user=user,
        model=model,
        title=tree.title,
        system_prompt=tree.system_prompt,
        params=tree.params,
        pinned=tree.pinned,
    )
    times = _times(tree)
    replies = {
        node.key: ImportedReply(
            model=models.get(node.reply_model, model) if node.reply_model else model,
            text=node.content,
            created_at=when,
            stats=node.reply,
        )
        for node, when in zip(tree.nodes, times, strict=True)
        if node.reply is not None
    }
    made = generations_import(user=user, group=conversation.group, replies=list(replies.values()))
    generations = dict(zip(replies, made, strict=True))
    ids = {n.key: uuid.uuid4() for n in tree.nodes}
    rows = [
        Message(
            id=ids[node.key],
            conversation=conversation,
            parent_id=ids[node.parent] if node.parent is not None else None,
            role=node.role,
            # A reply with its record says what it says there, as a live reply does.
            content="" if node.key in generations else node.content,
            generation=generations.get(node.key),
        )
        for node in tree.nodes
    ]
    messages_insert(rows, times)
    if tree.current_leaf is not None:
        Conversation.objects.filter(pk=conversation.pk).update(
            current_leaf_id=ids[tree.current_leaf]
        )


def _times(tree: Tree) -> list[dt.datetime]:
    """Return each node's time as the file says, nudged so parents stay older than their
    children (the newest message is a leaf)."""
    now = timezone.now()
    times: list[dt.datetime] = []
    for i, node in enumerate(tree.nodes):
        base = node.created_at or tree.created_at or now
        previous = times[-1] if times else base
        times.append(max(base, previous + dt.timedelta(microseconds=1)) if i else base)
    return times


def _forks(tree: Tree) -> int:
    counts = Counter(n.parent for n in tree.nodes if n.parent is not None)
    return sum(1 for c in counts.values() if c > 1)
