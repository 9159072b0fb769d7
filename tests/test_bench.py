"""`python -m simulator bench` end to end at a tiny scale: every figure present, sane and consistent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, wait
from simulator.bench.report import table

_FANOUT_KEYS = {"drivers", "hz", "customers", "dispatchers", "p50_ms", "p99_ms", "max_ms", "sent", "received", "lost"}


def _check_fanout(f: dict[str, Any]) -> None:
    assert f.keys() >= _FANOUT_KEYS, f
    assert f["sent"] > 0 and f["received"] > 0, f
    assert f["lost"] == 0 and f["slow_consumer_closes"] == 0, f  # nothing is lost at this tiny load
    assert f["received"] == f["expected"] == f["sent_new_seconds"] * f["customers"] // f["drivers"], f
    assert 0 <= f["p50_ms"] <= f["p99_ms"] <= f["max_ms"] + 0.1, f


def test_bench_tiny_run_writes_every_figure(tmp_path: Path) -> None:
    """A tiny run without the peers writes latest.json and a timestamped copy with every required figure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIVEMAP_", "BENCH_"))}
    env["TMPDIR"] = str(tmp_path)  # the run keeps its logs in a temp dir: this test's own
    args = ["--scale", "0.02", "--no-peers", "--window", "1.5", "--warmup", "0.5", "--drain", "0.5"]
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "bench", *args, "--out-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=wait(100),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    stamped = list(tmp_path.glob("bench-*.json"))
    assert len(stamped) == 1 and json.loads(stamped[0].read_text()) == doc

    assert doc["machine"].keys() >= {"cores", "cpu", "kernel", "python", "packages"}
    assert doc["redis"].startswith("Redis ")
    assert doc["bare_ingest_pps"] > 0 and doc["livemap_ingest_pps"] > 0
    assert doc["ingest_ratio"] == round(doc["livemap_ingest_pps"] / doc["bare_ingest_pps"], 3)
    for key in ("fanout", "fanout_large"):
        _check_fanout(doc[key])
    assert doc["fanout_large"]["drivers"] > doc["fanout"]["drivers"]
    assert doc["idle_conn_bytes"] > 0
    scale = doc["scaleout"]
    assert scale["processes"] == 2 and scale["livemap_ingest_pps"] > 0
    assert scale["ratio"] == round(scale["livemap_ingest_pps"] / doc["livemap_ingest_pps"], 3)
    assert "peers" not in doc
    for key in ("fanout", "fanout_large"):  # every window says what else took the CPU, the hypervisor included
        assert doc[key]["cpu_pct"].keys() >= {"server", "redis", "loadgen", "others", "steal"}, doc[key]
        assert all(v >= 0 for v in doc[key]["cpu_pct"].values()), doc[key]
    assert doc["machine"]["steal_before_pct"] >= 0
    assert "transport ceiling" in proc.stdout and "livemap ingest" in proc.stdout  # the table


def test_a_partial_runs_table_names_only_what_it_measured() -> None:
    """`--only fanout_large` leaves the ingest steps (and the event loops they report) unmeasured:
    the table shows them as not measured, not as "None"."""
    full = (ROOT / "bench" / "results" / "latest.json").read_text()
    doc = json.loads(full)
    doc["details"].update(bare_ingest=None, livemap_ingest=None, idle=None)
    doc["settings"].update(livemap_loop=None, bare_loop=None)
    doc.update(bare_ingest_pps=None, livemap_ingest_pps=None, ingest_ratio=None, fanout=None, idle_conn_bytes=None)
    doc["scaleout"].update(livemap_ingest_pps=None, ratio=None)
    doc.pop("peers", None)
    text = table(doc)
    assert "None" not in text, text
    assert "- drivers, ack-paced" in text and "fan-out large" in text and "livemap on" not in text
    assert "2000 drv x 1 Hz" in table(json.loads(full))
