"""REST endpoints, one module per audience: stores, fleet, orders, customers, drivers, dispatchers, health."""
