"""The car graph of an extract, built once and cached under `<data_dir>/routing/`.

The cache file is `<extract name>-<sha256 of the extract, 16 hex>-v<GRAPH_FORMAT>.npz`: a changed
extract (another hash) or a changed graph format gets a new build; older caches of the same
extract are removed after it. Hashing a country extract takes a second or two, so the hash is
remembered beside the caches (`<extract name>.key.json`) with the file's size and mtime, and taken
again only when either changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from livemap.routing.osmgraph import CarGraph, build_graph
from livemap.routing.osmparse import read_osm

log = logging.getLogger("livemap.routing")

#: Bump when CarGraph's arrays or their meaning change: old caches are then rebuilt, never misread.
GRAPH_FORMAT = 1


def cache_dir(data_dir: Path) -> Path:
    return data_dir / "routing"


def extract_hash(path: Path, data_dir: Path) -> str:
    """sha256 of the extract, remembered by size and mtime so that an unchanged file is read once."""
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    key_file = cache_dir(data_dir) / f"{path.name}.key.json"
    try:
        known = json.loads(key_file.read_text())
        if {k: known.get(k) for k in stamp} == stamp and isinstance(known.get("sha256"), str):
            return str(known["sha256"])
    except (OSError, ValueError):
        pass  # no key yet, or an unreadable one: hash again
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(stamp | {"sha256": digest.hexdigest()}))
    return digest.hexdigest()


def graph_id(path: Path, data_dir: Path) -> str:
    """The graph's identity: its segment ids mean the same streets in every process that shares it."""
    return f"{extract_hash(path, data_dir)[:16]}-v{GRAPH_FORMAT}"


def cache_path(path: Path, data_dir: Path) -> Path:
    return cache_dir(data_dir) / f"{path.name}-{graph_id(path, data_dir)}.npz"


def load_or_build(path: Path, data_dir: Path) -> tuple[CarGraph, bool]:
    """The extract's car graph, and whether it was built now (False: read from the cache)."""
    cached = cache_path(path, data_dir)
    graph = _load(cached)
    if graph is not None:
        log.info("routing: car graph of %s from %s (%d nodes, %d segments)", path, cached, graph.nodes, graph.segments)
        return graph, False
    log.warning("routing: building the car graph from %s (this happens once)", path)
    began = time.perf_counter()
    graph = build_graph(read_osm(path))
    _save(graph, cached)
    log.warning(
        "routing: car graph built in %.1f s: %d nodes, %d segments, %d turns, %.1f MB in %s",
        time.perf_counter() - began, graph.nodes, graph.segments, len(graph.turn_from),
        cached.stat().st_size / 1e6, cached,
    )  # fmt: skip
    for old in cached.parent.glob(f"{path.name}-*.npz"):
        if old != cached:
            old.unlink(missing_ok=True)  # an older build of this extract, or of an older format
    return graph, True


def _load(cached: Path) -> CarGraph | None:
    try:
        with np.load(cached, allow_pickle=False) as npz:
            return CarGraph(**{f.name: npz[f.name] for f in fields(CarGraph)})
    except (OSError, KeyError, ValueError):
        return None  # none yet, or cut short by a crash during a save: build again


def _save(graph: CarGraph, cached: Path) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
    with partial.open("wb") as f:
        np.savez(f, **graph.arrays())
    partial.replace(cached)  # atomic: a reader never sees half a cache
