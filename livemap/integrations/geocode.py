"""Geocoding shop addresses that arrive without coordinates: a geopy geocoder behind a Redis cache.

The geocoder is any geopy service (`LIVEMAP_GEOCODER`, Nominatim by default, `none` to turn it off),
optionally at another base URL (`LIVEMAP_GEOCODER_URL`, e.g. a self-hosted Nominatim). geopy is
blocking, so each request runs in a thread, bounded by `LIVEMAP_GEOCODER_TIMEOUT_S` as a whole
(waiting for the rate limit included): a webhook must be answered within seconds. Results are cached in
Redis by a digest of the normalized address (shared by every process; an address that was not found is
cached for at most a day); a geocoder that failed or timed out is not cached, so the next delivery of
that order tries again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from geopy.exc import GeopyError
from geopy.geocoders import get_geocoder_for_service

from livemap.domain.messages import MAX_LAT
from livemap.settings import Settings
from livemap.storage.db import Client
from livemap.storage.keys import Keys

log = logging.getLogger("livemap.geocode")

#: How an order got its destination, or why it has none (`GET /api/orders/{id}` shows it as `geocode`).
GeocodeStatus = Literal["platform", "geocoded", "not_found", "no_address", "unavailable", "disabled"]
_NOT_FOUND_TTL_S = 86400.0
_USER_AGENT = "livemap"
_SPACES = re.compile(r"\s+")
_COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}\Z")


@dataclass(frozen=True, slots=True)
class Address:
    """A shipping address as a shop sends it; `lat`/`lon` when the shop already geocoded it."""

    street: tuple[str, ...] = ()
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""  # an ISO 3166-1 alpha-2 code as both platforms send it (a name also works)
    lat: float | None = None
    lon: float | None = None

    @property
    def empty(self) -> bool:
        return not (any(self.street) or self.city or self.postcode)

    def display(self) -> str:
        """One line for people: "969 Market, Apt 2, San Francisco, CA 94103, US"."""
        region = " ".join(p for p in (self.region, self.postcode) if p)
        return ", ".join(p for p in (*self.street, self.city, region, self.country) if p)

    def query(self, with_country: bool) -> str:
        """The geocoder's free-text query: first street line (a flat number confuses geocoders), city, region."""
        street = next((s for s in self.street if s), "")
        region = " ".join(p for p in (self.region, self.postcode) if p)
        parts = (street, self.city, region, self.country if with_country else "")
        return ", ".join(p for p in parts if p)


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def make_geocoder(settings: Settings) -> Any | None:
    """The geopy geocoder LIVEMAP_GEOCODER names (None for `none`); raises on an unknown service."""
    service = settings.geocoder.strip().lower()
    if service in ("", "none", "off"):
        return None
    cls = get_geocoder_for_service(service)  # geopy.exc.GeocoderNotFound for a name it does not know
    kwargs: dict[str, Any] = {"timeout": settings.geocoder_timeout_s}
    if service == "nominatim":
        kwargs["user_agent"] = _USER_AGENT  # Nominatim's usage policy: identify the application
    if settings.geocoder_url:
        url = urlsplit(settings.geocoder_url)
        kwargs |= {"scheme": url.scheme or "https", "domain": (url.netloc + url.path).rstrip("/")}
    if str(settings.geocoder_api_key):
        kwargs["api_key"] = str(settings.geocoder_api_key)
    return cls(**kwargs)


class Geocoding:
    """Address -> (lat, lon) through the configured geocoder, cached in Redis, one request at a time."""

    def __init__(self, client: Client, keys: Keys, settings: Settings, geocoder: Any | None) -> None:
        self.redis, self.keys = client, keys
        self.geocoder = geocoder
        self.service = settings.geocoder.strip().lower() if geocoder is not None else "none"
        self.timeout_s = settings.geocoder_timeout_s
        self.min_interval_s = settings.geocoder_min_interval_s
        self.ttl_s = settings.geocode_cache_ttl_s
        self._lock = asyncio.Lock()
        self._last_request = 0.0

    @classmethod
    def from_settings(cls, client: Client, keys: Keys, settings: Settings) -> Geocoding:
        return cls(client, keys, settings, make_geocoder(settings))

    async def locate(self, address: Address | None) -> tuple[tuple[float, float] | None, GeocodeStatus]:
        """Where `address` is, and how that was found out (or why not)."""
        if address is None or address.empty:
            return None, "no_address"
        if address.lat is not None and address.lon is not None:
            return (address.lat, address.lon), "platform"
        if self.geocoder is None:
            return None, "disabled"
        nominatim = self.service == "nominatim"
        country = address.country.lower() if nominatim and _COUNTRY_CODE.match(address.country) else ""
        query = _clean(address.query(with_country=not country))
        key = self.keys.geocode(hashlib.sha256(f"{self.service}\x1f{country}\x1f{query.lower()}".encode()).hexdigest())
        cached = await self.redis.get(key)
        if cached is not None:
            point = msgspec.json.decode(cached, type=list[float])
            return (point[0], point[1]) if point else None, "geocoded" if point else "not_found"
        try:
            found = await asyncio.wait_for(self._request(query, country), self.timeout_s)
        except (GeopyError, OSError, TimeoutError) as exc:  # TimeoutError: also asyncio's own
            log.warning("geocoder %s unavailable: %r", self.service, exc)
            return None, "unavailable"
        value = [found[0], found[1]] if found else []
        ttl = self.ttl_s if found else min(self.ttl_s, _NOT_FOUND_TTL_S)
        await self.redis.set(key, msgspec.json.encode(value), px=max(1, int(ttl * 1000)))
        return found, "geocoded" if found else "not_found"

    async def _request(self, query: str, country: str) -> tuple[float, float] | None:
        geocoder = self.geocoder
        assert geocoder is not None  # locate() checked
        async with self._lock:  # one request at a time per process, at most one per min_interval_s
            wait = self._last_request + self.min_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            kwargs: dict[str, Any] = {"exactly_one": True, "timeout": self.timeout_s}
            if country:
                kwargs["country_codes"] = country
            try:
                location = await asyncio.to_thread(geocoder.geocode, query, **kwargs)
            finally:
                self._last_request = time.monotonic()
        if location is None:
            return None
        lat, lon = float(location.latitude), float(location.longitude)
        if not (-MAX_LAT <= lat <= MAX_LAT and -180 <= lon <= 180):  # what Redis GEO can index
            return None
        return lat, lon
