"""Fan-out: one Redis subscription set per process, mailboxes per socket, the lean websocket protocol.

Imports storage and the domain; never the web layer.
"""
