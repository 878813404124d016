"""Load model definitions from a YAML file: all of them or, if any is invalid, none.

A re-run updates, never duplicates.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.catalog.services import ModelSpecError, catalog_load

_ENV = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _substituted(value: Any) -> Any:
    """Put ``${VAR}`` from the environment into the file's strings (API keys stay out of the
    file). Done after parsing, so a value is only ever a string: a variable holding YAML
    cannot add fields or models."""
    if isinstance(value, str):
        return _ENV.sub(lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, list):
        return [_substituted(item) for item in value]
    if isinstance(value, dict):
        return {key: _substituted(item) for key, item in value.items()}
    return value


class Command(BaseCommand):
    help = "Create or update gates, language models and their endpoints from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "file", help="YAML file with a top-level 'models:' list and, optionally, 'gates:'"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with open(options["file"], encoding="utf-8") as handle:
                data = _substituted(yaml.safe_load(handle) or {})
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from exc
        if not isinstance(data, dict):
            raise CommandError("The file must be a mapping with a 'models:' list.")
        try:
            gates, results = catalog_load(models=data.get("models"), gates=data.get("gates"))
        except ModelSpecError as exc:
            count = len(exc.messages)
            raise CommandError(
                f"Nothing was loaded: {count} problem{'s' if count > 1 else ''} to fix.\n{exc}"
            ) from exc
        for gate, created in gates:
            self.stdout.write(f"{'created' if created else 'updated'} gate {gate.slug}")
        for model, created in results:
            self.stdout.write(f"{'created' if created else 'updated'} {model.slug}")
