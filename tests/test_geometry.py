"""Route geometry and the ETA model, checked against distances computed independently with geopy."""

from __future__ import annotations

import math

import pytest

from conftest import dest, gd, route
from livemap.domain.geometry import LatLon, Route, cumulative_lengths

TOL_M = 2.0  # metres; the local frame's distortion over a few km stays well below this
START: LatLon = (-23.5505, -46.6333)  # São Paulo
T0 = 1_600_000_000_000  # a fix time far from now, so nothing can lean on the wall clock


# --- cumulative_lengths ------------------------------------------------------------------------


def test_cumulative_lengths_match_known_distances() -> None:
    """Cumulative lengths of a polyline built from known geodesic steps are the running sums of those steps."""
    steps = [(30.0, 250.0), (95.0, 1000.0), (200.0, 50.0), (0.0, 4321.0)]
    points = [START]
    for bearing, metres in steps:
        points.append(dest(points[-1], bearing, metres))
    assert cumulative_lengths(points) == pytest.approx([0.0, 250.0, 1250.0, 1300.0, 5621.0], abs=1e-3)


def test_cumulative_lengths_match_geopy_pairwise() -> None:
    """Each cumulative length is the geopy geodesic sum of the segments before it."""
    points = [(52.52, 13.405), (52.53, 13.41), (52.531, 13.45), (52.5, 13.46)]
    expected = [0.0]
    for i in range(1, len(points)):
        expected.append(expected[-1] + gd(points[i - 1], points[i]))
    assert cumulative_lengths(points) == pytest.approx(expected, abs=1e-6)


def test_cumulative_lengths_one_degree_of_latitude() -> None:
    """One degree of latitude at the equator is 110,574 m on WGS-84 (ellipsoidal, not spherical)."""
    assert cumulative_lengths([(0.0, 0.0), (1.0, 0.0)])[-1] == pytest.approx(110_574.4, abs=1.0)


def test_route_needs_two_points_and_matching_lengths() -> None:
    """A route of one point, or with one cumulative length too few, is refused."""
    with pytest.raises(ValueError, match="two or more points"):
        Route([START], [0.0])
    with pytest.raises(ValueError, match="one cumulative length per point"):
        Route([START, dest(START, 0, 100)], [0.0])


# --- Route.locate ------------------------------------------------------------------------------


STRAIGHT_LEN = 3000.0
STRAIGHT = route([START, dest(START, 60, STRAIGHT_LEN)])


@pytest.mark.parametrize("along", [0.0, 1.0, 750.0, 1500.0, 2999.0, 3000.0])
@pytest.mark.parametrize(("side", "offset"), [(150, 0.0), (150, 12.0), (330, 40.0)])
def test_locate_straight_route(along: float, side: float, offset: float) -> None:
    """On a straight 3 km route, a fix `offset` m to either side of the point `along` m in locates there."""
    fix = dest(dest(START, 60, along), side, offset)
    got_along, got_offset = STRAIGHT.locate(*fix)
    assert got_along == pytest.approx(along, abs=TOL_M)
    assert got_offset == pytest.approx(offset, abs=TOL_M)


def test_straight_route_length() -> None:
    """length_m is the geodesic length of the route."""
    assert STRAIGHT.length_m == pytest.approx(STRAIGHT_LEN, abs=1e-3)


def test_locate_before_start_and_past_end() -> None:
    """A fix behind the start locates at 0; one past the end at the full length; offsets are to those ends."""
    behind = dest(START, 240, 50)
    along, offset = STRAIGHT.locate(*behind)
    assert along == 0.0
    assert offset == pytest.approx(50.0, abs=TOL_M)
    end = STRAIGHT.points[-1]
    beyond = dest(end, 60, 80)
    along, offset = STRAIGHT.locate(*beyond)
    assert along == pytest.approx(STRAIGHT.length_m, abs=1e-6)
    assert offset == pytest.approx(gd(beyond, end), abs=TOL_M)


CORNER = dest(START, 0, 800)
L_END = dest(CORNER, 90, 600)
L_ROUTE = route([START, CORNER, L_END])


@pytest.mark.parametrize(
    ("leg", "into_leg", "side", "offset"),
    [
        (1, 400.0, 270, 25.0),  # first leg, west of it
        (1, 790.0, 90, 5.0),  # first leg, inside the corner
        (2, 300.0, 0, 20.0),  # second leg, north of it
        (2, 599.0, 180, 7.0),  # second leg, near the end
    ],
)
def test_locate_l_shaped_route(leg: int, into_leg: float, side: float, offset: float) -> None:
    """On an L-shaped route the along distance is the geodesic path start -> (corner ->) foot of the fix."""
    foot = dest(START, 0, into_leg) if leg == 1 else dest(CORNER, 90, into_leg)
    fix = dest(foot, side, offset)
    expected = gd(START, foot) if leg == 1 else gd(START, CORNER) + gd(CORNER, foot)
    along, got_offset = L_ROUTE.locate(*fix)
    assert along == pytest.approx(expected, abs=TOL_M)
    assert got_offset == pytest.approx(gd(fix, foot), abs=TOL_M)


def test_locate_outside_the_corner() -> None:
    """A fix outside the corner (north-west of it) is nearest the corner itself: along 800 m, offset ~14 m."""
    fix = dest(dest(CORNER, 0, 10), 270, 10)
    along, offset = L_ROUTE.locate(*fix)
    assert along == pytest.approx(gd(START, CORNER), abs=TOL_M)
    assert offset == pytest.approx(gd(fix, CORNER), abs=TOL_M)
    assert offset == pytest.approx(10 * math.sqrt(2), abs=TOL_M)


ARC_R = 400.0
ARC_CENTRE: LatLon = (40.4168, -3.7038)  # Madrid
ARC_STEP = 2.0  # degrees between vertices
ARC = route([dest(ARC_CENTRE, b * ARC_STEP, ARC_R) for b in range(int(180 / ARC_STEP) + 1)])


def test_arc_length_closed_form() -> None:
    """A 91-point half circle of radius R measures 180 chords of 2R sin(1 deg), within centimetres."""
    chord = 2 * ARC_R * math.sin(math.radians(ARC_STEP / 2))
    assert ARC.length_m == pytest.approx(chord * 180 / ARC_STEP, abs=0.05)
    assert ARC.length_m == pytest.approx(math.pi * ARC_R, abs=0.2)


@pytest.mark.parametrize("bearing", [0.0, 13.0, 67.0, 90.0, 121.5, 179.0])
@pytest.mark.parametrize("radial", [-25.0, 0.0, 15.0])
def test_locate_curved_route(bearing: float, radial: float) -> None:
    """On a half-circle route, a fix at `bearing` from the centre is R * angle along and |radial| m off."""
    fix = dest(ARC_CENTRE, bearing, ARC_R + radial)
    along, offset = ARC.locate(*fix)
    assert along == pytest.approx(ARC_R * math.radians(bearing), abs=TOL_M)
    assert offset == pytest.approx(abs(radial), abs=TOL_M)


GAP = 30.0  # metres between the way out and the way back
U_TOP = dest(START, 0, 1000)
U_TURN = dest(U_TOP, 90, GAP)
U_END = dest(U_TURN, 180, 1000)
U_ROUTE = route([START, U_TOP, U_TURN, U_END])


@pytest.mark.parametrize(
    ("name", "foot", "fix", "expected_along"),
    [
        ("out, away from the way back", dest(START, 0, 500), dest(dest(START, 0, 500), 270, 5), 500.0),
        ("out, towards the way back", dest(START, 0, 500), dest(dest(START, 0, 500), 90, 12), 500.0),
        ("turn", dest(U_TOP, 90, 15), dest(dest(U_TOP, 90, 15), 0, 10), 1015.0),
        ("back, away from the way out", dest(U_TURN, 180, 500), dest(dest(U_TURN, 180, 500), 90, 5), 1530.0),
        ("back, towards the way out", dest(U_TURN, 180, 500), dest(dest(U_TURN, 180, 500), 270, 12), 1530.0),
    ],
)
def test_locate_self_approaching_route(name: str, foot: LatLon, fix: LatLon, expected_along: float) -> None:
    """On a U-turn whose way back runs 30 m from the way out, a fix locates on the leg it is nearest to."""
    expected = [gd(START, U_TOP), gd(U_TOP, U_TURN), gd(U_TURN, U_END)]
    assert expected == pytest.approx([1000.0, GAP, 1000.0], abs=1e-3)
    along, offset = U_ROUTE.locate(*fix)
    assert along == pytest.approx(expected_along, abs=TOL_M), name
    assert offset == pytest.approx(gd(fix, foot), abs=TOL_M), name
