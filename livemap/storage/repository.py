"""`Repository`: every read and write of stores, orders and drivers (all but the per-fix hot path).

One class per aggregate, each in its own module, stacked so that each may use the ones below it:
`RepositoryBase` (base.py: credentials, events, notices) < `StoreRecords` (stores.py) <
`AnalyticsRecords` (analytics.py: an order's moments counted into its store's days) < `OrderRecords`
(orders.py: orders follow their store's settings) < `DriverRecords` (drivers.py: a driver's run is a
list of orders) < `ReturnRecords` (returns.py: a delivered order's return, step by step) <
`RetentionRecords` (retention.py: what a store keeps, and for how long) < `ExportRecords` (export.py:
a store's orders page by page) < `ListingRecords` (listing.py: the dashboard's list of orders).
"""

from __future__ import annotations

from livemap.storage.listing import ListingRecords


class Repository(ListingRecords):
    """All reads and writes of stores, drivers and orders."""
