"""The ETA model: remaining distance along the route over an EWMA of observed along-route speed."""

from __future__ import annotations

from dataclasses import dataclass

from livemap.routes import Route

# A projection can snap forward by a block when a noisy fix lands near a later part of the route;
# progress faster than this (m/s, ~216 km/h) is not believed as speed.
_MAX_BELIEVED_SPEED = 60.0


@dataclass(frozen=True, slots=True)
class EtaState:
    """What the model remembers between fixes for one order (persisted in the order's hash)."""

    along_m: float = 0.0
    speed_mps: float = 0.0  # 0 = no observation yet: the prior applies
    ts: int = 0  # fix time of the last update, epoch ms
    eta_at: int = 0
    remaining_m: float = 0.0


@dataclass(frozen=True, slots=True)
class SpeedModel:
    prior_mps: float
    alpha: float
    floor_mps: float

    def update(self, state: EtaState, route: Route, lat: float, lon: float, ts: int) -> EtaState:
        """Advance `state` by one fix taken at `ts` (fix time, never arrival time)."""
        along, _offset = route.locate(lat, lon)
        # GPS noise can project a fix slightly behind the last one; a delivery does not drive
        # backwards along its route, so progress only ever grows.
        along = max(along, state.along_m)
        speed = state.speed_mps or self.prior_mps
        if state.ts and ts > state.ts:
            observed = min((along - state.along_m) / ((ts - state.ts) / 1000), _MAX_BELIEVED_SPEED)
            speed = self.alpha * observed + (1 - self.alpha) * speed
        remaining = max(route.length_m - along, 0.0)
        eta_at = ts + int(remaining / max(speed, self.floor_mps) * 1000)
        return EtaState(along_m=along, speed_mps=speed, ts=ts, eta_at=eta_at, remaining_m=remaining)
