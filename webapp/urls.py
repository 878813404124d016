from __future__ import annotations

from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path

from webapp import health

# The admin signs in through allauth's login: its rate limits, one place to sign in.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/tokens/", include("webapp.accounts.tokens.urls")),
    path("accounts/", include("webapp.accounts.urls")),
    path("accounts/", include("allauth.urls")),
    path("models/", include("webapp.catalog.urls")),
    path("generations/", include("webapp.generations.urls")),
    path("weights/", include("webapp.weights.urls")),
    path("v1/", include("webapp.api.urls")),
    path("compare/", include("webapp.arena.compare.urls")),
    path("arena/", include("webapp.arena.battles.urls")),
    path("leaderboard/", include("webapp.arena.battles.leaderboard_urls")),
    path("playground/", include("webapp.playground.urls")),
    path("", include("webapp.access.urls")),
    path("", include("webapp.weights.hub_urls")),
    path("", include("webapp.chat.urls")),
]
