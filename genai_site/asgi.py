"""The ASGI entry point (uvicorn workers under gunicorn: ``make run``, the image, deploy/).

Django runs the (sync) views and middleware in a thread of the request's own executor, which it
keeps until the request ends; for a stream that is its whole life. ``StreamingASGIHandler`` gives
that thread back (closing its database connection) once the view has returned a streaming
response: the body is an async generator on the event loop (``generation.apis.streaming``), so an
open stream holds no thread.
"""

import asyncio
import os

from asgiref.sync import SyncToAsync
from django.core.handlers.asgi import ASGIHandler

# Production unless told otherwise: a server started without DJANGO_SETTINGS_MODULE must not run
# with DEBUG on (make run and the tests set local / test).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.production")


class StreamingASGIHandler(ASGIHandler):
    async def run_get_response(self, request):
        # Django cancels this when the client disconnects, but a sync view runs on to its end in
        # its thread, and its response would never be closed: close it once it exists (a
        # stream's close releases its slot and cancels the job nobody waits for any more).
        getting = asyncio.ensure_future(super().run_get_response(request))
        try:
            return await asyncio.shield(getting)
        except asyncio.CancelledError:
            getting.add_done_callback(_response_close_when_done)
            raise

    async def send_response(self, response, send):
        if response.streaming:
            await _request_thread_release()
        await super().send_response(response, send)


def _response_close_when_done(getting: asyncio.Future) -> None:
    if getting.cancelled() or getting.exception() is not None:
        return
    asyncio.get_running_loop().run_in_executor(None, getting.result().close)


async def _request_thread_release() -> None:
    """End the request's thread-sensitive executor (the one its sync views ran on); later sync
    calls of the request (closing the response) get a new one, ended with the request."""
    from django.db import connections

    context = SyncToAsync.thread_sensitive_context.get(None)
    executor = SyncToAsync.context_to_thread_executor.pop(context, None) if context is not None else None
    if executor is None:
        return
    await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
    executor.shutdown(wait=False)


def _application() -> StreamingASGIHandler:
    import django

    django.setup(set_prefix=False)
    return StreamingASGIHandler()


application = _application()
