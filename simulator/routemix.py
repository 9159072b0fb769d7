"""The mix of delivery lengths on central Helsinki's streets, and the next delivery drawn from it: shared by
the ETA benchmark and the demo."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import NamedTuple

from .osmworld import StreetMap


@dataclass(frozen=True)
class RouteKind:
    """A class of delivery by street length: ``share`` of all deliveries are ``min_m``-``max_m`` long."""

    name: str
    share: float
    min_m: float
    max_m: float


#: Hops round the corner, across the centre, and from one edge of the extract to the other.
ROUTE_MIX: tuple[RouteKind, ...] = (
    RouteKind("short", 0.25, 300.0, 900.0),
    RouteKind("medium", 0.40, 900.0, 1_600.0),
    RouteKind("long", 0.35, 1_600.0, 3_500.0),
)


def pick_kind(rng: random.Random, mix: tuple[RouteKind, ...]) -> RouteKind:
    """A route kind drawn by its share."""
    x = rng.random() * sum(k.share for k in mix)
    for kind in mix:
        x -= kind.share
        if x < 0:
            return kind
    return mix[-1]


class NextDelivery(NamedTuple):
    """Where a driver goes next: the door, the navigation app's path there, and the path driven when other."""

    kind: RouteKind
    door: int
    fastest: list[int]
    other: list[int] | None


def next_delivery(
    world: StreetMap, here: int, rng: random.Random, mix: tuple[RouteKind, ...], detour_chance: float
) -> NextDelivery:
    """A door of a length drawn from ``mix``; with ``detour_chance`` the driver takes another plausible path."""
    kind = pick_kind(rng, mix)
    door, fastest = world.door_between(here, rng, kind.min_m, kind.max_m)
    other = world.other_path(here, door, fastest, rng) if rng.random() < detour_chance else None
    return NextDelivery(kind, door, fastest, other)
