"""Virtual delivery drivers for livemap, over its public HTTP and websocket API only.

The pure parts (:mod:`.city`, :mod:`.driver`) need no server: a street grid, routes along it,
and drivers whose true motion is known exactly, for demos, load and ETA ground truth.
"""

from __future__ import annotations

from .city import Crossing, Route, StreetGrid, plan_route
from .client import ApiError, LivemapClient
from .clock import SimClock
from .courier import Courier
from .driver import Fix, MotionProfile, Trip, TrueState, VirtualDriver
from .geo import LocalFrame
from .link import DriverLink
from .run import RunOptions, run

__all__ = [
    "ApiError",
    "Courier",
    "Crossing",
    "DriverLink",
    "Fix",
    "LivemapClient",
    "LocalFrame",
    "MotionProfile",
    "Route",
    "RunOptions",
    "SimClock",
    "StreetGrid",
    "Trip",
    "TrueState",
    "VirtualDriver",
    "plan_route",
    "run",
]
