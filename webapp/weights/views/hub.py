"""The part of the Hugging Face Hub HTTP API that ``huggingface_hub`` downloads with.

A gate is a model repository whose id is the gate's slug and whose files are
its weight files. ``GET /api/models/<id>[/revision/<rev>]`` lists them
(``siblings``, ``sha``); ``/<id>/resolve/<rev>/<file>`` answers as the Hub
answers an LFS file: a redirect to the download (here a signed link) carrying
``X-Repo-Commit``, ``X-Linked-Etag`` (the SHA-256) and ``X-Linked-Size``.
Refusals carry the Hub's ``X-Error-Code`` so the client raises its own
errors: ``GatedRepo`` (GatedRepoError) for people without the weights level,
``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``; a token that
cannot be used is a 401 "Invalid credentials in Authorization header" with
the reason in the body.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from webapp.access.models import Gate

from .. import selectors
from ..authorize import Downloader, DownloadRefused, access_check, token_downloader
from ..models import WeightFile, file_name_problem
from .browser import link_url, refused

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def hub_error(status: int, code: str | None, message: str, *, header: str = "") -> JsonResponse:
    """The Hub's error shape: the reason in the body and ``X-Error-Message`` (HEAD has no body)."""
    response = JsonResponse({"error": message}, status=status)
    if code:
        response["X-Error-Code"] = code
    response["X-Error-Message"] = (header or message).replace("\n", " ")
    return response


def _authorize(request: HttpRequest, gate: Gate, **detail: object) -> Downloader | HttpResponse:
    """Return the token holder allowed the gate's weights, or the Hub's refusal (recorded)."""
    try:
        downloader = token_downloader(request) or Downloader(request.user)
        access_check(downloader=downloader, gate=gate)
    except DownloadRefused as exc:
        refused(request, exc, via="hub", gate=gate, **detail)  # the audit entry
        if exc.status == 401 and request.headers.get("Authorization"):
            # huggingface_hub reads this exact message as "a bad token", not "no such repo".
            return hub_error(401, None, exc.detail, header=INVALID_CREDENTIALS)
        message = f"Access to model {gate.slug} is restricted. {exc.detail}"
        return hub_error(exc.status, "GatedRepo", message)
    return downloader


@dataclass(frozen=True)
class _Repo:
    gate: Gate
    downloader: Downloader
    files: list[WeightFile]
    sha: str


def _open(request: HttpRequest, slug: str, revision: str, name: str = "") -> _Repo | HttpResponse:
    """Return the gate ``slug`` at ``revision`` for an allowed caller, or the Hub's error."""
    gate = selectors.gate_get(slug=slug)
    if gate is None:
        return hub_error(404, "RepoNotFound", f"Repository {slug} not found.")
    if name and (problem := file_name_problem(name)):
        refused(request, DownloadRefused(problem, status=400), via="hub", gate=gate, file=name)
        return hub_error(400, None, problem)
    allowed = _authorize(request, gate, **({"file": name} if name else {}))
    if isinstance(allowed, HttpResponse):
        return allowed
    files = selectors.weight_file_list(gate=gate)
    sha = selectors.gate_revision(files=files)
    if revision not in ("main", sha):
        return hub_error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
    return _Repo(gate, allowed, files, sha)


@require_safe
@never_cache
def model_info(request: HttpRequest, repo: str, revision: str = "main") -> HttpResponse:
    opened = _open(request, repo, revision)
    if isinstance(opened, HttpResponse):
        return opened
    return JsonResponse(_info(opened.gate, opened.files, opened.sha))


def _info(gate: Gate, files: list[WeightFile], sha: str) -> dict[str, object]:
    newest = max((file.updated_at for file in files), default=gate.updated_at)
    return {
        "_id": str(gate.pk),
        "id": gate.slug,
        "modelId": gate.slug,
        "sha": sha,
        "lastModified": newest.isoformat().replace("+00:00", "Z"),
        "private": False,
        "gated": "manual",
        "disabled": False,
        "tags": [],
        "siblings": [
            {
                "rfilename": file.name,
                "size": file.size,
                "lfs": {"sha256": file.sha256, "size": file.size, "pointerSize": 134},
            }
            for file in files
        ],
    }


@require_safe
@never_cache
def resolve(request: HttpRequest, repo: str, revision: str, name: str) -> HttpResponse:
    opened = _open(request, repo, revision, name)
    if isinstance(opened, HttpResponse):
        return opened
    file = next((f for f in opened.files if f.name == name), None)
    if file is None:
        return hub_error(404, "EntryNotFound", f"{name} does not exist on {revision}.")
    user_id = opened.downloader.user.pk
    response = HttpResponse(status=302)
    response["Location"] = link_url(request, user_id=user_id, file=file, via="hub")
    response["X-Repo-Commit"] = opened.sha
    response["X-Linked-Etag"] = f'"{file.sha256}"'
    response["X-Linked-Size"] = str(file.size)
    response["ETag"] = f'"{file.sha256}"'
    return response
