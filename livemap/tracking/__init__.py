"""The live path per driver fix: rate limits, the ETA board, stale and offline drivers."""
