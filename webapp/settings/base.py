"""Settings shared by every environment; every knob comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Known to everyone who can read this repository: allowed with DEBUG on only (dev.py).
DEVELOPMENT_KEY = "insecure-development-key-change-me"
SECRET_KEY = env("SECRET_KEY", default=DEVELOPMENT_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_NAME = env("SITE_NAME", default="Gatehouse")
# The site's address as people reach it: links in mail sent outside a request (reminders).
SITE_URL = env("SITE_URL", default="http://localhost:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "allauth",
    "allauth.account",
    "channels",
    "webapp.core",
    "webapp.accounts",
    "webapp.catalog",
    "webapp.access",
    "webapp.weights",
    "webapp.generations",
    "webapp.chat",
    "webapp.arena",
    "webapp.playground",
    "webapp.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "webapp.core.headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "webapp.core.context_processors.site",
                "webapp.chat.context_processors.sidebar",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/gatehouse"),
}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Under ASGI each request runs its database work in a fresh thread, so kept
# connections pile up: PostgreSQL gets a pool per process, others no reuse.
DATABASES["default"]["CONN_MAX_AGE"] = 0
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Django's backend with a pool that checks a connection it lends without a round
    # trip (webapp/core/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "webapp.core.postgresql"
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": 2,
            "max_size": env.int("DATABASE_POOL_SIZE", default=32),
            "timeout": 30,
        }
    }
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The one-command run's embedded database: WAL lets the web process and the
    # worker write at once; IMMEDIATE transactions wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")


def channel_layer_host(url: str) -> dict:
    """The layer's Redis, whose dead connections (after a restart) are replaced on use."""
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError, TimeoutError

    return {
        "address": url,
        "socket_connect_timeout": 2,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 10,
    }


CHANNEL_LAYERS = {
    "default": {
        # channels-redis' pub/sub layer: no per-channel capacity to overflow, so no
        # token frame is dropped silently under load (see docs/decisions.md); its
        # receiver wakes on a subscribe instead of polling (inference/relay/layer.py).
        "BACKEND": "inference.relay.layer.PubSubChannelLayer",
        "CONFIG": {
            "hosts": [channel_layer_host(REDIS_URL)],
            "prefix": env("CHANNEL_PREFIX", default="gatehouse"),
        },
    },
}

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "gatehouse",
    }
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "chat:home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = f"[{SITE_NAME}] "

DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Gatehouse <noreply@localhost>")
# EMAIL_URL, e.g. smtp+tls://user:password@mail.example.org:587 (django-environ).
vars().update(env.email("EMAIL_URL", default="consolemail://"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "weights": {
        "BACKEND": env(
            "WEIGHTS_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
        ),
        "OPTIONS": env.json(
            "WEIGHTS_STORAGE_OPTIONS",
            default={"location": env("WEIGHTS_ROOT", default=str(BASE_DIR / "var" / "weights"))},
        ),
    },
}
# Weight files: signed links, how files leave the process, and how they are read.
WEIGHTS = {
    "LINK_MAX_AGE": env.int("WEIGHTS_LINK_MAX_AGE", default=24 * 3600),
    # stream (from the process), accel (nginx X-Accel-Redirect), presigned (the storage's URL)
    "DELIVERY": env("WEIGHTS_DELIVERY", default="stream"),
    "ACCEL_PREFIX": env("WEIGHTS_ACCEL_PREFIX", default="/_weights/"),
    "PRESIGNED_MAX_AGE": env.int("WEIGHTS_PRESIGNED_MAX_AGE", default=300),
    "CHUNK_SIZE": env.int("WEIGHTS_CHUNK_SIZE", default=1024 * 1024),
}

# Celery: generation tasks are never redelivered (not idempotent: other text,
# double GPU cost); a lost one is marked interrupted by the reaper instead.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Kombu's Redis transport "emulates acks" by keeping every delivered message in Redis
# until it is acked, to deliver it again later: two more Redis round trips per task in
# the worker's one consumer thread, for a redelivery generation tasks never want (a
# prefetched task a dead worker took is marked interrupted by the reaper after
# GENERATION_QUEUED_TIMEOUT, like every admitted reply nobody claimed).
CELERY_BROKER_TRANSPORT_OPTIONS = {"ack_emulation": env.bool("CELERY_ACK_EMULATION", default=False)}
CELERY_TASK_DEFAULT_QUEUE = "gatehouse"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The reaper runs in beat's own process (webapp/scheduler.py): it must not need the
# worker whose generations it reaps.
CELERY_BEAT_SCHEDULER = "webapp.scheduler:Scheduler"
CELERY_BEAT_SCHEDULE = {
    "reap-lost-generations": {
        "task": "inference.tasks.reap_generations",
        "schedule": timedelta(seconds=env.float("REAPER_INTERVAL", default=15)),
        "options": {"in_beat": True},
    },
    "probe-endpoints": {
        "task": "webapp.generations.tasks.probe_endpoints",
        "schedule": timedelta(seconds=env.float("ENDPOINT_PROBE_INTERVAL", default=10)),
        "options": {"in_beat": True},
    },
    # In beat too: an expiry must close sockets on time even with no worker running.
    "access-expire-grants": {
        "task": "access.expire_grants",
        "schedule": timedelta(seconds=env.float("ACCESS_EXPIRY_SWEEP_INTERVAL", default=60.0)),
        "options": {"in_beat": True},
    },
    # Mail can wait for a worker (an SMTP server may be slow).
    "access-notify-expiring": {
        "task": "access.notify_expiring",
        "schedule": timedelta(hours=1),
    },
    "access-send-digests": {
        "task": "access.send_digests",
        "schedule": crontab(minute=0, hour=env.int("ACCESS_DIGEST_HOUR", default=8)),
    },
    "purge-deleted-conversations": {
        "task": "webapp.chat.tasks.purge_deleted_conversations",
        "schedule": timedelta(seconds=env.float("CHAT_PURGE_INTERVAL", default=60)),
    },
    # Skips saving when no vote changed since the last leaderboard.
    "arena-leaderboard": {
        "task": "arena.leaderboard_compute",
        "schedule": timedelta(seconds=env.float("ARENA_LEADERBOARD_INTERVAL", default=600)),
    },
}

# Generation knobs (seconds unless named otherwise).
# Per user (staff have none): replies running at once, replies started per minute, tokens
# (prompt and reply) per UTC day on each model (0: no budget), and chat sockets open at once.
# GROUPS raises them for members of a group, e.g. {"researchers": {"CONCURRENT": 8}};
# MODELS sets a model's own daily budget, at the top level or in a group:
# {"llama-70b": {"TOKENS_PER_DAY": 50000}}. Both also come as JSON from the environment.
GENERATION_LIMITS: dict = {
    "CONCURRENT": env.int("GENERATION_LIMIT_CONCURRENT", default=2),
    "PER_MINUTE": env.int("GENERATION_LIMIT_PER_MINUTE", default=20),
    "TOKENS_PER_DAY": env.int("GENERATION_LIMIT_TOKENS_PER_DAY", default=500_000),
    "SOCKETS": env.int("GENERATION_LIMIT_SOCKETS", default=20),
    "GROUPS": env.json("GENERATION_LIMIT_GROUPS", default={}),
    "MODELS": env.json("GENERATION_LIMIT_MODELS", default={}),
}
# Seconds an open chat socket counts towards its user's SOCKETS without its web process
# renewing it: the sockets of a process that died stop counting after this.
CHAT_SOCKET_LEASE = env.float("CHAT_SOCKET_LEASE", default=60.0)

# Freeze the objects of a started web server or worker out of the garbage collector's
# full collections (webapp/core/heap.py).
GC_FREEZE = env.bool("GC_FREEZE", default=True)

GENERATION = {
    "FIRST_TOKEN_TIMEOUT": env.float("GENERATION_FIRST_TOKEN_TIMEOUT", default=120.0),
    "IDLE_TIMEOUT": env.float("GENERATION_IDLE_TIMEOUT", default=60.0),
    "CONNECT_TIMEOUT": env.float("GENERATION_CONNECT_TIMEOUT", default=5.0),
    "MAX_DURATION": env.float("GENERATION_MAX_DURATION", default=1800.0),
    "HEARTBEAT_INTERVAL": env.float("GENERATION_HEARTBEAT_INTERVAL", default=5.0),
    "HEARTBEAT_TTL": env.float("GENERATION_HEARTBEAT_TTL", default=30.0),
    "QUEUED_TIMEOUT": env.float("GENERATION_QUEUED_TIMEOUT", default=600.0),
    "LOG_TTL": env.int("GENERATION_LOG_TTL", default=3600),
    "FLUSH_INTERVAL": env.float("GENERATION_FLUSH_INTERVAL", default=0.1),
    "FLUSH_TOKENS": env.int("GENERATION_FLUSH_TOKENS", default=16),
    # A worker told to stop lets running generations go on this long, then cuts them off.
    "SHUTDOWN_GRACE": env.float("GENERATION_SHUTDOWN_GRACE", default=30.0),
    # How long a finished generation's save is retried while PostgreSQL is away.
    "SAVE_PATIENCE": env.float("GENERATION_SAVE_PATIENCE", default=300.0),
    # The fair queue: replies an endpoint serves at once when neither staff nor the
    # server say; how long a reply may wait for a slot; a 429's backoff and attempts.
    "ENDPOINT_CAPACITY": env.int("GENERATION_ENDPOINT_CAPACITY", default=16),
    "QUEUE_TIMEOUT": env.float("GENERATION_QUEUE_TIMEOUT", default=900.0),
    "RETRY_BACKOFF": env.float("GENERATION_RETRY_BACKOFF", default=1.0),
    "RETRY_BACKOFF_MAX": env.float("GENERATION_RETRY_BACKOFF_MAX", default=30.0),
    "RETRY_ATTEMPTS": env.int("GENERATION_RETRY_ATTEMPTS", default=5),
}
# Gated access: days before a grant ends that its holder is reminded (the beat schedule
# above has the digest hour and the expiry sweep's interval).
ACCESS = {"EXPIRY_NOTICE_DAYS": env.int("ACCESS_EXPIRY_NOTICE_DAYS", default=14)}
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=32000)
# Threads per web process that run the chat sockets' database work (each holds a pooled
# connection while it works: keep it below DATABASE_POOL_SIZE).
CHAT_DATABASE_THREADS = env.int("CHAT_DATABASE_THREADS", default=8)
# The sidebar: conversations per page, and the seconds a delete can be undone before purging.
CHAT_SIDEBAR_PAGE = env.int("CHAT_SIDEBAR_PAGE", default=30)
CHAT_UNDO_SECONDS = env.int("CHAT_UNDO_SECONDS", default=8)
# Imports larger than this (bytes) are refused before they are read.
CHAT_IMPORT_MAX_BYTES = env.int("CHAT_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
# Seconds a model endpoint's health probe result serves /readyz before it is refreshed.
READYZ_PROBE_INTERVAL = env.float("READYZ_PROBE_INTERVAL", default=10.0)
# Bootstrap rounds behind each leaderboard's 95% intervals (the beat schedule above has the
# interval between recomputations).
ARENA_BOOTSTRAP_ROUNDS = env.int("ARENA_BOOTSTRAP_ROUNDS", default=100)
# Blind battles: votes a user may have counted per 24 hours (more are kept, not counted),
# the age an account must reach before its votes count, and the turns of one battle.
ARENA_DAILY_VOTES = env.int("ARENA_DAILY_VOTES", default=100)
ARENA_MIN_ACCOUNT_AGE_HOURS = env.float("ARENA_MIN_ACCOUNT_AGE_HOURS", default=24.0)
ARENA_MAX_TURNS = env.int("ARENA_MAX_TURNS", default=8)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
