"""Gates from the models YAML file (``manage.py load_models``): idempotent, every field checked.

A gate's levels and form fields are the ones the file names (others are
removed); its licence gets a new version only when the file's title or text
differs from the current one, so a re-run changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import Group
from django.utils.text import slugify

from webapp.core.validation import field_errors

from ..models import Gate, GateField, GateLevel, Level
from ..selectors.gates import licence_current
from .gates import gate_levels_changed
from .grants import licence_publish

GATE_FIELDS = (
    "name",
    "summary",
    "description",
    "is_open",
    "cooldown_days",
    "grant_days",
    "renewal",
    "transparency_public",
    "position",
)
LEVEL_KEYS = {"description", "requestable", "auto_approve"}
FIELD_KEYS = {"name", "label", "kind", "required", "help_text", "choices", "position"}
# "weights": the gate's weight files, loaded by webapp/weights/load.py.
GATE_KEYS = {*GATE_FIELDS, "slug", "approve_domains", "reviewer_group", "levels", "fields"}
GATE_KEYS.add("weights")


def gate_load_many(*, specs: Any) -> tuple[list[tuple[Gate, bool]], list[str]]:
    """Save every valid gate spec; return the gates and every problem found (the caller
    rolls the transaction back if there is any)."""
    if specs is None:
        return [], []
    if not isinstance(specs, list):
        return [], ["gates: must be a list of gates."]
    loaded, errors, seen = [], [], set()
    for spec in specs:
        problems, plan = _plan(spec, seen)
        errors += problems
        if plan is not None and not problems:
            loaded.append(_save(*plan))
    return loaded, errors


def _plan(spec: Any, seen: set[str]) -> tuple[list[str], tuple | None]:
    if not isinstance(spec, Mapping):
        return ["gates: each gate must be a mapping of fields."], None
    slug = str(spec.get("slug") or "")
    if not slug or slugify(slug) != slug:
        return [f"gate slug {slug!r}: use lowercase letters, digits and hyphens."], None
    if slug in seen:
        return [f"gate {slug}: slug: appears more than once in the file."], None
    seen.add(slug)
    where = f"gate {slug}"
    errors = []
    if unknown := set(spec) - GATE_KEYS - {"licence"}:
        errors.append(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}.")
    gate = Gate.objects.filter(slug=slug).first() or Gate(slug=slug, name=slug)
    for key in GATE_FIELDS:
        if key in spec:
            setattr(gate, key, spec[key])
    if "approve_domains" in spec:
        domains = spec["approve_domains"] or []
        if isinstance(domains, list):
            gate.approve_domains = "\n".join(map(str, domains))
        else:
            errors.append(f"{where}: approve_domains: must be a list of domains.")
    if "reviewer_group" in spec:
        name = spec["reviewer_group"]
        gate.reviewer_group = Group.objects.get_or_create(name=str(name))[0] if name else None
    errors += [f"{where}: {field}: {message}" for field, message in field_errors(gate)]
    levels, level_errors = _levels(where, spec.get("levels"))
    fields, field_problems = _fields(where, spec.get("fields", []))
    licence, licence_errors = _licence(where, spec.get("licence"))
    return errors + level_errors + field_problems + licence_errors, (gate, levels, fields, licence)


def _levels(where: str, raw: Any) -> tuple[list[GateLevel], list[str]]:
    if not isinstance(raw, Mapping) or not raw:
        return [], [f"{where}: levels: must map at least one of {', '.join(Level.values)}."]
    levels, errors = [], []
    for name, options in raw.items():
        options = options or {}
        if name not in Level.values or not isinstance(options, Mapping):
            errors.append(f"{where}: levels.{name}: not a level, or its options not a mapping.")
            continue
        if unknown := set(options) - LEVEL_KEYS:
            errors.append(f"{where}: levels.{name}: unknown field(s) {', '.join(sorted(unknown))}.")
            continue
        level = GateLevel(level=name, **options)
        errors += [
            f"{where}: levels.{name}.{f}: {m}" for f, m in field_errors(level, exclude=["gate"])
        ]
        levels.append(level)
    return levels, errors


def _fields(where: str, raw: Any) -> tuple[list[GateField], list[str]]:
    if not isinstance(raw, list):
        return [], [f"{where}: fields: must be a list of form fields."]
    fields, errors, names = [], [], set()
    for index, item in enumerate(raw):
        at = f"{where}: fields[{index}]"
        if not isinstance(item, Mapping):
            errors.append(f"{at}: must be a mapping with name, label and kind.")
            continue
        if unknown := set(item) - FIELD_KEYS:
            errors.append(f"{at}: unknown field(s) {', '.join(sorted(map(str, unknown)))}.")
            continue
        values = dict(item)
        if isinstance(values.get("choices"), list):
            values["choices"] = "\n".join(map(str, values["choices"]))
        values.setdefault("position", index)
        field = GateField(**values)
        problems = field_errors(field, exclude=["gate"])
        if field.name in names:
            problems.append(("name", f"{field.name!r} is listed twice."))
        names.add(field.name)
        errors += [f"{at}.{f}: {m}" for f, m in problems]
        fields.append(field)
    return fields, errors


def _licence(where: str, raw: Any) -> tuple[dict[str, str] | None, list[str]]:
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping) or set(raw) != {"title", "text"}:
        return None, [f"{where}: licence: must have exactly a title and a text."]
    if not all(isinstance(v, str) and v.strip() for v in raw.values()):
        return None, [f"{where}: licence: the title and the text must not be empty."]
    return {"title": raw["title"].strip(), "text": raw["text"].strip()}, []


def _save(
    gate: Gate, levels: list[GateLevel], fields: list[GateField], licence: dict[str, str] | None
) -> tuple[Gate, bool]:
    created = gate._state.adding
    gate.save()
    before = set(gate.levels.values_list("level", "requestable", "auto_approve"))
    for level in levels:
        options = {"description": level.description, "requestable": level.requestable}
        options["auto_approve"] = level.auto_approve
        GateLevel.objects.update_or_create(gate=gate, level=level.level, defaults=options)
    gate.levels.exclude(level__in=[level.level for level in levels]).delete()
    if (
        not created
        and set(gate.levels.values_list("level", "requestable", "auto_approve")) != before
    ):
        gate_levels_changed(gate=gate)
    for field in fields:
        values = {f: getattr(field, f) for f in FIELD_KEYS - {"name"}}
        GateField.objects.update_or_create(gate=gate, name=field.name, defaults=values)
    gate.fields.exclude(name__in=[field.name for field in fields]).delete()
    current = licence_current(gate=gate)
    if licence and (current is None or (current.title, current.text) != tuple(licence.values())):
        licence_publish(gate=gate, **licence)
    return gate, created
