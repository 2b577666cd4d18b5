"""One-machine development and `make run`: embedded SQLite + file-system broker by default."""

from genai_site.settings.base import *  # noqa: F403
from genai_site.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Alert e-mails (the demo rules send some) land as files in var/mail/, readable without a mail server.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
