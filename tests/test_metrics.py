"""`GET /metrics`: scraped and parsed by prometheus-client's own parser, the counters moving with real traffic."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import (
    ADMIN,
    ROOT,
    RedisTarget,
    Server,
    Shop,
    customer_socket,
    driver_socket,
    fix,
    now_ms,
    server_env,
    wait,
)
from receivers import free_port


async def _scrape(
    http: httpx.AsyncClient, server: Server, token: str = ADMIN
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await http.get(server.url + "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def test_metrics_need_the_token(http: httpx.AsyncClient, server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}):
        r = await http.get(server.url + "/metrics", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text


async def test_fixes_acks_sockets_and_the_outbox_are_counted(
    http: httpx.AsyncClient, server: Server, shop: Shop
) -> None:
    before = await _scrape(http, server)
    order = await shop.live_order("M1", "md1")
    watcher = await customer_socket(server, order)
    sock = await driver_socket(server, shop.drivers["md1"])
    try:
        during = await _scrape(http, server)
        assert during[("livemap_sockets", (("kind", "driver"),))] >= 1
        assert during[("livemap_sockets", (("kind", "customer"),))] >= 1
        t = now_ms()
        await sock.send(json.dumps(fix(0.1, t, seq=1)))
        assert (await sock.recv())["accepted"] == 1
        await sock.send(json.dumps(fix(0.05, t - 1000, seq=2)))  # older than the newest stored: ignored
        assert (await sock.recv())["ignored"] == 1
        await sock.send(json.dumps([fix(0.2, t + 1000), {"lat": 91, "lon": 0, "ts": t}]))  # one good, one bad
        assert len((await sock.recv())["rejected"]) == 1
        await sock.send("{not json")
        assert (await sock.recv())["code"] == "invalid_json"
    finally:
        await sock.close()
        await watcher.close()
    after = await _scrape(http, server)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    assert grew("livemap_fixes_total", (("outcome", "accepted"),)) >= 2
    assert grew("livemap_fixes_total", (("outcome", "ignored"),)) >= 1
    assert grew("livemap_fixes_total", (("outcome", "rejected"),)) >= 1
    assert grew("livemap_driver_errors_total", (("code", "invalid_json"),)) >= 1
    assert grew("livemap_ack_seconds_count") >= 4 and grew("livemap_ack_seconds_sum") > 0
    assert grew("livemap_redis_seconds_count") >= 3
    # Shipping the order wrote its notices to the outbox (no worker here): the depth is read from Redis.
    assert after[("livemap_outbox_depth", ())] >= 1
    assert ("livemap_dead_letters", ()) in after


def test_json_logs_are_one_object_a_line_with_secrets_redacted() -> None:
    import logging

    from livemap.logs import JsonLines, RedactSecrets

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '"GET %s"', ("/ws/driver?token=abc",), None)
    RedactSecrets().filter(record)
    line = json.loads(JsonLines().format(record))
    assert line["level"] == "info" and line["logger"] == "uvicorn.access" and line["ts"].endswith("Z")
    assert line["message"] == '"GET /ws/driver?token=[redacted]"'


def test_a_server_with_json_logs_writes_json_lines(redis_target: RedisTarget, tmp_path: Path) -> None:
    srv = Server(server_env(redis_target, tmp_path, LIVEMAP_JSON_LOGS="1"), "json")
    try:
        httpx.get(srv.url + "/healthz?token=secret-value")
        srv.wait_for_output("/healthz", 10)
    finally:
        srv.stop()
    logged = [json.loads(x) for x in srv.output if x.startswith("{")]
    assert any(x["logger"] == "livemap.app" or x["message"].startswith("livemap ready") for x in logged), srv.output
    access = [x for x in logged if x["logger"] == "uvicorn.access"]
    assert access and "token=[redacted]" in access[0]["message"] and "secret-value" not in "".join(srv.output)


def test_a_worker_serves_its_metrics_on_loopback(redis_target: RedisTarget, tmp_path: Path) -> None:
    port = free_port()
    env = server_env(redis_target, tmp_path)
    worker = subprocess.Popen(
        [sys.executable, "-m", "livemap", "worker", "--metrics-port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + wait(20)
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/metrics")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and worker.poll() is None, "the worker's metrics never answered"
                time.sleep(0.1)
        names = {f.name for f in text_string_to_metric_families(r.text)}
        assert {"livemap_notify_deliveries", "livemap_fixes"} <= names
    finally:
        worker.terminate()
        worker.communicate(timeout=wait(15))
