"""The peers in the same run: their own bench (python-socketio, Node socket.io, their bare floor), then
livemap driven by their load generator.

The peers' directory is read only: it is copied to the run's temp dir, where its ``run.sh`` makes
its virtualenv and ``node_modules`` when missing and runs its bench, writing its JSON into our
results directory. Then, in that copy only, ``loadgen.py`` learns a ``livemap`` protocol: the
`peerproto` module is copied next to it and two lines of it are patched (the ``--proto`` choices
and the line that picks the protocol class). If those lines are not found verbatim (the peers
changed their loadgen), livemap is measured by our load generator alone and the bare floor,
measured by both, calibrates one against the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import time
from pathlib import Path
from typing import Any

from .fleet import Fleet, Walker
from .measure import Bench
from .procs import Child, ChildError

#: The peers' bench at full scale takes ~6 minutes; their setup (npm ci, pip) a few more.
_PEERS_TIMEOUT_S = 40 * 60.0
#: One run of their loadgen: warm-up, window, drain, connects.
_LOADGEN_TIMEOUT_S = 300.0
_PROTO_MODULE = "livemap_proto"
_PATCHES = (
    ('choices=["sio", "ws", "ws-ack"]', 'choices=["sio", "ws", "ws-ack", "livemap"]'),
    (
        'proto = SioProto(a.url, http) if a.proto == "sio" else WsProto(a.url, http, a.proto == "ws-ack")',
        'proto = (SioProto(a.url, http) if a.proto == "sio"\n'
        f'             else __import__("{_PROTO_MODULE}").LivemapProto(a.url, http) if a.proto == "livemap"\n'
        '             else WsProto(a.url, http, a.proto == "ws-ack"))',
    ),
)
PEERS = ("python-socketio", "node-socketio")


class PeersError(Exception):
    """The peers' bench could not run (missing, failed, or wrote no results)."""


def _copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("node_modules", "results.json", "__pycache__"))
    for path in [target, *target.rglob("*")]:  # the source is read only, and so is a plain copy of it
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _patch(copy: Path) -> str | None:
    """Teach the copy's loadgen.py the livemap protocol; None when done, else why not."""
    loadgen = copy / "loadgen.py"
    text = loadgen.read_text()
    for old, new in _PATCHES:
        if text.count(old) != 1:
            return f"loadgen.py no longer contains {old!r} exactly once"
        text = text.replace(old, new)
    loadgen.write_text(text)
    shutil.copyfile(Path(__file__).with_name("peerproto.py"), copy / f"{_PROTO_MODULE}.py")
    return None


def _venv_python() -> Path:
    return Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv")) / "bin" / "python"


async def run_peers(peers_dir: Path, work_dir: Path, out_dir: Path, stamp: str, bench: Bench) -> dict[str, Any]:
    """Run the peers' bench and livemap through their loadgen; their figures, as our JSON keeps them."""
    if not (peers_dir / "run.sh").is_file():
        raise PeersError(f"no peers' bench at {peers_dir}")
    copy = work_dir / "peers"
    _copy(peers_dir, copy)
    out = (out_dir / f"peers-{stamp}.json").resolve()
    result = await _their_bench(copy, out, bench)
    why_not = _patch(copy)
    result["livemap_via_peers_loadgen"] = (
        {"error": f"not measured: {why_not}"} if why_not is not None else await _via_their_loadgen(copy, bench)
    )
    return result


async def _their_bench(copy: Path, out: Path, bench: Bench) -> dict[str, Any]:
    plan, say = bench.plan, bench.say
    args = ["--duration", f"{plan.peers_duration_s:g}", "--ingest-drivers", str(plan.ingest_drivers)]
    args += ["--idle", str(plan.idle), "--out", str(out)] + (["--skip-large"] if plan.peers_skip_large else [])
    say(f"peers: their bench (python-socketio, Node socket.io, bare floor): run.sh {' '.join(args)}")

    def echo(line: str) -> None:
        if line.startswith("["):  # their progress lines; the rest (table, setup chatter) stays in the log
            say(f"  peers: {line}")

    t = time.monotonic()
    child, _ = await Child.start("peers", ["bash", str(copy / "run.sh"), *args], bench.log_dir, cwd=copy, echo=echo)
    child.stop_signal = signal.SIGINT  # their bench stops its own servers in a `finally`
    async with child:
        try:
            code = await asyncio.wait_for(child.proc.wait(), _PEERS_TIMEOUT_S)
        except TimeoutError:
            raise PeersError(f"their bench took over {_PEERS_TIMEOUT_S:g} s") from None
    theirs = _results(out, code, child)
    say(f"  peers: done in {time.monotonic() - t:.0f} s, wrote {out}")
    return _figures(theirs) | {"file": str(out), "command": "run.sh " + " ".join(args), "wall_s": theirs.get("total_s")}


def _results(out: Path, code: int, child: Child) -> dict[str, Any]:
    if code != 0 or not out.is_file():
        raise PeersError(f"their bench exited with status {code} (see {child.log_path})")
    theirs: dict[str, Any] = json.loads(out.read_text())
    return theirs


async def _via_their_loadgen(copy: Path, bench: Bench) -> dict[str, Any]:
    """livemap measured by the peers' loadgen: their ingest, fan-out (at a load they ran) and idle."""
    plan = bench.plan
    fan = (200, 1000) if plan.peers_skip_large else (500, 2500)
    runs: list[tuple[str, int, list[str]]] = [
        ("ingest", plan.ingest_drivers, ["-D", str(plan.ingest_drivers)]),
        ("fanout", fan[0], ["-D", str(fan[0]), "-H", "1", "-C", str(fan[1])]),
        ("idle", 200, ["-C", str(plan.idle)]),  # their idle customers watch orders o0..o199
    ]
    via: dict[str, Any] = {}
    for mode, orders, extra in runs:
        bench.say(f"livemap through the peers' loadgen: {mode} {' '.join(extra)}")
        try:
            raw = await _their_loadgen(bench, copy, mode, orders, [*extra, "--duration", f"{plan.peers_duration_s:g}"])
            via[mode] = _via_figures(mode, raw)
        except (ChildError, TimeoutError, OSError, ValueError) as exc:
            bench.say(f"  failed: {exc}")
            via[mode] = {"error": f"{type(exc).__name__}: {exc}"}
    return via


async def _their_loadgen(bench: Bench, copy: Path, mode: str, orders: int, args: list[str]) -> dict[str, Any]:
    async with bench.livemap() as servers:
        fleet = await bench.fleet(servers, orders)
        fleet_file = bench.work_dir / f"peers-fleet-{mode}.json"
        fleet_file.write_text(json.dumps(_fleet_json(fleet)))
        pids = f"server={servers.pids[0]}" + ("" if bench.redis.pid is None else f",redis={bench.redis.pid}")
        argv = [str(_venv_python()), "loadgen.py", mode, "--proto", "livemap", "--url", servers.urls[0]]
        env = os.environ | {"LIVEMAP_BENCH_FLEET": str(fleet_file)}
        child, _ = await Child.start(f"peers-loadgen-{mode}", [*argv, "--pids", pids, *args], bench.log_dir,
                                     env=env, cwd=copy, pipes=True)  # fmt: skip
        async with child:
            assert child.proc.stdout is not None
            output = await asyncio.wait_for(child.proc.stdout.read(), _LOADGEN_TIMEOUT_S)
            code = await child.proc.wait()
        lines = output.decode().strip().splitlines()
        if code != 0 or not lines:
            raise ChildError(f"their loadgen exited with status {code} (see {child.log_path})")
        result: dict[str, Any] = json.loads(lines[-1])
        errors = [line for c in servers.children for line in c.errors()]
        if errors:
            result["server_errors"] = len(errors)
        return result


def _fleet_json(fleet: Fleet) -> dict[str, Any]:
    return {
        "drivers": [
            {
                "token": d.token,
                "tracking_id": d.tracking_id,
                "tracking_token": d.tracking_token,
                "route": d.route,
                "cum": Walker(d.route).cumulative_m,
            }
            for d in fleet.drivers
        ]
    }


def _via_figures(mode: str, r: dict[str, Any]) -> dict[str, Any]:
    """livemap's figures from the peers' loadgen, in the shape of theirs."""
    common = {"cpu_pct": r.get("cpu_pct"), "disconnects": r.get("disconnects", 0)}
    common |= {"connect_errors": r["n_connect_errors"]} if r.get("n_connect_errors") else {}
    common |= {"server_errors": r["server_errors"]} if r.get("server_errors") else {}
    if mode == "fanout":
        return _their_fanout(r) | common
    if mode == "ingest":
        return {"pps": r["rate"], "drivers": r["drivers"], "active": r["active"], "ack_rtt": r["ack_rtt"], **common}
    return {"bytes_per_conn": round(r["kb_per_conn"] * 1024), "connections": r["connections"], **common}


def _figures(theirs: dict[str, Any]) -> dict[str, Any]:
    """The peers' figures by server: ingest pps, fan-out latency per load, idle bytes per connection."""
    out: dict[str, Any] = {"machine": theirs.get("machine"), "versions": theirs.get("versions")}
    for server in ("bare", *PEERS):
        figures: dict[str, Any] = {}
        for x in theirs.get("results", []):
            r = x["result"]
            if x["server"] != server or "error" in r:
                if x["server"] == server:
                    figures.setdefault("errors", []).append(f"{x['mode']}: {r['error']}")
                continue
            if x["mode"] == "ingest":
                key = "ingest_pps" if r["proto"] != "ws" else "ingest_fire_and_forget_pps"
                figures[key] = r["rate"]
            elif x["mode"] == "fanout" and r["customers"]:
                figures.setdefault("fanout", {})[f"{r['drivers']}x{r['customers']}"] = _their_fanout(r)
            elif x["mode"] == "fanout":  # the bare floor's round trip at that load
                figures.setdefault("round_trip", {})[f"{r['drivers']}"] = r["ack_latency"]
            elif x["mode"] == "idle":
                figures["idle_conn_bytes"] = round(r["kb_per_conn"] * 1024)
            if r.get("server_errors"):
                figures.setdefault("server_errors", {})[x["mode"]] = r["server_errors"]["n"]
        out[server] = figures
    return out


def _their_fanout(r: dict[str, Any]) -> dict[str, Any]:
    lat = r["latency"]
    return {
        "drivers": r["drivers"],
        "hz": r["hz"],
        "customers": r["customers"],
        "p50_ms": lat.get("p50_ms"),
        "p99_ms": lat.get("p99_ms"),
        "max_ms": lat.get("max_ms"),
        "sent": r["sent"],
        "expected": r["expected"],
        "received": r["received"],
        "lost": r["lost"],
        "disconnects": r.get("disconnects", 0),
        "cpu_pct": r.get("cpu_pct"),
    }
