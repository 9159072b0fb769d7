"""`make run` (= `livemap demo`): the printed links work, drivers move, Ctrl-C stops everything."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import ADMIN, ROOT, Server, children, gone, on_a_taken_port, redis_pids, wait


def demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMAP_") and k != "PORT"}
    return env | {"LIVEMAP_DATA_DIR": str(tmp_path / "var")}


def printed(lines: list[str], label: str) -> str:
    """What the demo printed after `label` on the one line that starts with it."""
    (line,) = [x.strip() for x in lines if x.strip().startswith(label)]
    return line[len(label) :].strip()


def test_demo_prints_links_whose_driver_moves_and_stops_cleanly(tmp_path: Path) -> None:
    """The demo prints a dispatcher URL and 3 tracking links; a link's driver moves on Helsinki's streets, on a route
    livemap made; SIGINT stops all of it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "livemap", "demo", "--port", "0", "--drivers", "3"],
        cwd=ROOT,
        env=demo_env(tmp_path),
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
        assert re.search(r"Dispatcher: +http://127\.0\.0\.1:\d+/dispatch ", text), text
        tracking = [x.split(": ", 1)[1].strip() for x in lines if x.strip().startswith("Track order")]
        assert len(tracking) == 3 and all("/track/" in t and "?t=" in t for t in tracking)
        check_newcomer_links(lines, tracking[0])
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
        # The store keeps its clock where its drivers drive: stage times and analytics days are Helsinki's.
        store = httpx.get(order_url.split("/api/")[0] + "/api/store", headers={"authorization": f"Bearer {key}"})
        assert store.json()["timezone"] == "Europe/Helsinki"
        assert "Guest form:" in (tmp_path / "var" / "demo-links.txt").read_text()
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


def check_newcomer_links(lines: list[str], first_tracking: str) -> None:
    """The store id, the guest form (which finds the first order by the number and email printed beside it)
    and the driver app link (whose token signs in as the simulated driver it names) all work."""
    base = first_tracking.split("/track/", 1)[0]
    store_id = printed(lines, "Store id:")
    assert re.fullmatch(r"st_[\w-]+", store_id), store_id
    guest, hint = printed(lines, "Guest form:").split(maxsplit=1)
    assert guest == f"{base}/track?store={store_id}"
    form = httpx.get(guest)
    assert form.status_code == 200 and "Demo store" in form.text and 'name="contact"' in form.text
    asked = re.fullmatch(r"\(order (\d+) \+ (\S+@\S+)\)", hint)
    assert asked, hint
    number, email = asked.groups()
    found = httpx.post(guest, data={"number": number, "contact": email})
    assert found.status_code == 303 and found.headers["location"] == first_tracking
    driver_link = printed(lines, "Driver app:")
    page, _, fragment = driver_link.partition("#")
    assert page == f"{base}/driver" and fragment.startswith("token=lmd_")
    assert httpx.get(page).status_code == 200
    me = httpx.get(f"{base}/api/driver", headers={"authorization": f"Bearer {fragment.removeprefix('token=')}"})
    assert me.status_code == 200, me.text
    who = printed(lines, "signs in as")
    assert who.startswith(f"{me.json()['driver_id']} ({me.json()['name']}), a simulated driver"), who


def test_demo_on_a_taken_port_says_so_in_one_line(tmp_path: Path) -> None:
    """`make run` while port P is taken (another livemap): one line naming P and how to pick another, exit 1, no
    traceback, and no redis-server left behind (the port is tried before anything starts)."""
    port, done = on_a_taken_port(lambda port: ["demo", "--port", str(port)], demo_env(tmp_path))
    assert done.returncode == 1
    assert done.stderr == (
        f"livemap: port {port} is in use (another livemap?); pick another with PORT={port + 1} make run\n"
    )
    assert not redis_pids(tmp_path / "var")


def test_the_grid_demo_store_keeps_asuncions_time(server: Server, tmp_path: Path) -> None:
    """Without the Helsinki extract the demo drives a grid near Asunción, and its store runs on America/Asuncion
    (not UTC): stage times and analytics days are the demo city's. Its console shows the same links."""
    env = demo_env(tmp_path) | {"LIVEMAP_ADMIN_TOKEN": ADMIN}
    world = ["--drivers", "1", "--world", "grid", "--duration", "0.5", "--store-name", "Grid demo"]
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "run", "--url", server.url, *world],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=wait(60),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    key = printed(lines, "Dispatcher:").split("(store key: ", 1)[1].rstrip(")")
    store = httpx.get(f"{server.url}/api/store", headers={"authorization": f"Bearer {key}"}).json()
    assert store["name"] == "Grid demo" and store["timezone"] == "America/Asuncion"
    assert store["id"] == printed(lines, "Store id:")
    assert printed(lines, "Guest form:").startswith(f"{server.url}/track?store={store['id']} ")
    assert printed(lines, "signs in as").startswith("driver-1 (")
