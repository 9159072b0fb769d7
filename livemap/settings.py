"""Twelve-factor configuration: every knob is an environment variable with the `LIVEMAP_` prefix."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from starlette.config import Config
from starlette.datastructures import Secret


@dataclass(frozen=True, slots=True)
class Settings:
    """Server settings. `Settings.from_env()` reads them; tests build them directly."""

    #: External Redis (``redis://``, ``rediss://`` or ``unix://``); empty means run the embedded one.
    redis_url: str = ""
    #: Where the embedded Redis keeps its AOF and where a generated admin token is stored.
    data_dir: Path = Path("var")
    #: Prefix of every Redis key and channel, so several deployments (or test runs) can share one Redis.
    key_prefix: str = "lm"
    #: Creates stores. Generated into the data dir and printed on first start when unset.
    admin_token: Secret = field(default_factory=lambda: Secret(""))
    #: Base URL used in the links livemap hands out (tracking links); empty means "from the request".
    public_url: str = ""
    #: Largest websocket frame the application answers with a typed error; larger ones close the socket.
    max_frame_bytes: int = 64 * 1024
    #: Most fixes in one batch message.
    max_batch: int = 1000
    #: Messages a driver socket may send per second on average (burst of twice that).
    driver_msgs_per_s: float = 50.0
    #: Events kept per order stream for `since` replay (approximate, `XADD MAXLEN ~`).
    stream_maxlen: int = 5000
    #: Pending messages per subscriber socket before it is treated as a slow consumer and closed.
    client_queue: int = 256
    #: Speed prior for the ETA model before any progress is observed (m/s; 8.3 = 30 km/h).
    speed_prior_mps: float = 8.3
    #: Weight of the newest observation in the EWMA of along-route speed.
    speed_ewma_alpha: float = 0.25
    #: Slowest speed the ETA model divides by, so a stop does not send the ETA to infinity.
    speed_floor_mps: float = 1.5
    #: A driver with no fix for this long is stale; the customer page says "last seen".
    stale_after_s: float = 60.0
    #: A driver is online while its newest fix is younger than this.
    online_window_s: float = 600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every field from ``LIVEMAP_<FIELD>``; unset ones keep their defaults."""
        config = Config(environ=os.environ if environ is None else environ, env_prefix="LIVEMAP_")
        defaults = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            default = getattr(defaults, f.name)
            # starlette casts defaults too, which would wrap a Secret in a Secret: pass None, keep ours.
            value = config(f.name.upper(), cast=type(default), default=None)
            values[f.name] = default if value is None else value
        return cls(**values)
