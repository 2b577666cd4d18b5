"""Rate limits that keep serving when their cache is away.

The throttles count requests in the default cache (Redis in production). DRF's throttles let a
cache error escape, so every authenticated call answered 500 while Redis was down. These count in
a process-local memory cache for as long as the shared one fails: limits still hold per web
process, and requests are served.
"""

import logging
import time

from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

logger = logging.getLogger(__name__)

try:  # the errors of the Redis cache backend (redis-py); other backends raise OSError subclasses
    from redis.exceptions import RedisError as _RedisError
except ImportError:  # pragma: no cover - redis is a dependency
    _RedisError = OSError

CACHE_ERRORS = (_RedisError, ConnectionError, TimeoutError, OSError)

_LOCAL = LocMemCache("genai-throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
_WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


class CacheFallbackMixin:
    def allow_request(self, request, view) -> bool:
        global _last_warning
        try:
            return super().allow_request(request, view)
        except CACHE_ERRORS as exc:
            if time.monotonic() - _last_warning > _WARN_EVERY_SECONDS:  # one line a minute, not per request
                _last_warning = time.monotonic()
                logger.warning("throttle cache unreachable (%s): counting in this process's memory", exc)
            self.cache = _LOCAL
            return super().allow_request(request, view)


class UserThrottle(CacheFallbackMixin, UserRateThrottle):
    """Requests per user (GENAI_THROTTLE_USER)."""


class AnonThrottle(CacheFallbackMixin, AnonRateThrottle):
    """Requests per client address."""
