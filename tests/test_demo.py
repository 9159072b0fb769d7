"""`make run` (= `livemap demo`): the printed links work, drivers move, Ctrl-C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import ROOT, children, gone, redis_pids, wait


def test_demo_prints_links_whose_driver_moves_and_stops_cleanly(tmp_path: Path) -> None:
    """The demo prints a dispatcher URL and 3 tracking links; a link's driver moves on Helsinki's streets, on a route
    livemap made; SIGINT stops all of it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_")}
    env["LIVEMAP_DATA_DIR"] = str(tmp_path / "var")
    proc = subprocess.Popen(
        [sys.executable, "-m", "livemap", "demo", "--port", "0", "--drivers", "3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + wait(60)
        while time.monotonic() < deadline and not any("Snapshot API:" in x for x in lines):
            line = proc.stdout.readline()
            assert line, "demo exited early:\n" + "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert "Dispatcher:  http://127.0.0.1:" in text and "/dispatch" in text
        tracking = [x.split(": ", 1)[1].strip() for x in lines if x.strip().startswith("Track order")]
        assert len(tracking) == 3 and all("/track/" in t and "?t=" in t for t in tracking)
        snapshot_url = tracking[0].replace("/track/", "/api/track/")
        positions = []
        for _ in range(int(wait(30) / 0.5)):
            snap = httpx.get(snapshot_url).json()
            if snap["driver"] is not None:
                positions.append((snap["driver"]["lat"], snap["driver"]["lon"]))
            if len(set(positions)) >= 2:
                break
            time.sleep(0.5)
        assert len(set(positions)) >= 2, f"driver did not move: {positions}"
        # Central Helsinki's streets (the sample extract's bounds), and the order, sent without a route,
        # routed by livemap itself once shipped.
        assert all(60.14 < lat < 60.19 and 24.90 < lon < 24.97 for lat, lon in positions), positions
        key = text.split("(store key: ", 1)[1].split(")", 1)[0]
        order_url = tracking[0].split("/track/", 1)[0] + "/api/orders/1001"
        order: dict[str, object] = {}
        for _ in range(int(wait(30) / 0.5)):
            order = httpx.get(order_url, headers={"authorization": f"Bearer {key}"}).json()
            if order["route_source"] == "router":
                break
            time.sleep(0.5)
        assert order["route_source"] == "router" and order["stage"] == "shipped", order
        assert "Helsinki" in str(order["address"])
        sim = children(proc.pid)
        redis = redis_pids(tmp_path / "var")
        assert sim and len(redis) == 1
    finally:
        # Ctrl-C signals the whole process group; signalling livemap alone is the harder case:
        # it must stop the simulator itself.
        proc.send_signal(signal.SIGINT)
        proc.wait(wait(20))
        proc.stdout.close()
    assert proc.returncode == 0
    assert gone(sim + redis, 10), "the simulator or redis-server outlived the demo"
