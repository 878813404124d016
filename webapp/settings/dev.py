"""Development: debug on, mail to the console, a throwaway secret key allowed."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
