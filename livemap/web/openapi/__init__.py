"""The OpenAPI document: `operations` declares every endpoint, `document` builds and serves it."""
