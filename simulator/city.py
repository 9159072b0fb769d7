"""A synthetic street grid around a centre point, and delivery routes along its streets.

No map data and no network: streets are two families of straight parallel lines (blocks of
100-120 m, the grid turned by a seeded angle), which is how many Latin American city centres
are laid out and is enough for plausible routes, turns and intersections. Routes are
staircase paths along streets with a few turns, ending part-way along a block, where a house
would be. A detour leaves a route for a parallel street (or around a block) and comes back.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

from .geo import XY, LatLon, LocalFrame, Polyline, distance_m

#: Grid indices of an intersection: ``i`` counts streets along the grid's x axis, ``j`` along y.
Corner = tuple[int, int]

# Street names of central Asunción, reused for any centre: the names only make addresses look real.
# fmt: off
_STREETS_I = (
    "Colón", "Montevideo", "Juan E. O'Leary", "15 de Agosto", "Alberdi", "Chile",
    "Nuestra Señora de la Asunción", "Independencia Nacional", "México", "Tacuarí", "Antequera",
    "Estados Unidos", "Brasil", "Pa'i Pérez", "Perú", "Kubitschek", "Iturbe", "Yegros", "Caballero",
    "Paraguarí", "Hernandarias", "Ayolas", "Garibaldi", "Curupayty", "Mompox", "Santa Teresa", "Boggiani",
    "Senador Long",
)
_STREETS_J = (
    "Palma", "Estrella", "Oliva", "General Díaz", "Haedo", "Humaitá", "Piribebuy", "Manduvirá",
    "Eligio Ayala", "Mariscal Estigarribia", "Azara", "Cerro Corá", "Teniente Fariña", "Manuel Domínguez",
    "Rodríguez de Francia", "Pettirossi", "Luis A. de Herrera", "Ygatimí", "Jejuí", "Benjamín Constant",
    "Presidente Franco", "25 de Mayo", "Simón Bolívar", "República Argentina", "Artigas", "Mariscal López",
    "España", "Sacramento",
)
# fmt: on


@dataclass(frozen=True, slots=True)
class Crossing:
    """An intersection a route passes, at ``distance_m`` from its start; ``turn`` if it turns there."""

    distance_m: float
    turn: bool


@dataclass(frozen=True)
class Route(Polyline):
    """A path along streets: polyline vertices in the grid's local frame, plus where it crosses streets.

    ``xy`` holds only the vertices where the path changes direction (and its two ends), so
    ``latlon()`` is what a store would send as the order's ``route``. ``crossings`` lists
    every intersection after the start, turns or not, for the driver's stops and slow-downs.
    """

    crossings: tuple[Crossing, ...]
    start_corner: Corner
    end_corner: Corner
    end_step: Corner
    end_fraction: float
    #: Every intersection the path passes, in order, and the start point when it is not one of them
    #: (a route that leaves a house): what a detour needs to rebuild the path.
    corners: tuple[Corner, ...] = ()
    lead: XY | None = None


class StreetGrid:
    """Two families of straight streets around ``center``, deterministic for ``seed``.

    Block lengths vary between ``block_m`` bounds street by street, and the whole grid is
    turned by 5-25 degrees, so routes do not run along meridians like a test pattern.
    """

    def __init__(
        self,
        center: LatLon,
        seed: int | str = 1,
        *,
        half_size_m: float = 7000.0,
        block_m: tuple[float, float] = (100.0, 120.0),
        max_radius_m: float = 6000.0,
    ) -> None:
        if max_radius_m > half_size_m - 2 * block_m[1]:
            raise ValueError("max_radius_m must leave room for a block inside the grid")
        self.frame = LocalFrame(center)
        self.max_radius_m = max_radius_m
        rng = random.Random(f"grid:{seed}")
        angle = math.radians(rng.uniform(5.0, 25.0) * rng.choice((-1.0, 1.0)))
        self._cos, self._sin = math.cos(angle), math.sin(angle)
        self._n = math.ceil(half_size_m / block_m[0])
        self._xs = _offsets(self._n, block_m, rng)
        self._ys = _offsets(self._n, block_m, rng)
        self.depot: Corner = (0, 0)

    @property
    def extent(self) -> int:
        """Corners exist for ``-extent <= i, j <= extent``."""
        return self._n

    def corner_xy(self, corner: Corner) -> XY:
        """Position of an intersection, local metres."""
        gx, gy = self._xs[corner[0] + self._n], self._ys[corner[1] + self._n]
        return gx * self._cos - gy * self._sin, gx * self._sin + gy * self._cos

    def corner_latlon(self, corner: Corner) -> LatLon:
        return self.frame.to_latlon(*self.corner_xy(corner))

    def nearest_corner(self, x: float, y: float) -> Corner:
        """The intersection nearest to a local point, kept one block inside the grid's edge."""
        gx, gy = x * self._cos + y * self._sin, -x * self._sin + y * self._cos
        return (
            min(max(_nearest_index(self._xs, gx) - self._n, 1 - self._n), self._n - 1),
            min(max(_nearest_index(self._ys, gy) - self._n, 1 - self._n), self._n - 1),
        )

    def street_name(self, a: Corner, b: Corner) -> str:
        """Name of the street joining two adjacent corners."""
        if a[0] == b[0]:
            return _name(_STREETS_I, a[0])
        return _name(_STREETS_J, a[1])

    def address(self, route: Route) -> str:
        """A plausible street address for a route's destination, in Paraguayan style ("Palma 1250 c/ Chile")."""
        corner, step = route.end_corner, route.end_step
        ahead = (corner[0] + step[0], corner[1] + step[1])
        axis = 0 if step[0] else 1
        position = corner[axis] + step[axis] * route.end_fraction
        # Numbers grow by 100 a block away from the centre line; even on one side, odd on the other.
        number = max(2, int(abs(position) * 100)) // 2 * 2 + (1 if route.end_fraction > 0.5 else 0)
        nearest = corner if route.end_fraction < 0.5 else ahead
        cross_from = (nearest[0] + step[1], nearest[1] + step[0])
        return f"{self.street_name(corner, ahead)} {number} c/ {self.street_name(nearest, cross_from)}"


def plan_route(
    grid: StreetGrid,
    rng: random.Random,
    *,
    after: Route | None = None,
    min_m: float = 1500.0,
    max_m: float = 5000.0,
    turns: tuple[int, int] = (2, 5),
) -> Route:
    """Plan a route from the depot (or from where ``after`` ended) to a house ``min_m``-``max_m`` away.

    The destination is that far in a straight line from the start and within the grid's
    ``max_radius_m`` of the centre, so a courier doing delivery after delivery stays in town;
    the path between has ``turns`` turns where the blocks allow it.
    """
    origin_corner = grid.depot if after is None else after.end_corner
    origin = grid.corner_xy(origin_corner) if after is None else after.xy[-1]
    route: Route | None = None
    for target in _targets(grid, rng, origin, origin_corner, min_m, max_m):
        route = _route_to(grid, rng, after, target, turns)
        # The house lies part-way along a block beyond the target corner: the bounds are the house's.
        house = route.xy[-1]
        if min_m <= distance_m(origin, house) <= max_m and math.hypot(*house) <= grid.max_radius_m:
            break
    assert route is not None  # _targets() ends with a fallback
    return route


def _route_to(
    grid: StreetGrid, rng: random.Random, after: Route | None, target: Corner, turns: tuple[int, int]
) -> Route:
    """A route from the depot (or from where ``after`` ended) to a house on a block beyond ``target``."""
    if after is None:
        lead: XY | None = None
        corners = _staircase(grid.depot, target, rng, rng.randint(*turns))
    else:
        # The previous route ended part-way along a block heading `step`. Leave the house in
        # whichever direction does not double back over it: on along the street if the target
        # lies ahead, else back to the corner behind. The staircase starts at the corner at the
        # house's back, first along its block, and loses that corner: the turn off the house's
        # street, if any, is then one of its turns.
        lead = after.xy[-1]
        near, step = after.end_corner, after.end_step
        far = (near[0] + step[0], near[1] + step[1])
        ahead = sum((t - c) * s for t, c, s in zip(target, near, step, strict=True))
        behind = near if ahead > 0 else far
        corners = _staircase(behind, target, rng, rng.randint(*turns), first_i=step[0] != 0)[1:]
    last_step = _unit(corners[-2], corners[-1])
    fraction = rng.uniform(0.2, 0.8)
    beyond = grid.corner_xy((corners[-1][0] + last_step[0], corners[-1][1] + last_step[1]))
    end_xy = _lerp(grid.corner_xy(corners[-1]), beyond, fraction)
    return _assemble(grid, corners, lead, end_xy, last_step, fraction)


def _assemble(
    grid: StreetGrid, corners: list[Corner], lead: XY | None, end_xy: XY, last_step: Corner, fraction: float
) -> Route:
    steps = [_unit(a, b) for a, b in itertools.pairwise(corners)]
    vertices: list[XY] = []
    crossings: list[Crossing] = []
    travelled = 0.0
    here: XY
    if lead is not None:
        vertices.append(lead)
        here = grid.corner_xy(corners[0])
        travelled = distance_m(lead, here)
        lead_straight = _dot(_unit_xy(lead, here), _unit_xy(here, grid.corner_xy(corners[1]))) > 0.99
        crossings.append(Crossing(travelled, turn=not lead_straight))
        if not lead_straight:
            vertices.append(here)
    else:
        here = grid.corner_xy(corners[0])
        vertices.append(here)
    for k in range(1, len(corners)):
        nxt = grid.corner_xy(corners[k])
        travelled += distance_m(here, nxt)
        here = nxt
        # The last corner continues straight onto the destination's block.
        turn = k < len(corners) - 1 and steps[k] != steps[k - 1]
        crossings.append(Crossing(travelled, turn=turn))
        if turn:
            vertices.append(here)
    vertices.append(end_xy)
    return Route(
        frame=grid.frame,
        xy=tuple(vertices),
        crossings=tuple(crossings),
        start_corner=corners[0],
        end_corner=corners[-1],
        end_step=last_step,
        end_fraction=fraction,
        corners=tuple(corners),
        lead=lead,
    )


def detour(
    grid: StreetGrid,
    route: Route,
    rng: random.Random,
    *,
    blocks: tuple[int, int] = (1, 8),
    offsets: tuple[int, int] = (1, 2),
) -> Route | None:
    """The path of a driver who leaves ``route`` for a while and comes back to it, or None if it has no room.

    On a straight run of ``blocks`` blocks somewhere in the middle, the driver turns off,
    follows the street ``offsets`` blocks over (around a single block when both are 1) and
    turns back onto the route where that run ends. Start, end and the final approach stay the
    same, and the driver never doubles back along a street it just drove.
    """
    corners = list(route.corners)
    if len(corners) < 4:
        return None
    steps = [_unit(a, b) for a, b in itertools.pairwise(corners)]
    length = rng.randint(*blocks)
    offset = rng.randint(*offsets)
    # (a, b): leave at corners[a], rejoin at corners[b]; keep the first corner and the last approach.
    windows = [(a, a + length) for a in range(1, len(corners) - 1 - length) if len(set(steps[a : a + length])) == 1]
    rng.shuffle(windows)
    limit = grid.extent - 1
    for a, b in windows:
        along = steps[a]
        for side in rng.sample((1, -1), 2):
            perp = (along[1] * side, along[0] * side)
            if steps[a - 1] == (-perp[0], -perp[1]) or (b < len(steps) and steps[b] == perp):
                continue  # leaving or rejoining would turn back onto the street just driven
            out = [(corners[a][0] + perp[0] * o, corners[a][1] + perp[1] * o) for o in range(1, offset + 1)]
            parallel = [(c[0] + perp[0] * offset, c[1] + perp[1] * offset) for c in corners[a + 1 : b + 1]]
            back = [(corners[b][0] + perp[0] * o, corners[b][1] + perp[1] * o) for o in range(offset - 1, 0, -1)]
            path = [*corners[: a + 1], *out, *parallel, *back, *corners[b:]]
            if any(abs(i) > limit or abs(j) > limit for i, j in path):
                continue
            return _assemble(grid, path, route.lead, route.xy[-1], route.end_step, route.end_fraction)
    return None


def _targets(
    grid: StreetGrid, rng: random.Random, origin: XY, origin_corner: Corner, min_m: float, max_m: float
) -> Iterator[Corner]:
    """Corners to plan a route to, in turn: the ones that look in bounds, then a fallback."""
    for _ in range(500):
        d = rng.uniform(min_m, max_m)
        bearing = rng.uniform(0.0, 2 * math.pi)
        x, y = origin[0] + d * math.sin(bearing), origin[1] + d * math.cos(bearing)
        if math.hypot(x, y) > grid.max_radius_m:
            continue
        corner = grid.nearest_corner(x, y)
        if min(abs(corner[0] - origin_corner[0]), abs(corner[1] - origin_corner[1])) < 2:
            continue  # straight down one street: a route with no turns looks like a test pattern
        gap = distance_m(origin, grid.corner_xy(corner))
        if min_m <= gap <= max_m:
            yield corner
    # Only reachable with a tiny max_radius_m: head for the centre instead of failing a demo.
    back = math.hypot(*origin) or 1.0
    d = min_m
    yield grid.nearest_corner(origin[0] - origin[0] / back * d, origin[1] - origin[1] / back * d)


def _staircase(
    start: Corner, target: Corner, rng: random.Random, turns: int, first_i: bool | None = None
) -> list[Corner]:
    """Every corner of a monotone path from ``start`` to ``target`` along streets with about ``turns`` turns.

    ``first_i`` makes it leave along the i axis (True) or the j axis (False), which must have blocks to run.
    """
    di, dj = target[0] - start[0], target[1] - start[1]
    ni, nj = abs(di), abs(dj)
    if ni == 0 and nj == 0:
        raise ValueError("start and target are the same corner")
    segments = turns + 1
    i_first = rng.random() < 0.5 if first_i is None else first_i
    ki = min((segments + 1) // 2 if i_first else segments // 2, ni)
    kj = min(segments - ((segments + 1) // 2 if i_first else segments // 2), nj)
    if ni and not ki:
        ki = 1
    if nj and not kj:
        kj = 1
    # Runs along the two axes alternate, so their counts may differ by one at most.
    ki, kj = min(ki, kj + 1), min(kj, ki + 1)
    if first_i is not None:  # and the axis it must begin along has at least as many
        ki, kj = (ki, min(kj, ki)) if first_i else (min(ki, kj), kj)
    if ki != kj:
        i_first = ki > kj
    runs_i, runs_j = _compose(ni, ki, rng), _compose(nj, kj, rng)
    si, sj = (di > 0) - (di < 0), (dj > 0) - (dj < 0)
    corners = [start]
    order = [True, False] if i_first else [False, True]
    for n in range(ki + kj):
        along_i = order[n % 2]
        run = runs_i.pop(0) if along_i else runs_j.pop(0)
        for _ in range(run):
            ci, cj = corners[-1]
            corners.append((ci + si, cj) if along_i else (ci, cj + sj))
    return corners


def _compose(n: int, k: int, rng: random.Random) -> list[int]:
    """Split ``n`` blocks into ``k`` positive runs at random cut points."""
    if k <= 0:
        return []
    cuts = sorted(rng.sample(range(1, n), k - 1))
    return [b - a for a, b in itertools.pairwise([0, *cuts, n])]


def _offsets(n: int, block_m: tuple[float, float], rng: random.Random) -> list[float]:
    """Street positions for indices ``-n..n`` along one axis, street 0 through the centre."""
    ahead = [0.0]
    behind = [0.0]
    for _ in range(n):
        ahead.append(ahead[-1] + rng.uniform(*block_m))
        behind.append(behind[-1] - rng.uniform(*block_m))
    return behind[:0:-1] + ahead


def _nearest_index(values: list[float], v: float) -> int:
    k = bisect.bisect_left(values, v)
    if k == 0:
        return 0
    if k == len(values):
        return len(values) - 1
    return k if values[k] - v < v - values[k - 1] else k - 1


def _name(names: tuple[str, ...], index: int) -> str:
    # Named streets near the centre, numbered ones further out, as in many growing cities.
    k = index + len(names) // 2
    return names[k] if 0 <= k < len(names) else f"Calle {abs(index)}"


def _unit(a: Corner, b: Corner) -> Corner:
    return (b[0] > a[0]) - (b[0] < a[0]), (b[1] > a[1]) - (b[1] < a[1])


def _unit_xy(a: XY, b: XY) -> XY:
    d = distance_m(a, b) or 1.0
    return (b[0] - a[0]) / d, (b[1] - a[1]) / d


def _dot(a: XY, b: XY) -> float:
    return a[0] * b[0] + a[1] * b[1]


def _lerp(a: XY, b: XY, f: float) -> XY:
    return a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f
