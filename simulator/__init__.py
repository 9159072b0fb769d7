"""Virtual delivery drivers for livemap, over its public HTTP and websocket API only.

The pure parts (:mod:`.city`, :mod:`.driver`) need no server: a street grid, routes along it,
and drivers whose true motion is known exactly, for demos, load and ETA ground truth.
"""

from __future__ import annotations

from .city import Crossing, Route, StreetGrid, detour, plan_route
from .client import ApiError, LivemapClient
from .clock import SimClock
from .courier import Courier
from .driver import Fix, Jam, Trip, TrueState, VirtualDriver
from .etabench import EtaOptions, run_eta_accuracy
from .geo import LocalFrame
from .link import DriverLink
from .motion import MotionProfile
from .run import RunOptions, run
from .scenario import Delivery, Scenario, ScenarioOptions, plan_scenario

__all__ = [
    "ApiError",
    "Courier",
    "Crossing",
    "Delivery",
    "DriverLink",
    "EtaOptions",
    "Fix",
    "Jam",
    "LivemapClient",
    "LocalFrame",
    "MotionProfile",
    "Route",
    "RunOptions",
    "Scenario",
    "ScenarioOptions",
    "SimClock",
    "StreetGrid",
    "Trip",
    "TrueState",
    "VirtualDriver",
    "detour",
    "plan_route",
    "plan_scenario",
    "run",
    "run_eta_accuracy",
]
