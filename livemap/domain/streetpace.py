"""A routed leg's street segments: which ones a driver just drove (and how fast), and the time the fleet
says the rest of the route takes where it knows.

A road route from the embedded router names the street segment under each piece of its polyline
(piece i runs from point i to point i + 1; -1 where there is none: from the driver's position to the
first street node, from the last one to the door). Pure functions: the per-fix path calls them,
tracking/fleet.py keeps what they produce.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: Traversals slower or faster than these are not speeds (a driver parked mid-street, a GPS jump).
MIN_MPS, MAX_MPS = 0.2, 45.0
#: A traversal longer than this (s) is a stop, not the street's pace.
MAX_TRAVERSAL_S = 900.0


@dataclass(frozen=True, slots=True)
class RoadPieces:
    """The street segment of each piece of a route's polyline, in the routing graph `graph`."""

    graph: str
    ids: tuple[int, ...]  # one per piece (len(points) - 1); -1: no street segment


def _piece(cum: Sequence[float], along: float) -> int:
    """The piece `along` (metres from the start) lies on; the last piece at or past the end."""
    return min(max(bisect_right(cum, along) - 1, 0), len(cum) - 2)


Mark = tuple[float, int]  # (metres along the route, fix time ms)
Traversal = tuple[int, float, int]  # (segment id, pace s/m, fix time ms the driver left it)


def crossed(
    cum: Sequence[float], ids: Sequence[int], before: Mark, after: Mark, entered: tuple[int, int]
) -> tuple[list[Traversal], tuple[int, int]]:
    """Street segments driven from start to end between two fixes on the route.

    `before`/`after` are (metres along, fix time ms); `entered` is (piece, time ms the driver entered
    it), piece -1 when unknown (a leg's first fix, after leaving the route). Returns each whole
    traversal as (segment id, pace s/m, fix time ms it ended), and the piece the driver is on now
    with its entry time.
    Times between the two fixes are interpolated: the driver moved at one speed in between.
    """
    (a0, t0), (a1, t1) = before, after
    i0, i1 = _piece(cum, a0), _piece(cum, a1)
    if i1 <= i0 or a1 <= a0 or t1 <= t0:
        return [], entered if entered[0] == i0 else (i0, -1)

    def at(d: float) -> float:
        return t0 + (d - a0) / (a1 - a0) * (t1 - t0)

    out: list[Traversal] = []
    for p in range(i0, i1):
        start, end = (entered[1] if entered[0] == i0 else -1) if p == i0 else at(cum[p]), at(cum[p + 1])
        length, seconds = cum[p + 1] - cum[p], (end - start) / 1000
        if start < 0 or ids[p] < 0 or length <= 0 or not 0 < seconds <= MAX_TRAVERSAL_S:
            continue
        if MIN_MPS <= length / seconds <= MAX_MPS:
            out.append((ids[p], seconds / length, round(end)))
    return out, (i1, round(at(cum[i1])))


class KnownAhead:
    """The metres of a route whose time the fleet can tell, and that time, from any point to the end.

    A street with a fresh pace takes its pace; with `prior_s` (a segment's time by the map) and
    `factor` (how much slower than the map the fleet drives right now, a rush hour say), every other
    street takes its map time times that factor. Pieces without a street are left to the caller.
    """

    __slots__ = ("_cum", "_m", "_s", "_suffix_m", "_suffix_s")

    def __init__(
        self,
        cum: Sequence[float],
        ids: Sequence[int],
        paces: Mapping[int, float],
        prior_s: Callable[[int], float] | None = None,
        factor: float | None = None,
    ) -> None:
        self._cum = list(cum)
        n = len(ids)
        self._m, self._s = [0.0] * n, [0.0] * n
        for p, seg in enumerate(ids):
            if seg < 0:
                continue
            length, pace = self._cum[p + 1] - self._cum[p], paces.get(seg)
            if pace is not None:
                self._m[p], self._s[p] = length, length * pace
            elif prior_s is not None and factor is not None:
                self._m[p], self._s[p] = length, prior_s(seg) * factor
        self._suffix_m, self._suffix_s = [0.0] * (n + 1), [0.0] * (n + 1)
        for p in range(n - 1, -1, -1):
            self._suffix_m[p] = self._suffix_m[p + 1] + self._m[p]
            self._suffix_s[p] = self._suffix_s[p + 1] + self._s[p]

    @property
    def any(self) -> bool:
        return self._suffix_m[0] > 0

    def ahead(self, along: float) -> tuple[float, float]:
        """(metres, seconds) the fleet knows between `along` and the end of the route."""
        p = _piece(self._cum, along)
        length = self._cum[p + 1] - self._cum[p]
        left = min(max((self._cum[p + 1] - along) / length, 0.0), 1.0) if length > 0 else 0.0
        return self._suffix_m[p + 1] + self._m[p] * left, self._suffix_s[p + 1] + self._s[p] * left
