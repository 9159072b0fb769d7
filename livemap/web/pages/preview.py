"""`/dispatch/settings/preview`: the customer's tracking page for a sample order, in the branding the settings
page is editing. The page frames it and reloads it as the owner types: the unsaved values come in the query
(`name`, `logo_url`, `primary_color`, `accent_color`, `template`, `lang`); one that is not valid shows the
saved value instead, so a half-typed colour never breaks the preview.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from livemap.domain.clock import now_ms
from livemap.domain.i18n import negotiate
from livemap.domain.messages import Eta
from livemap.domain.responses import CustomerOrder, HistoryEntry, LatLon, Position, Snapshot, Subscriptions
from livemap.domain.storesettings import Branding, StoreSettings
from livemap.web.pages import backoffice, tracking

#: A short drive in Asunción: the sample order's route, its driver two thirds of the way along.
_ROUTE = [(-25.2960, -57.6420), (-25.2935, -57.6385), (-25.2905, -57.6352), (-25.2880, -57.6330)]
_BRANDING_FIELDS = ("logo_url", "primary_color", "accent_color", "template")
_MINUTE = 60_000


def sample(now: int) -> Snapshot:
    """An order on its way: received 40 minutes ago, shipped 12 minutes ago, 7 minutes out."""
    history = [
        HistoryEntry("received", now - 40 * _MINUTE),
        HistoryEntry("processing", now - 30 * _MINUTE),
        HistoryEntry("shipped", now - 12 * _MINUTE),
    ]
    dest, at = _ROUTE[-1], _ROUTE[2]
    order = CustomerOrder(
        tracking_id="preview",
        number="1001",
        stage="shipped",
        live=True,
        history=history,
        destination=LatLon(*dest),
        address="Av. Mariscal López 1234",
        route=_ROUTE,
        promised_by=None,
        tracking_number=None,
        carrier=None,
        feedback=None,
        subscriptions=Subscriptions(),
        channels=[],  # no update forms: the sample has no order behind it to subscribe to
    )
    driver = Position(lat=at[0], lon=at[1], speed=8.0, heading=40.0, accuracy=5.0, ts=now - 3000, stale=False)
    return Snapshot(offset="0-0", order=order, eta=Eta(eta_s=420, eta_at=now + 7 * _MINUTE, remaining_m=1900),
                    driver=driver)  # fmt: skip


def edited(settings: StoreSettings, query: dict[str, str]) -> StoreSettings:
    """`settings` with the query's branding values and name, each kept only if valid."""
    branding: dict[str, Any] = msgspec.to_builtins(settings.branding)
    for field in _BRANDING_FIELDS:
        if field not in query:
            continue
        trial = {**branding, field: query[field] or None}
        try:
            msgspec.convert(trial, Branding)
        except msgspec.ValidationError:
            continue
        branding = trial
    name = query.get("name", "").strip()[:200] or settings.name
    return msgspec.structs.replace(settings, name=name, branding=msgspec.convert(branding, Branding))


async def preview_page(request: Request) -> Response:
    """The sample tracking page for the signed-in owner; the sign-in form otherwise."""
    office = await backoffice.owner(request)
    if not isinstance(office, backoffice.Office):
        return office
    query = dict(request.query_params)
    settings = edited(office.settings, query)
    lang = negotiate(query.get("lang"), "", settings.locale)
    customer = tracking.Customer(office.session.store_id, "", None, preview=True)
    return tracking.page_for(request, settings, sample(now_ms()), lang, customer)
