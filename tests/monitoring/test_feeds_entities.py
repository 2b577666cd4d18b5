"""RSS/Atom polling (a local feed file and a local HTTP server) and entity extraction."""

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from monitoring.entities import cashtags_parse, entities_extract
from monitoring.models import Feed, NewsItem, WatchedEntity
from monitoring.services.feeds import feed_poll, feeds_poll

pytestmark = pytest.mark.django_db
DATA = Path(__file__).parent / "data"


def test_cashtags_and_watch_list_names_and_aliases():
    assert cashtags_parse("$aapl up, $BRK.B flat, costs $5 and $3.2bn; $TSLA $AAPL") == ["AAPL", "BRK.B", "TSLA"]
    WatchedEntity.objects.create(key="MSFT", name="Microsoft", aliases=["Redmond giant"])
    WatchedEntity.objects.create(key="FED", name="Federal Reserve", aliases=["the Fed"])
    assert entities_extract("The Redmond giant and $NVDA rallied while the Fed held rates") == ["NVDA", "MSFT", "FED"]
    assert entities_extract("Microsofts are not Microsoft-ish") == ["MSFT"]  # whole words only: "Microsoft-ish" counts
    WatchedEntity.objects.filter(key="FED").update(active=False)
    assert entities_extract("the Fed held rates", extra=["spx"]) == ["SPX"]


def test_feed_from_a_local_file_is_ingested_once(no_broker):
    WatchedEntity.objects.create(key="MSFT", name="Microsoft")
    feed = Feed.objects.create(url=str(DATA / "feed.xml"), source="wire")
    report = feed_poll(feed=feed)
    assert report["created"] == 2 and report["duplicates"] == 1
    aapl = NewsItem.objects.get(url="https://wire.example/aapl-slide")
    assert aapl.entities == ["AAPL"] and aapl.source == "wire"
    assert aapl.text.startswith("$AAPL shares slide") and "<p>" not in aapl.text
    assert aapl.published_at.isoformat() == "2026-11-30T08:00:00+00:00"
    assert NewsItem.objects.get(url="https://wire.example/msft-dividend").entities == ["MSFT"]
    assert feeds_poll()["created"] == 0  # polled again: nothing new
    feed.refresh_from_db()
    assert feed.items_created == 2 and feed.last_polled_at is not None and feed.last_error == ""


def test_feed_served_over_http_and_a_broken_feed_is_recorded(no_broker):
    handler = partial(SimpleHTTPRequestHandler, directory=str(DATA))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        Feed.objects.create(url=f"http://127.0.0.1:{server.server_address[1]}/feed.xml", source="http-wire")
        Feed.objects.create(url=f"http://127.0.0.1:{server.server_address[1]}/missing.xml", source="gone")
        report = feeds_poll()
    finally:
        server.shutdown()
        server.server_close()
    assert report["created"] == 2
    assert Feed.objects.get(source="gone").last_error
    assert set(NewsItem.objects.values_list("source", flat=True)) == {"http-wire"}
