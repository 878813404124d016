"""Development: debug on, mail to the console, the published development key allowed
(only while DEBUG is on)."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEVELOPMENT_KEY, SECRET_KEY, env

DEBUG = env.bool("DEBUG", default=True)
if not DEBUG and SECRET_KEY == DEVELOPMENT_KEY:
    # With the published key anyone can sign sessions, email confirmations and reset links.
    raise ImproperlyConfigured(
        "DEBUG is off but SECRET_KEY is the development key: set SECRET_KEY to a secret value."
    )
