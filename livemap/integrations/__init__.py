"""Orders in from shops: one module per platform's webhooks (WooCommerce, Shopify), a shared upsert, geocoding."""

from __future__ import annotations

from starlette.routing import Route

from livemap.integrations import shopify, woocommerce
from livemap.integrations.common import IntegrationResult
from livemap.integrations.geocode import Address, Geocoding, make_geocoder

__all__ = ["Address", "Geocoding", "IntegrationResult", "make_geocoder", "routes"]

routes = [
    Route("/integrations/woocommerce/{store}", woocommerce.webhook, methods=["POST"]),
    Route("/integrations/shopify/{store}", shopify.webhook, methods=["POST"]),
]
