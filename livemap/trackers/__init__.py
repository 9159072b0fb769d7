"""Tracker apps in: each adapter maps one app's HTTP protocol onto the driver socket's fix pipeline.

A fleet should not need our app: Traccar Client (OsmAnd protocol, query/form and JSON),
OwnTracks (HTTP mode) and GPSLogger (custom URL) post positions over plain HTTP. Each adapter
only translates (units, unknowns, timestamps, device ids) into `messages.Fix`, the same
validated type the websocket takes; `endpoints` authenticates the device and stores the fixes
through the very same `DriverSession.ingest` as `/ws/driver`.
"""
