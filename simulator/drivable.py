"""What a trip drives along: the one interface the motion model (:mod:`.driver`) needs of a path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .city import Crossing
from .geo import XY, LocalFrame


class Drivable(Protocol):
    """A :class:`.city.Route` on the grid, a :class:`.streetroute.StreetRoute` on real streets."""

    @property
    def frame(self) -> LocalFrame: ...
    @property
    def crossings(self) -> Sequence[Crossing]: ...
    @property
    def length_m(self) -> float: ...
    def point_at(self, d: float) -> XY: ...
    def direction_at(self, d: float) -> XY: ...
