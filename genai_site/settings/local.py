"""One-machine development and `make run`: embedded SQLite + file-system broker by default."""

from genai_site.settings.base import *  # noqa: F403
from genai_site.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
