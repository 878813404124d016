"""A generation's record as JSON for its owner: the reply's "details" view."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from webapp.core.errors import NotFound, PermissionDenied

from .selectors import generation_details, generation_get


@require_GET
@never_cache
@login_required
def generation_detail(request: HttpRequest, generation_id: str) -> JsonResponse:
    try:
        generation = generation_get(user=request.user, generation_id=generation_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    try:
        return JsonResponse(generation_details(generation))
    except PermissionDenied as exc:
        return JsonResponse({"error": exc.as_dict()}, status=403)
