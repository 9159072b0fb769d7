"""The websocket endpoints: drivers send fixes, customers and dispatchers watch."""
