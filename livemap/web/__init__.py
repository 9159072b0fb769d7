"""The HTTP surfaces: errors, authentication, request bodies, presenters, OpenAPI; `api`, `sockets`, `pages`."""
