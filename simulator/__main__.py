"""``python -m simulator``: see :mod:`simulator.cli`."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
