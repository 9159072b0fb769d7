"""Connections livemap opens to addresses a store chose (webhooks, SMS gateways, SMTP servers).

A store's settings must never let it reach inside livemap's network: every such destination is
vetted when it is saved and again, after DNS resolution, on every connection (see `policy`).
"""
