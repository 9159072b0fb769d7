"""The domain: stages, the ETA model, route geometry, store settings, records and wire messages.

Pure: nothing here does I/O or imports storage, tracking, realtime or the web layer (import-linter
keeps it so; `make check`).
"""
