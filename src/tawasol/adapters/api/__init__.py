"""The brain's HTTP API (FastAPI): SIP decision API, admin API."""
