"""Road routes for orders that arrive without one: an embedded router over an OpenStreetMap extract
(`LIVEMAP_OSM_PBF`), or an OSRM / Valhalla server by URL (`LIVEMAP_ROUTER_URL`).

Every provider answers the same `Router.route`; none may block or fail a ping or an order: a router
that is down or slow raises `RouterUnavailable` (bounded by `LIVEMAP_ROUTER_TIMEOUT_S`) and the
caller keeps the leg's old route or its straight line, and says so (`route_source`).
"""
