"""The account's personal tokens page: list, create (the secret shown once), revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from webapp.core.errors import ApplicationError, NotFound

from . import selectors, services
from .forms import TokenForm


def _page(
    request: HttpRequest, form: TokenForm, status: int = 200, **extra: object
) -> HttpResponse:
    context = {
        "form": form,
        "tokens": selectors.token_list(user=request.user),
        "api_base": request.build_absolute_uri("/v1/"),
        **extra,
    }
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@never_cache
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request, TokenForm())


@login_required
@never_cache
@require_POST
def token_new(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            token, secret = services.token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
            )
        except ApplicationError as exc:
            form.add_error(None, exc.detail)
        else:
            # Rendered, not redirected: the secret is never stored, not even in the session.
            return _page(request, TokenForm(), created=token, secret=secret)
    return _page(request, form, status=400)


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    try:
        token = services.token_revoke(user=request.user, token_id=token_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    messages.success(request, f"The token “{token.name}” is revoked: it no longer works.")
    return redirect("accounts:tokens")
