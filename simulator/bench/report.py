"""The run's results document (JSON) and the table printed from it.

Every ratio is computed here from the figures next to it, so the JSON and the table always agree.
"""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any

from .analytics import COSTED
from .plan import DRIVER_MSGS_PER_S, BenchOptions, Plan

#: The issue's target: livemap's ingest at least this many times Node socket.io's.
INGEST_TARGET_VS_NODE = 2.0

Doc = dict[str, Any]


def _ratio(a: float | None, b: float | None, digits: int = 3) -> float | None:
    return round(a / b, digits) if a is not None and b else None


def _get(d: Any, *path: str) -> Any:
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def summarize(
    results: dict[str, Any], options: BenchOptions, plan: Plan, machine: Doc, redis: str, elapsed_s: float
) -> Doc:
    bare, ingest, scale = (results.get(k, {}) for k in ("bare_ingest", "livemap_ingest", "scaleout"))
    pps = ingest.get("pps")
    doc: Doc = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": shlex.join(["python", "-m", "simulator", *sys.argv[1:]]),
        "scale": options.scale,
        "elapsed_s": round(elapsed_s),
        "machine": machine,
        "redis": redis,
        "settings": {
            "window_s": plan.window_s,
            "warmup_s": plan.warmup_s,
            "drain_s": plan.drain_s,
            "loadgen_processes": options.loadgens,
            "livemap_env": {"LIVEMAP_DRIVER_MSGS_PER_S": DRIVER_MSGS_PER_S, "LIVEMAP_GEOCODER": "none"},
            "livemap_loop": ingest.get("loop"),
            "bare_loop": bare.get("loop"),
        },
        "bare_ingest_pps": bare.get("pps"),
        "livemap_ingest_pps": pps,
        "ingest_ratio": _ratio(pps, bare.get("pps")),
        "fanout": results.get("fanout"),
        "fanout_large": results.get("fanout_large"),
        "idle_conn_bytes": _get(results, "idle", "bytes_per_conn"),
        "scaleout": {
            "processes": 2,
            "livemap_ingest_pps": scale.get("pps"),
            "per_process_pps": None if scale.get("pps") is None else round(scale["pps"] / 2),
            "ratio": _ratio(scale.get("pps"), pps),
            **{k: v for k, v in scale.items() if k != "pps"},
        },
        "bulk": results.get("bulk"),
        "analytics": results.get("analytics"),
        "details": {k: results.get(k) for k in ("bare_ingest", "livemap_ingest", "idle")},
    }
    if "peers" in results:
        doc["peers"] = results["peers"] | {"ratios": _peer_ratios(doc, results["peers"])}
    return doc


def _peer_ratios(doc: Doc, peers: Doc) -> Doc:
    node, psio, bare = (peers.get(k, {}) for k in ("node-socketio", "python-socketio", "bare"))
    via = peers.get("livemap_via_peers_loadgen", {})
    ours = doc.get("fanout") or {}
    load = f"{ours.get('drivers')}x{ours.get('customers')}"
    via_fan = via.get("fanout") or {}
    via_load = f"{via_fan.get('drivers')}x{via_fan.get('customers')}"
    idle = doc.get("idle_conn_bytes")
    return {
        "ingest_vs_node": _ratio(doc.get("livemap_ingest_pps"), node.get("ingest_pps")),
        "ingest_vs_node_target": INGEST_TARGET_VS_NODE,
        "ingest_vs_node_same_loadgen": _ratio(_get(via, "ingest", "pps"), node.get("ingest_pps")),
        "ingest_vs_python_socketio": _ratio(doc.get("livemap_ingest_pps"), psio.get("ingest_pps")),
        # Only at the same load (full scale: 500 x 2,500); None otherwise.
        "fanout_p99_vs_node": _ratio(ours.get("p99_ms"), _get(node, "fanout", load, "p99_ms")),
        "fanout_p99_vs_node_same_loadgen": _ratio(via_fan.get("p99_ms"), _get(node, "fanout", via_load, "p99_ms")),
        "idle_bytes_vs_node": _ratio(idle, node.get("idle_conn_bytes")),
        "idle_bytes_vs_python_socketio": _ratio(idle, psio.get("idle_conn_bytes")),
        "idle_bytes_vs_bare": _ratio(idle, bare.get("idle_conn_bytes")),
        "idle_bytes_vs_node_same_loadgen": _ratio(_get(via, "idle", "bytes_per_conn"), node.get("idle_conn_bytes")),
        # Both load generators against a bare ack loop: ours / theirs (1.0 = they push alike).
        "loadgen_calibration_bare": _ratio(doc.get("bare_ingest_pps"), bare.get("ingest_pps")),
    }


# --- table ---------------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str, str, str]
#: A window's CPU figures (percent of one core), in the order the table and the progress lines show them.
_CPU_KEYS = ("server", "redis", "loadgen", "others", "steal")
_CPU_LABEL = "CPU% srv/redis/gen/other/steal"
_HEADER: Row = ("figure", "load", "value", "unit", "ratio", _CPU_LABEL, "notes")


def _n(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.3g}" if isinstance(x, float) and x < 10 else f"{x:,.0f}"


def _x(r: float | None, what: str) -> str:
    return "" if r is None else f"x{r:g} {what}"


def _cpu(r: Any) -> str:
    c = _get(r, "cpu_pct")
    if not isinstance(c, dict):
        return ""
    return "/".join(str(c[k]) for k in _CPU_KEYS if k in c)


def _trouble(r: Any) -> str:
    """What casts doubt on a figure: errors, refused connects, sockets the server closed."""
    if not isinstance(r, dict):
        return "not measured"
    notes = []
    if "error" in r:
        notes.append("ERROR " + str(r["error"])[:100])
    for key, label in (("connect_errors", "connect errors"), ("disconnects", "server closes"),
                       ("server_errors", "server log errors"), ("loadgen_errors", "loadgen log errors")):  # fmt: skip
        if r.get(key):
            notes.append(f"{r[key]} {label}")
    if r.get("server_died"):
        notes.append("server died")
    if r.get("error_replies"):
        notes.append(f"error replies {r['error_replies']}")
    return "; ".join(notes)


def _fan_value(r: Any) -> str:
    if not isinstance(r, dict) or r.get("p99_ms") is None:
        return "-"
    return f"{r['p50_ms']} / {r['p99_ms']} / {r['max_ms']}"


def _fan_notes(r: Any, ours: bool) -> str:
    if not isinstance(r, dict) or "expected" not in r:
        return _trouble(r)
    note = f"lost {r['lost']}/{r['expected']}"
    if ours:
        note += f", slow-consumer closes {r['slow_consumer_closes']} (lost by others {r['lost_non_slow']})"
        # A driver's ack waits behind everything the server has queued: a late ack means a saturated server.
        note += f"; driver ack p99 {r['ack_latency']['p99_ms']} ms"
        disp = r["dispatch"]
        note += f"; dispatchers got {disp['locations_received']:,} locations, p99 {disp['latency']['p99_ms']} ms"
    extra = _trouble({k: v for k, v in r.items() if k != "error_replies"})
    return note + (f"; {extra}" if extra else "")


def _fan_load(r: Any) -> str:
    if not isinstance(r, dict):
        return ""
    load = f"{r.get('drivers')} drv x {r.get('hz', 1):g} Hz, {r.get('customers')} cust"
    return load + (f", {r['dispatchers']} disp" if r.get("dispatchers") else "")


def _rows(doc: Doc) -> list[Row]:
    d = doc["details"]
    bare, ingest, idle, scale = d["bare_ingest"] or {}, d["livemap_ingest"] or {}, d["idle"] or {}, doc["scaleout"]
    bulk = doc.get("bulk") or {}
    drivers = f"{ingest.get('drivers') or bare.get('drivers') or '-'} drivers, ack-paced"
    peers = doc.get("peers") or {}
    ratios = peers.get("ratios", {})
    node_x = _x(ratios.get("fanout_p99_vs_node"), "Node p99")
    rows: list[Row] = [
        ("transport ceiling (bare ws)", drivers, _n(doc["bare_ingest_pps"]), "pings/s", "baseline", _cpu(bare),
         _trouble(bare)),
        ("livemap ingest", drivers + ", full hot path", _n(doc["livemap_ingest_pps"]), "pings/s",
         _x(doc["ingest_ratio"], "bare"), _cpu(ingest), _trouble(ingest)),
        ("livemap scale-out, 2 processes", drivers + ", split", _n(scale["livemap_ingest_pps"]), "pings/s",
         _x(scale["ratio"], "1 process"), _cpu(scale), _trouble(scale)),
        ("fan-out p50 / p99 / max", _fan_load(doc["fanout"]), _fan_value(doc["fanout"]), "ms", node_x,
         _cpu(doc["fanout"]), _fan_notes(doc["fanout"], True)),
        ("fan-out large p50 / p99 / max", _fan_load(doc["fanout_large"]), _fan_value(doc["fanout_large"]), "ms", "",
         _cpu(doc["fanout_large"]), _fan_notes(doc["fanout_large"], True)),
        ("memory per idle customer socket", f"{idle.get('connections', '-')} sockets", _n(doc["idle_conn_bytes"]),
         "bytes", _x(ratios.get("idle_bytes_vs_node"), "Node"), "", _trouble(idle)),
        ("bulk set-up: drivers / orders", f"{bulk.get('items', '-')} each, one call each", _bulk_value(bulk), "s",
         _x(bulk.get("speedup"), "single calls"), "", str(bulk.get("error", ""))[:100]),
        *_analytics_rows(doc.get("analytics") or {}),
    ]  # fmt: skip
    if peers:
        rows += _peer_rows(peers, ratios)
    return rows


def _analytics_rows(a: Doc) -> list[Row]:
    if "read_p50_ms" not in a:
        return [("analytics", "", "-", "", "", "", str(a.get("error", ""))[:100])]
    year = f"{a['orders']:,} orders over {a['days']} days"
    return [
        ("analytics: a year read, p50 / p90", year, f"{a['read_p50_ms']:g} / {a['read_p90_ms']:g}", "ms",
         _x(a["read_vs_baseline"], "GET /api/store"), "", ""),
        ("tracking page view (beacon), server CPU", f"{COSTED:,} views, {COSTED:,} pings", _n(a["view_cpu_us"]), "µs",
         _x(a["view_vs_ping"], "a ping"), "", f"ping {a['ping_cpu_us']} µs"),
    ]  # fmt: skip


def _peer_rows(peers: Doc, ratios: Doc) -> list[Row]:
    if "error" in peers:
        return [("peers", "", "-", "", "", "", "ERROR " + str(peers["error"])[:100])]
    rows: list[Row] = [("-- peers, their bench and loadgen --", "", "", "", "", "", "")]
    bare = peers.get("bare", {})
    rows.append(("bare floor (their loadgen)", "ack-paced", _n(bare.get("ingest_pps")), "pings/s",
                 _x(ratios.get("loadgen_calibration_bare"), "ours/theirs"), "", ""))  # fmt: skip
    for name in ("python-socketio", "node-socketio"):
        p = peers.get(name, {})
        ratio = _x(ratios.get("ingest_vs_node"), f"livemap/Node (target >={INGEST_TARGET_VS_NODE:g})")
        rows.append((f"{name} ingest", "ack-paced", _n(p.get("ingest_pps")), "pings/s",
                     ratio if name == "node-socketio" else "", "", "; ".join(p.get("errors", []))))  # fmt: skip
        for r in (p.get("fanout") or {}).values():
            rows.append((f"{name} fan-out p50/p99/max", _fan_load(r), _fan_value(r), "ms", "", _cpu(r),
                         _fan_notes(r, False)))  # fmt: skip
    for name in ("bare", "python-socketio", "node-socketio"):
        rows.append((f"{name} idle socket", "", _n(peers.get(name, {}).get("idle_conn_bytes")), "bytes", "", "", ""))
    via = peers.get("livemap_via_peers_loadgen") or {}
    rows.append(("-- livemap, the peers' loadgen --", "", "", "", "", "", ""))
    if "error" in via:
        rows.append(("livemap (their loadgen)", "", "-", "", "", "", str(via["error"])))
        return rows
    ing, fan, idle = (via.get(k) or {} for k in ("ingest", "fanout", "idle"))
    rows += [
        ("livemap ingest", f"{ing.get('drivers', '-')} drivers, ack-paced", _n(ing.get("pps")), "pings/s",
         _x(ratios.get("ingest_vs_node_same_loadgen"), "Node"), _cpu(ing), _trouble(ing)),
        ("livemap fan-out p50/p99/max", _fan_load(fan), _fan_value(fan), "ms",
         _x(ratios.get("fanout_p99_vs_node_same_loadgen"), "Node p99"), _cpu(fan), _fan_notes(fan, False)),
        ("livemap idle socket", f"{idle.get('connections', '-')} sockets", _n(idle.get("bytes_per_conn")), "bytes",
         _x(ratios.get("idle_bytes_vs_node_same_loadgen"), "Node"), "", _trouble(idle)),
    ]  # fmt: skip
    return rows


def _loops(settings: Doc) -> str:
    # A partial run (--only) may not have run the ingest steps that report their event loops.
    loops = [f"{name} on {settings[key]}" for name, key in (("livemap", "livemap_loop"), ("bare", "bare_loop"))
             if settings.get(key)]  # fmt: skip
    return ", ".join(loops) + "; " if loops else ""


def table(doc: Doc) -> str:
    rows = [_HEADER, *_rows(doc)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    lines = ["  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip() for row in rows]
    m = doc["machine"]
    lines.append(f"machine: {m['cores']} cores, {m['cpu']}, kernel {m['kernel']}, Python {m['python']}; {doc['redis']}")
    lines.append(
        f"windows {doc['settings']['window_s']:g} s after {doc['settings']['warmup_s']:g} s warm-up, "
        f"{doc['settings']['loadgen_processes']} loadgen processes; {_loops(doc['settings'])}"
        f"LIVEMAP_DRIVER_MSGS_PER_S={DRIVER_MSGS_PER_S} (default 50)"
    )
    return "\n".join(lines)


def headline(key: str, r: dict[str, Any]) -> str:
    """One progress line for a finished measurement."""
    if "error" in r:
        return f"{key}: ERROR {r['error']}"
    if "pps" in r:
        return f"{key}: {r['pps']:,} pings/s ({_CPU_LABEL} {_cpu(r)}) {_trouble(r)}"
    if "p99_ms" in r:
        return f"{key}: p50/p99/max {_fan_value(r)} ms; {_fan_notes(r, True)}"
    if "orders_bulk_s" in r:
        return f"{key}: {_bulk_value(r)} s ({r['speedup']}x the single calls)"
    if "read_p50_ms" in r:
        return (
            f"{key}: a year of {r['orders']:,} orders read in {r['read_p50_ms']} ms p50 ({r['read_vs_baseline']}x"
            f" GET /api/store); a page view {r['view_cpu_us']} µs of server CPU, a ping {r['ping_cpu_us']} µs"
        )
    return f"{key}: {r.get('bytes_per_conn'):,} bytes per idle socket ({r.get('connections')} sockets)"


def _bulk_value(r: Doc) -> str:
    if "orders_bulk_s" not in r:
        return "-"
    return f"{r['drivers_bulk_s']:g} / {r['orders_bulk_s']:g}"
