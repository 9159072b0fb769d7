"""The notifications worker: turns outbox entries into webhooks, emails, SMS and shop write-backs, at least once.

One loop per worker: move due retries back into the stream, every so often take over entries a
dead worker left pending (``XAUTOCLAIM``), read new entries (``XREADGROUP``), deliver them (one
order's entries in order, different orders side by side), then ack each entry together with its
follow-ups (see ``outbox``). A channel that succeeded is marked done under the event's id before
the ack, so an entry delivered again after a crash skips it; a crash between sending and marking
sends it again, with the same event id for the receiver to recognise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import secrets
import signal
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import prometheus_client
import redis.asyncio as aioredis

from livemap import metrics, tasks
from livemap.domain.clock import now_ms
from livemap.domain.records import NotFound
from livemap.logs import log_config, redact
from livemap.notify import email as email_channel
from livemap.notify import links, shop, sms, webhook
from livemap.notify.base import DeliveryError, Notice
from livemap.notify.outbox import Entry, Outbox
from livemap.notify.policy import (
    CUSTOMER_CHANNELS,
    MOMENTARY,
    Route,
    backoff_s,
    channels_for,
    customer_reason_to_skip,
    event_key,
    language,
    quiet_until,
    tracking_url,
)
from livemap.notify.templates import render
from livemap.outbound.connect import guarded_client
from livemap.outbound.policy import OutboundPolicy
from livemap.settings import Settings
from livemap.storage.connection import open_db
from livemap.storage.db import Db
from livemap.storage.keys import Keys
from livemap.storage.repository import Repository
from livemap.storage.secretbox import SecretBox
from livemap.tasks import cancel

log = logging.getLogger("livemap.notify")

#: Entries read at once.
BATCH = 32
#: Longest XREADGROUP block, so retries that fall due and a stop request are noticed soon.
MAX_BLOCK_MS = 1000
#: An event first seen this long after it happened is old news (no worker ran meanwhile): it is dropped.
MAX_AGE_MS = 24 * 3600 * 1000
#: An entry whose event is not stored this long after the entry was written never will be: it is dropped.
NOTICE_WAIT_MS = 60_000
#: Pauses while waiting in place for an entry's event (it usually follows within one round trip).
_NOTICE_POLL_S = (0.0, 0.05, 0.1, 0.2, 0.4)

_Retry = tuple[int, dict[str, str]]


class Worker:
    """Consumes the outbox until stopped. Use as an async context manager (the CLI and the app's lifespan do)."""

    def __init__(self, store: Repository, settings: Settings, *, consumer: str | None = None) -> None:
        self.store, self.settings = store, settings
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.outbox = Outbox(store.redis, store.keys, self.consumer)
        # The worker has no request to take an origin from: links use LIVEMAP_PUBLIC_URL.
        self.base_url = settings.public_url or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
        self._http: httpx.AsyncClient | None = None
        #: Where stores' destinations may point (LIVEMAP_OUTBOUND_ALLOW parsed: a bad entry fails at start).
        self.policy = OutboundPolicy.parse(settings.outbound_allow)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._reading = False

    async def __aenter__(self) -> Worker:
        if not self.settings.public_url:
            log.warning("LIVEMAP_PUBLIC_URL is not set: tracking links in notifications point to %s", self.base_url)
        if self.settings.worker_claim_idle_ms < self.settings.worker_timeout_s * 1000:
            log.warning("LIVEMAP_WORKER_CLAIM_IDLE_MS is below the attempt timeout: slow deliveries may be sent twice")
        self._http = guarded_client(
            self.policy, self.settings.worker_timeout_s, headers={"User-Agent": "livemap-notify/1"}
        )
        self._task = asyncio.create_task(self._run(), name="livemap-notify")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stopping.set()
        task = self._task
        if task is not None and not task.done():
            if self._reading:
                await cancel(task)
            else:
                # Deliveries under way finish (each is bounded by the attempt timeout); unfinished ones
                # stay pending in the group and another worker takes them over.
                try:
                    await asyncio.wait_for(asyncio.shield(task), self.settings.worker_timeout_s + 2)
                except TimeoutError:
                    await cancel(task)
        if self._http is not None:
            await self._http.aclose()

    # --- the loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        claim_every = min(30.0, max(0.1, self.settings.worker_claim_idle_ms / 2000))
        next_claim = 0.0
        ready, failing = False, False
        while not self._stopping.is_set():
            try:
                if not ready:
                    await self.outbox.ensure_group()
                    ready = True
                    log.info("notifications worker %s consuming %s", self.consumer, self.store.keys.outbox())
                await self.outbox.promote()
                if loop.time() >= next_claim:
                    next_claim = loop.time() + claim_every
                    await self._process(await self._claim())
                block = MAX_BLOCK_MS
                due = await self.outbox.next_due()
                if due is not None:
                    block = min(block, due - now_ms())
                block = min(block, int((next_claim - loop.time()) * 1000))
                self._reading = True
                try:
                    entries = await self.outbox.read(BATCH, block)
                finally:
                    self._reading = False
                await self._process(entries)
                if failing:
                    log.info("notifications worker: Redis is back")
                    failing = False
            except (aioredis.RedisError, OSError) as exc:
                if not failing:  # once per outage, not once a second
                    log.warning("notifications worker: Redis unavailable (%s); retrying every second", exc)
                    failing = True
                await asyncio.sleep(1)
            except Exception:  # a bug must not silently stop the worker while its process lives on
                log.exception("notifications worker: unexpected error; retrying in 1 s")
                await asyncio.sleep(1)

    async def _claim(self) -> list[Entry]:
        """Entries left pending by a worker that died; one that keeps killing its workers is dead-lettered."""
        # The loop claims only between batches, so none of the claimed entries is under way here.
        out = []
        for entry in await self.outbox.claim(self.settings.worker_claim_idle_ms, BATCH):
            times = await self.outbox.times_delivered(entry.id)
            if times > self.settings.worker_max_tries:
                error = f"taken over {times - 1} times: its workers keep dying"
                log.error("outbox entry %s (event %s): %s; dead-lettered", entry.id, entry.event_id, error)
                dead = entry.follow_up(entry.channel or "*", entry.attempt, error) | {"failed_at": str(now_ms())}
                await self.outbox.finish(entry, [], [dead])
            else:
                log.info("took over outbox entry %s (event %s) from a stopped worker", entry.id, entry.event_id)
                out.append(entry)
        return out

    async def _process(self, entries: Iterable[Entry]) -> None:
        """One order's entries one after another (its customer reads them in order), orders side by side."""
        by_order: dict[str, list[Entry]] = {}
        for entry in entries:
            by_order.setdefault(entry.fields.get("tracking_id", ""), []).append(entry)

        async def in_order(batch: list[Entry]) -> None:
            for entry in batch:
                await self._handle(entry)

        await asyncio.gather(*(in_order(batch) for batch in by_order.values()))

    async def _handle(self, entry: Entry) -> None:
        try:
            retries, dead = await self._deliver(entry)
            if not await self.outbox.finish(entry, retries, dead):
                log.info("outbox entry %s was finished by another worker", entry.id)
        except Exception:  # a bug or Redis away: leave it pending; it is claimed again after the idle time
            log.exception("outbox entry %s (event %s) failed; it stays pending", entry.id, entry.event_id)

    # --- one entry -------------------------------------------------------------------------------

    async def _deliver(self, entry: Entry) -> tuple[list[_Retry], list[dict[str, str]]]:
        """Try every channel the entry is for; returns (retries to schedule, dead letters)."""
        sid, tid = entry.fields.get("store", ""), entry.fields.get("tracking_id", "")
        if entry.channel is None and now_ms() - entry.created_at > MAX_AGE_MS:
            log.warning("outbox entry %s dropped: the event is more than a day old", entry.id)
            return [], []
        if entry.notice and not await self._stored(tid, entry.notice):
            age = now_ms() - entry.created_at
            if age < NOTICE_WAIT_MS:  # a slow writer: look again later, less and less often
                return [(now_ms() + max(1000, age), entry.recheck())], []
            log.warning("outbox entry %s dropped: its event was never stored", entry.id)
            return [], []
        try:
            data = msgspec.json.decode(entry.fields.get("data", ""), type=dict[str, Any])
            store = await self.store.settings(sid)
            order = await self.store.order(tid)
        except (NotFound, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("outbox entry %s dropped: %s", entry.id, exc)
            return [], []
        key = event_key(data)
        channels = channels_for(store, order, key)
        if entry.channel is not None:  # a retry: that channel only, if the store still wants it
            channels = [c for c in channels if c == entry.channel]
        if not channels:
            return [], []
        lang = language(order, store)
        notice = Notice(
            event_id=entry.event_id,
            key=key,
            kind=str(data.get("type", "")),
            created_at=entry.created_at,
            store_id=sid,
            store=store,
            order=order,
            data=data,
            lang=lang,
            tracking_url=tracking_url(self.base_url, order, self.store.tracking_token(order), lang),
            unsubscribe_email=links.link(self.base_url, self.store.box, order.tracking_id, "email"),
            unsubscribe_sms=links.link(self.base_url, self.store.box, order.tracking_id, "sms"),
            attempt=entry.attempt + 1,
        )
        results = await asyncio.gather(*(self._channel(notice, entry, channel) for channel in channels))
        retries = [r for r, _ in results if r is not None]
        dead = [d for _, d in results if d is not None]
        return retries, dead

    async def _stored(self, tid: str, token: str) -> bool:
        """Whether the order stored the event an entry announces (written just after the entry)."""
        for pause in _NOTICE_POLL_S:
            await asyncio.sleep(pause)
            if await self.store.has_notice(tid, token):
                return True
        return False

    async def _channel(
        self, notice: Notice, entry: Entry, channel: Route
    ) -> tuple[_Retry | None, dict[str, str] | None]:
        """Deliver on one channel: (retry, None), (None, dead letter) or (None, None) when done or skipped."""
        what = f"{notice.key} of order {notice.order['id']} (store {notice.store_id}) by {channel}"
        if await self.outbox.is_done(notice.event_id, channel):
            log.info("%s: already delivered (event %s)", what, notice.event_id)
            return None, None
        if channel in CUSTOMER_CHANNELS:
            reason = customer_reason_to_skip(notice.order, channel, notice.data)
            if reason:
                log.debug("%s: skipped, %s", what, reason)
                return None, None
            store = notice.store
            until = quiet_until(store.notifications.quiet_hours, store.timezone, now_ms())
            if until is not None:
                if notice.kind in MOMENTARY:
                    log.info("%s: dropped, quiet hours", what)
                    return None, None
                log.info("%s: held until quiet hours end", what)
                return (until, entry.follow_up(channel, entry.attempt)), None
        try:
            async with asyncio.timeout(self.settings.worker_timeout_s):
                await self._send(notice, channel)
        except DeliveryError as exc:
            error, permanent = redact(str(exc)), exc.permanent
        except TimeoutError:
            error, permanent = f"no answer within {self.settings.worker_timeout_s:g} s", False
        except Exception as exc:  # a bug must not loop forever: it counts as a failed try
            log.exception("%s: unexpected error", what)
            error, permanent = redact(f"{type(exc).__name__}: {exc}"), False
        else:
            await self.outbox.mark_done(notice.event_id, channel)
            metrics.DELIVERIES.labels(channel, "sent").inc()
            log.info("%s: delivered (event %s, attempt %d)", what, notice.event_id, notice.attempt)
            return None, None
        tries = entry.attempt + 1
        if permanent or tries >= self.settings.worker_max_tries:
            metrics.DELIVERIES.labels(channel, "dead").inc()
            log.warning("%s: failed for good after %d tries (%s); dead-lettered", what, tries, error)
            return None, entry.follow_up(channel, tries, error) | {"failed_at": str(now_ms())}
        metrics.DELIVERIES.labels(channel, "failed").inc()
        wait_s = backoff_s(tries, self.settings)
        log.info("%s: try %d failed (%s); next in %.1f s", what, tries, error, wait_s)
        return (now_ms() + int(wait_s * 1000), entry.follow_up(channel, tries, error)), None

    async def _send(self, notice: Notice, channel: Route) -> None:
        assert self._http is not None
        config = notice.store.notifications
        if channel == "webhook":
            await webhook.send(self._http, notice, config.webhook)
            return
        if channel == "shop":
            await shop.send(self._http, notice)
            return
        words = render(notice)
        customer = notice.order.customer
        if channel == "email" and customer.email:
            await email_channel.send(notice, words, config.email, customer.email, self.policy)
        elif channel == "sms" and customer.phone:
            await sms.send(self._http, notice, words.sms, config.sms, customer.phone)


async def run(settings: Settings) -> None:
    """`livemap worker`: consume the outbox until SIGINT or SIGTERM, then finish what is under way."""
    # Without LIVEMAP_REDIS_URL: the embedded Redis that `livemap serve` runs in the same data dir.
    url = settings.redis_url or f"unix://{(Path(settings.data_dir) / 'redis.sock').resolve()}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    db = await _connect(url, stop)
    if db is None:
        return
    try:
        box = SecretBox.from_settings(str(settings.secret_key), Path(settings.data_dir), bool(settings.redis_url))
        store = Repository(db, Keys(settings.key_prefix), stream_maxlen=settings.stream_maxlen, box=box)
        async with Worker(store, settings) as worker:
            print(f"livemap worker started (consumer {worker.consumer})", flush=True)
            await stop.wait()
    finally:
        await db.client.aclose()


async def _connect(url: str, stop: asyncio.Event) -> Db | None:
    """Redis at `url`, waiting for it (the server may start after the worker); None if stopped first."""
    while not stop.is_set():
        try:
            return await open_db(url)
        except (aioredis.RedisError, OSError) as exc:
            log.warning("notifications worker: Redis unavailable (%s); retrying every second", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1)
    return None


def main(settings: Settings, log_level: str = "info", metrics_port: int | None = None) -> None:
    """Entry point of `livemap worker`; ``metrics_port``: serve `/metrics` on 127.0.0.1 there (no token)."""
    logging.config.dictConfig(log_config(log_level, settings.json_logs))
    if metrics_port is not None:
        # A thread of prometheus-client's own, on loopback only: the scraper runs next to the worker.
        prometheus_client.start_http_server(metrics_port, addr="127.0.0.1")
        log.info("metrics on http://127.0.0.1:%d/metrics", metrics_port)
    tasks.run(run(settings))
