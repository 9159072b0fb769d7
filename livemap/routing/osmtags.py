"""Which OpenStreetMap ways a car may drive, in which direction, and how fast.

Default speeds per road class (km/h), used when a way has no usable `maxspeed` (OSRM's car
profile uses the same figures: typical free-flow speeds, not limits):

| highway | km/h | | highway | km/h |
|---|---|---|---|---|
| motorway | 90 | | motorway_link | 45 |
| trunk | 85 | | trunk_link | 40 |
| primary | 65 | | primary_link | 30 |
| secondary | 55 | | secondary_link | 25 |
| tertiary | 40 | | tertiary_link | 20 |
| unclassified | 25 | | residential | 25 |
| living_street | 10 | | service | 15 (parking aisle, driveway, drive-through: 10) |

A posted `maxspeed` counts at `MAXSPEED_FACTOR` of its value (junctions, traffic, bends).
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: The car road classes and their default speeds (km/h): see the module docstring.
CAR_SPEEDS_KMH: dict[str, float] = {
    "motorway": 90, "motorway_link": 45, "trunk": 85, "trunk_link": 40,
    "primary": 65, "primary_link": 30, "secondary": 55, "secondary_link": 25,
    "tertiary": 40, "tertiary_link": 20, "unclassified": 25, "residential": 25,
    "living_street": 10, "service": 15,
}  # fmt: skip

#: Service roads kept but slowed, so that they reach a door and are not taken as shortcuts.
SLOW_SERVICE_KMH: dict[str, float] = {"parking_aisle": 10, "driveway": 10, "drive-through": 10}
#: Service roads no car may use.
FORBIDDEN_SERVICE = frozenset({"emergency_access"})

#: Drivers go below the limit on average; OSRM's car profile uses the same factor.
MAXSPEED_FACTOR = 0.8

#: Implicit limits written as `CC:zone` (`FI:urban`): these zones where no country says otherwise...
ZONE_KMH: dict[str, float] = {"urban": 50, "rural": 90, "trunk": 100, "motorway": 120, "living_street": 20}
#: ... and the countries that do (a few; others fall back to ZONE_KMH).
COUNTRY_ZONE_KMH: dict[str, float] = {
    "FI:rural": 80, "SE:rural": 70, "NO:rural": 80, "DK:rural": 80, "DE:rural": 100, "AT:rural": 100,
    "FR:rural": 80, "GB:nsl_single": 96.6, "GB:nsl_dual": 112.7, "GB:motorway": 112.7, "RU:urban": 60,
    "US:urban": 40,
}  # fmt: skip
_ZONE = re.compile(r"^([A-Z]{2}):(?:zone:?)?([a-z_]+|\d+)$")
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph)?$")
_WORDS_KMH = {"walk": 7.0, "living_street": 20.0}

#: Most specific first: the first of these a way has decides whether a car may use it.
ACCESS_KEYS = ("motorcar", "motor_vehicle", "vehicle", "access")
NO_ACCESS = frozenset({"no", "private", "agricultural", "forestry", "emergency", "use_sidepath"})

Tags = Callable[[str], str | None]  # tag lookup: `tags.get` of an osmium object, or a dict's


def parse_maxspeed(value: str | None) -> float | None:
    """A `maxspeed` value in km/h (`50`, `30 mph`, `FI:urban`, `DE:zone30`, `walk`); None when unusable.

    Several values (`50;30`, lanes or times) count as the lowest; `none`, `signals`, `variable`: None.
    """
    if not value:
        return None
    speeds = [s for s in (_one_maxspeed(part.strip()) for part in value.split(";")) if s is not None]
    return min(speeds) if speeds else None


def _one_maxspeed(value: str) -> float | None:
    number = _NUMBER.match(value)
    if number:
        kmh = float(number.group(1)) * (1.609344 if number.group(2) == "mph" else 1.0)
        return kmh if kmh > 0 else None
    zone = _ZONE.match(value)
    if zone:
        country, kind = zone.groups()
        if kind.isdigit():  # DE:zone30, DE:30
            return float(kind)
        return COUNTRY_ZONE_KMH.get(f"{country}:{kind}", ZONE_KMH.get(kind))
    return _WORDS_KMH.get(value)


def car_speed_kmh(tags: Tags) -> float | None:
    """The speed a car is routed at on this way, or None when a car may not drive it."""
    highway = tags("highway") or ""
    default = CAR_SPEEDS_KMH.get(highway)
    if default is None or tags("area") == "yes" or not _car_allowed(tags):
        return None
    service = tags("service") or ""
    if highway == "service":
        if service in FORBIDDEN_SERVICE:
            return None
        default = SLOW_SERVICE_KMH.get(service, default)
    posted = parse_maxspeed(tags("maxspeed"))
    return default if posted is None else posted * MAXSPEED_FACTOR


def _car_allowed(tags: Tags) -> bool:
    if tags("impassable") == "yes":
        return False
    for key in ACCESS_KEYS:
        value = tags(key)
        if value:
            return value not in NO_ACCESS
    return True


def direction(tags: Tags) -> int | None:
    """1: only along the way's node order; -1: only against it; 0: both; None: no fixed direction.

    `oneway=reversible/alternating` changes direction by time of day: such ways are left out.
    """
    oneway = tags("oneway")
    if oneway in ("yes", "true", "1"):
        return 1
    if oneway in ("-1", "reverse"):
        return -1
    if oneway in ("reversible", "alternating"):
        return None
    if oneway in ("no", "false", "0"):
        return 0  # an explicit `no` wins over the implied one-way of motorways and roundabouts
    implied = tags("highway") == "motorway" or tags("junction") in ("roundabout", "circular")
    return 1 if implied else 0
