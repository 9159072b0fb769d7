"""`python -m livemap.routing.measure EXTRACT.osm.pbf`: what the embedded router costs on an extract.

Builds the car graph from scratch (no cache), then times route queries between random pairs of
nodes that have a route. Prints a summary and, on the last line, the figures as JSON (the bench
reads them): build seconds, peak memory, nodes, edges, query p50 / p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import tempfile
import time
from pathlib import Path

from livemap.routing.embedded import EmbeddedRouter
from livemap.routing.osmgraph import cached


def measure(path: Path, queries: int = 200, seed: int = 7) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        graph = cached(path, Path(scratch))
        router = EmbeddedRouter(graph, timeout_s=60.0)
        build_s = time.perf_counter() - started
    rng = random.Random(seed)
    times: list[float] = []
    while len(times) < queries:
        a, b = rng.randrange(graph.nodes), rng.randrange(graph.nodes)
        start = time.perf_counter()
        road = router.route_sync((graph.lat[a], graph.lon[a]), (graph.lat[b], graph.lon[b]))
        if road is not None:  # pairs on different islands take as long, but are not what a leg asks
            times.append((time.perf_counter() - start) * 1000)
    ranked = sorted(times)
    return {
        "build_s": round(build_s, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "nodes": graph.nodes,
        "edges": graph.edges,
        "query_p50_ms": round(statistics.median(ranked), 2),
        "query_p99_ms": round(ranked[min(len(ranked) - 1, int(len(ranked) * 0.99))], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extract", type=Path, help="an .osm.pbf (or .osm) file")
    parser.add_argument("--queries", type=int, default=200, help="route queries to time (default 200)")
    args = parser.parse_args()
    figures = measure(args.extract, args.queries)
    print(
        f"{args.extract.name}: {figures['nodes']:,} nodes, {figures['edges']:,} edges, built in "
        f"{figures['build_s']} s, peak RSS {figures['peak_rss_mb']} MB; query p50 {figures['query_p50_ms']} ms, "
        f"p99 {figures['query_p99_ms']} ms ({args.queries} routes)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
