"""``python -m simulator bench``: livemap's ingest, fan-out and memory figures next to a bare floor and the peers.

:mod:`.harness` runs it; :mod:`.loadgen` is the load generator process it starts (and :mod:`.bare` the
bare server); see the harness for what is measured and how.
"""

from __future__ import annotations

from .harness import run_bench
from .plan import STEPS, BenchOptions

__all__ = ["STEPS", "BenchOptions", "run_bench"]
