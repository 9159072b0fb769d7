"""Measures the embedded router on an extract: `python -m livemap.routing.measure PATH.osm.pbf`.

Builds the car graph afresh (in a temporary data dir unless `--data-dir` is given, so the build is
always timed), then routes `--pairs` random pairs of graph nodes that have a route between them
(a fixed seed: the same pairs every run). Prints progress, then one JSON line last: the build time,
the process's peak memory (ru_maxrss), node / segment / turn counts, and query p50 / p99 (ms).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from livemap.routing.embedded import EmbeddedRouter
from livemap.routing.graphcache import load_or_build


def _queries(router: EmbeddedRouter, pairs: int, seed: int) -> list[float]:
    """Seconds per route_now() call, over `pairs` random pairs that have a route."""
    g, rng = router.graph, np.random.default_rng(seed)
    times: list[float] = []
    for _ in range(pairs * 20):  # unreachable pairs (islands, one-way traps) are drawn again
        a, b = (int(i) for i in rng.integers(0, g.nodes, 2))
        start, end = (float(g.node_lat[a]), float(g.node_lon[a])), (float(g.node_lat[b]), float(g.node_lon[b]))
        began = time.perf_counter()
        found = router.route_now(start, end)
        spent = time.perf_counter() - began
        if found is not None and found.segments:
            times.append(spent)
            if len(times) == pairs:
                break
    return times


def measure(path: Path, data_dir: Path, pairs: int, seed: int) -> dict[str, Any]:
    began = time.perf_counter()
    graph, built = load_or_build(path, data_dir)
    build_s = time.perf_counter() - began
    router = EmbeddedRouter(graph, timeout_s=60.0)
    times = np.array(_queries(router, pairs, seed)) * 1000
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux counts it in KiB
    return {
        "extract": str(path), "extract_mb": round(path.stat().st_size / 1e6, 2), "built": built,
        "build_s": round(build_s, 3), "peak_rss_mb": round(peak_mb, 1),
        "nodes": graph.nodes, "segments": graph.segments, "turns": len(graph.turn_from), "pairs": len(times),
        "query_p50_ms": round(float(np.percentile(times, 50)), 3) if len(times) else None,
        "query_p99_ms": round(float(np.percentile(times, 99)), 3) if len(times) else None,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m livemap.routing.measure", description=__doc__.split("\n")[0])
    parser.add_argument("extract", type=Path, help="an .osm.pbf (or .osm) file")
    parser.add_argument("--pairs", type=int, default=200, help="routes to time (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, help="cache the graph here (default: a temporary dir)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.data_dir is not None:
        result = measure(args.extract, args.data_dir, args.pairs, args.seed)
    else:
        with tempfile.TemporaryDirectory(prefix="livemap-measure-") as tmp:
            result = measure(args.extract, Path(tmp), args.pairs, args.seed)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
