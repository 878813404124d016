"""Pages of shares (public, read-only) and of the user's data (export, import, shares)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from webapp.catalog.selectors import model_get_usable, model_list_usable
from webapp.core.errors import ApplicationError, NotFound, PermissionDenied

from . import imports, sharing
from .views import _json_login_required, json_answer


@require_POST
@_json_login_required
def share_create(request: HttpRequest, conversation_id: str) -> JsonResponse:
    return json_answer(
        lambda: sharing.share_create(
            user=request.user, conversation_id=conversation_id, leaf_id=request.POST.get("leaf")
        ),
        lambda s: {"token": s.token, "url": request.build_absolute_uri(s.get_absolute_url())},
    )


def share_detail(request: HttpRequest, token: str) -> HttpResponse:
    try:
        share = sharing.share_get(token=token)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    return render(request, "chat/library/share.html", _share_page(request, share))


def _share_page(request: HttpRequest, share: object, **extra: object) -> dict[str, object]:
    owner = request.user.is_authenticated and share.owner_id == request.user.pk  # type: ignore[attr-defined]
    return {"share": share, "is_owner": owner, **extra}


@require_POST
def share_continue(request: HttpRequest, token: str) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(reverse("chat:share", kwargs={"token": token}))
    try:
        conversation = sharing.share_continue(user=request.user, token=token)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    except PermissionDenied as exc:
        share = sharing.share_get(token=token)
        page = _share_page(request, share, refused=exc.detail)
        return render(request, "chat/library/share.html", page, status=403)
    return redirect(conversation)


@require_POST
@login_required
def share_revoke(request: HttpRequest, token: str) -> HttpResponse:
    try:
        sharing.share_revoke(user=request.user, token=token)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    return redirect("chat:data")


@csrf_exempt  # checked by _data_page below, once the size is known to be acceptable
@login_required
def data_page(request: HttpRequest) -> HttpResponse:
    """Export everything, import a file, see and revoke shared links."""
    if request.method == "POST":
        # By its declared size first, before anything (the CSRF check included) reads
        # the body: Django's documented way to act on an upload before it is parsed.
        try:
            imports.import_size_check(_declared_size(request))
        except ApplicationError as exc:
            return _data(
                request, error=exc.detail, status=413 if "too large" in exc.detail else 400
            )
    return _data_page(request)


@csrf_protect
def _data_page(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _data(request)
    try:
        upload = request.FILES.get("file")
        imports.import_size_check(upload.size if upload else None)
        model = model_get_usable(
            user=request.user, slug=request.POST.get("model", ""), action="chat"
        )
        if model is None:
            raise PermissionDenied("Choose a model you have access to for the imported chats.")
        summary = imports.conversations_import(
            user=request.user,
            data=upload.read(),  # type: ignore[union-attr]
            default_model=model,
        )
    except ApplicationError as exc:
        return _data(request, error=exc.detail, status=413 if "too large" in exc.detail else 400)
    return _data(request, summary=summary)


def _declared_size(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        return None


def _data(request: HttpRequest, status: int = 200, **context: object) -> HttpResponse:
    page = {
        "models": model_list_usable(user=request.user, action="chat"),
        "shares": sharing.share_list(user=request.user),
        **context,
    }
    return render(request, "chat/library/data.html", page, status=status)
