"""Weight files from the models YAML file (``manage.py load_models``), under each gate:

    gates:
      - slug: open-llm
        weights:
          - name: model.safetensors            # its path in the repository
            path: open-llm/model.safetensors   # where it is in the weights storage
            sha256: 3f1c…                      # optional: the stored file must match
            size: 536870912                    # optional, likewise

Every file is read and its checksum verified when it is first attached (or
its path, checksum or size in the file changes); a re-run that changes
nothing reads nothing. A gate that lists ``weights`` keeps only those files.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from webapp.access.models import Gate
from webapp.core.errors import ValidationFailed

from .models import SHA256, WeightFile
from .services import weight_file_attach, weights_storage

KEYS = {"name", "path", "sha256", "size"}


def weight_load_many(*, specs: Any, gates: Mapping[str, Gate]) -> list[str]:
    """Attach the files each gate spec lists; return every problem (the caller rolls back)."""
    errors: list[str] = []
    for spec in specs if isinstance(specs, list) else []:
        if not isinstance(spec, Mapping) or "weights" not in spec:
            continue
        gate = gates.get(str(spec.get("slug")))
        if gate is not None:
            errors += _gate_files(gate, spec["weights"])
    return errors


def _gate_files(gate: Gate, raw: Any) -> list[str]:
    where = f"gate {gate.slug}: weights"
    if not isinstance(raw, list):
        return [f"{where}: must be a list of files with name and path."]
    errors, names = [], []
    for index, item in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping) or not {"name", "path"} <= set(item):
            errors.append(f"{at}: must be a mapping with name and path.")
            continue
        if unknown := set(item) - KEYS:
            errors.append(f"{at}: unknown field(s) {', '.join(sorted(map(str, unknown)))}.")
            continue
        name, size = str(item["name"]), item.get("size")
        if name in names:
            errors.append(f"{at}.name: {name!r} is listed twice.")
            continue
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            errors.append(f"{at}.size: must be a number of bytes.")
            continue
        sha256 = "" if item.get("sha256") is None else item["sha256"]
        if not isinstance(sha256, str) or (sha256 and not SHA256.match(sha256.lower())):
            errors.append(f"{at}.sha256: must be 64 hexadecimal characters, in quotes.")
            continue
        names.append(name)
        try:
            _attach(gate, name, str(item["path"]), sha256, size)
        except ValidationFailed as exc:
            errors.append(f"{at}: {exc.detail}")
    if not errors:
        gate.weight_files.exclude(name__in=names).delete()
    return errors


def _attach(gate: Gate, name: str, path: str, sha256: str, size: int | None) -> None:
    known = WeightFile.objects.filter(gate=gate, name=name, storage_path=path).first()
    if (
        known is not None
        and sha256.lower() in ("", known.sha256)
        and size in (None, known.size)
        and _stored_size(path) == known.size
    ):
        return  # attached and verified before, unchanged since
    weight_file_attach(gate=gate, name=name, storage_path=path, sha256=sha256, size=size)


def _stored_size(path: str) -> int | None:
    try:
        return weights_storage().size(path)
    except (OSError, NotImplementedError):
        return None
