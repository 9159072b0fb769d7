"""What a trip drives along: the one interface the motion model (:mod:`.driver`) needs of a path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .city import Crossing
from .geo import XY, LatLon, LocalFrame


class Drivable(Protocol):
    """A :class:`.city.Route` on the grid, a :class:`.streetroute.StreetRoute` on real streets."""

    @property
    def frame(self) -> LocalFrame: ...
    @property
    def crossings(self) -> Sequence[Crossing]: ...
    @property
    def length_m(self) -> float: ...
    @property
    def origin(self) -> LatLon: ...
    @property
    def destination(self) -> LatLon: ...
    def to_wire(self) -> list[list[float]]: ...
    def point_at(self, d: float) -> XY: ...
    def direction_at(self, d: float) -> XY: ...
