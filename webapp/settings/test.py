"""Tests: real PostgreSQL and Redis (a database index of their own), short timeouts."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import CHANNEL_LAYERS, GENERATION, STORAGES, channel_layer_host, env

SECRET_KEY = "test-settings-key-for-the-test-suite-only"  # noqa: S105 - tests only
REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/9")
CHANNEL_LAYERS["default"]["CONFIG"] = {
    "hosts": [channel_layer_host(REDIS_URL)],
    "prefix": "gatehouse-test",
}
CELERY_BROKER_URL = REDIS_URL
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# A live server in a subprocess writes mail to files that browser tests read.
EMAIL_BACKEND = env("TEST_EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
EMAIL_FILE_PATH = env("TEST_EMAIL_FILE_PATH", default=None)
WHITENOISE_USE_FINDERS = True
SITE_URL = "http://testserver"
READYZ_PROBE_INTERVAL = 0.2
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "weights": STORAGES["weights"],
}
GENERATION.update(
    # The bundled model on a busy 2-core machine can take over a second to its first token.
    FIRST_TOKEN_TIMEOUT=env.float("GENERATION_FIRST_TOKEN_TIMEOUT", default=3.0),
    IDLE_TIMEOUT=env.float("GENERATION_IDLE_TIMEOUT", default=1.5),
    HEARTBEAT_INTERVAL=0.5,
    HEARTBEAT_TTL=2.0,
    RETRY_BACKOFF=env.float("GENERATION_RETRY_BACKOFF", default=0.2),
    RETRY_ATTEMPTS=env.int("GENERATION_RETRY_ATTEMPTS", default=3),
)
