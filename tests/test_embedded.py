"""`livemap serve` on its embedded Redis: starts, persists, stops without orphans."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from conftest import ROOT, Server, gone, redis_pids, wait


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_")}
    return env | {"LIVEMAP_DATA_DIR": str(data_dir), "LIVEMAP_ADMIN_TOKEN": "adm"}


def test_embedded_redis_persists_and_stops_cleanly(tmp_path: Path) -> None:
    """Data survives a restart (AOF), Ctrl-C leaves no redis-server behind, a second server is told to share."""
    data = tmp_path / "var"
    first = Server(embedded_env(data), "embedded")
    second = None
    try:
        pids = redis_pids(data)
        assert len(pids) == 1
        r = httpx.post(f"{first.url}/api/stores", json={"name": "Kept"}, headers={"Authorization": "Bearer adm"})
        key = r.json()["api_key"]
        # A second server on the same data dir refuses to start a second redis-server on it.
        try:
            second = Server(embedded_env(data), "second")
            raise AssertionError("a second embedded server started on the same data dir")
        except RuntimeError as exc:
            assert "LIVEMAP_REDIS_URL=unix://" in str(exc)
    finally:
        first.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        first.proc.wait(wait(15))
        first.stop()
    assert first.proc.returncode == 0
    assert gone(pids, 10)
    assert (data / "appendonly.aof").stat().st_size > 0
    again = Server(embedded_env(data), "again")
    try:
        r = httpx.get(f"{again.url}/api/store", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200 and r.json()["name"] == "Kept"
    finally:
        again.stop()
    assert second is None


def test_redis_dies_with_a_killed_server_and_readiness_reports_it(tmp_path: Path) -> None:
    """/readyz turns 503 when Redis is gone; SIGKILL of livemap takes its redis-server down too."""
    data = tmp_path / "var"
    srv = Server(embedded_env(data), "killed")
    try:
        assert httpx.get(f"{srv.url}/readyz").status_code == 200
        (pid,) = redis_pids(data)
        os.kill(pid, signal.SIGSTOP)  # frozen, not dead: readiness must not hang forever either
        os.kill(pid, signal.SIGKILL)
        assert gone([pid], 10)
        r = httpx.get(f"{srv.url}/readyz", timeout=wait(15))
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert httpx.get(f"{srv.url}/healthz").status_code == 200
    finally:
        srv.stop()
    srv2 = Server(embedded_env(data), "killed2")
    pids = redis_pids(data)
    srv2.proc.kill()
    srv2.proc.wait()
    srv2.stop()
    assert gone(pids, 10), "redis-server outlived a SIGKILLed livemap"
    assert ROOT.exists()
