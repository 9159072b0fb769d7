"""Redis: connections (an embedded server, one server or a Cluster), key names, Lua scripts, repositories.

Imports the domain only; never the web layer.
"""
