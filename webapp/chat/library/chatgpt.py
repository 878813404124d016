"""Read one conversation of a ChatGPT export (``conversations.json``): its ``mapping`` tree.

Each node names its parent and its children; nodes without a message (the root
ChatGPT adds), empty system messages and tool output are left out, their
children hung on the nearest kept ancestor, so the forks stay branches.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from webapp.core.errors import ValidationFailed

from .tree import Node, Tree, content_check, time_read, title_read

_KEPT_ROLES = {"user", "assistant", "system"}


def tree(item: dict[str, Any], *, where: str) -> Tree:
    """Return the conversation as a Tree, parents first; refuse cycles and broken links."""
    mapping = item.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise ValidationFailed(f"{where}: its mapping is empty or not an object.")
    for key, node in mapping.items():
        if not isinstance(node, dict):
            raise ValidationFailed(f"{where}: the node {str(key)[:40]!r} is not an object.")
    order = _walk(mapping, where)
    kept_parent: dict[str, str | None] = {}
    nodes: list[Node] = []
    for key in order:
        node = mapping[key]
        parent = node.get("parent")
        above = kept_parent.get(parent) if parent is not None else None
        message = _message(node.get("message"))
        if message is None:
            kept_parent[key] = above
            continue
        role, content, created = message
        content = content_check(content, where=where)
        nodes.append(
            Node(key=key, parent=above, role=role, content=content, created_at=time_read(created))
        )
        kept_parent[key] = key
    return Tree(
        title=title_read(item.get("title")),
        model_slug=None,
        created_at=time_read(item.get("create_time")),
        nodes=nodes,
    )


def _walk(mapping: dict[str, Any], where: str) -> list[str]:
    """Return the node ids from the roots down (breadth first, no recursion)."""
    children: dict[str, list[str]] = {}
    roots = []
    for key, node in mapping.items():
        parent = node.get("parent")
        if parent is None:
            roots.append(key)
        elif not isinstance(parent, str) or parent not in mapping:
            raise ValidationFailed(f"{where}: the node {key[:40]!r} names a missing parent.")
        else:
            children.setdefault(parent, []).append(key)
        listed = node.get("children", [])
        if not isinstance(listed, list) or any(
            not isinstance(c, str) or c not in mapping or mapping[c].get("parent") != key
            for c in listed
        ):
            raise ValidationFailed(
                f"{where}: the node {key[:40]!r} lists children that are not its own."
            )
    order: list[str] = []
    queue = deque(roots)
    while queue:
        key = queue.popleft()
        order.append(key)
        queue.extend(children.get(key, []))
    if len(order) != len(mapping):
        raise ValidationFailed(f"{where}: its mapping has a cycle.")
    return order


def _message(message: Any) -> tuple[str, str, Any] | None:
    if not isinstance(message, dict):
        return None
    author = message.get("author")
    role = author.get("role") if isinstance(author, dict) else None
    content = message.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if role not in _KEPT_ROLES or not isinstance(parts, list):
        return None
    text = "\n".join(p for p in parts if isinstance(p, str)).strip()
    if not text:
        return None
    return role, text, message.get("create_time")
